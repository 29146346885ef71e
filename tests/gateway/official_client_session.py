"""A session of IBKR's official Python client (``ibapi``) against a running paper gateway.

Run as a script in its own interpreter, so that any ``ibapi`` release can be put first on
``sys.path`` (``tests/gateway/test_official_client_10.py`` uses the 10.x ``ibapi-stable``
that ``make`` installs into ``.ibapi10/``)::

    python official_client_session.py PORT

It connects, asks for the time and contract details, streams EURUSD quotes and tick-by-tick
data, places a market order on a stock and prints one JSON document of what it received
(callbacks by name, with their arguments as text) on stdout.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from ibapi import __version__ as IBAPI_VERSION  # noqa: N812 - the package's own name
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.wrapper import EWrapper

TIMEOUT = 10.0


class Recorder(EWrapper, EClient):
    """Records every callback the session waits for, by name."""

    def __init__(self):
        EWrapper.__init__(self)
        EClient.__init__(self, wrapper=self)
        self.calls: dict[str, list[list[str]]] = {}
        self.lock = threading.Lock()

    def record(self, name: str, *args) -> None:
        with self.lock:
            self.calls.setdefault(name, []).append([str(a) for a in args])

    def wait_for(self, name: str, count: int = 1) -> None:
        deadline = time.monotonic() + TIMEOUT
        while len(self.calls.get(name, ())) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"no {name} within {TIMEOUT} s; got {sorted(self.calls)}")
            time.sleep(0.02)

    def nextValidId(self, orderId):
        self.record("nextValidId", orderId)

    def currentTime(self, time_):
        self.record("currentTime", time_)

    def contractDetails(self, reqId, contractDetails):
        c = contractDetails.contract
        self.record("contractDetails", reqId, c.conId, c.symbol, c.secType, c.localSymbol)

    def contractDetailsEnd(self, reqId):
        self.record("contractDetailsEnd", reqId)

    def tickPrice(self, reqId, tickType, price, attrib):
        self.record("tickPrice", reqId, tickType, price)

    def tickByTickBidAsk(self, reqId, time_, bidPrice, askPrice, bidSize, askSize, attrib):
        self.record("tickByTickBidAsk", reqId, time_, bidPrice, askPrice)

    def orderStatus(self, orderId, status, filled, remaining, avgFillPrice, *rest):
        self.record("orderStatus", orderId, status, filled, remaining, avgFillPrice)

    def execDetails(self, reqId, contract, execution):
        self.record("execDetails", reqId, contract.symbol, execution.shares, execution.price)

    def error(self, reqId, *args):
        self.record("error", reqId, *args)


def contract(symbol: str, sec_type: str, currency: str, exchange: str) -> Contract:
    c = Contract()
    c.symbol, c.secType, c.currency, c.exchange = symbol, sec_type, currency, exchange
    return c


def main(port: int) -> None:
    app = Recorder()
    app.connect("127.0.0.1", port, clientId=42)
    threading.Thread(target=app.run, daemon=True).start()
    app.wait_for("nextValidId")
    order_id = int(app.calls["nextValidId"][0][0])
    app.reqCurrentTime()
    app.wait_for("currentTime")
    eurusd = contract("EUR", "CASH", "USD", "IDEALPRO")
    app.reqContractDetails(1, eurusd)
    app.wait_for("contractDetailsEnd")
    app.reqMktData(2, eurusd, "", False, False, [])
    app.wait_for("tickPrice", 3)
    app.reqTickByTickData(3, eurusd, "BidAsk", 0, False)
    app.wait_for("tickByTickBidAsk", 2)
    app.cancelTickByTickData(3)
    app.cancelMktData(2)
    order = Order()
    order.action, order.orderType, order.totalQuantity = "BUY", "MKT", 10
    order.eTradeOnly = order.firmQuoteOnly = False  # attributes TWS 10 refuses
    app.placeOrder(order_id, contract("AAPL", "STK", "USD", "SMART"), order)
    app.wait_for("execDetails")
    version = app.serverVersion()
    app.disconnect()
    print(json.dumps({"ibapi": IBAPI_VERSION, "serverVersion": version, **app.calls}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
