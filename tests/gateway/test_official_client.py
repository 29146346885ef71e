"""IBKR's own Python client (``ibapi`` from PyPI, which announces versions 100..157) against
the paper gateway: it negotiates 157 and reads the replies with its own decoder."""

from __future__ import annotations

import threading
import time

import pytest

ibapi = pytest.importorskip("ibapi")
from ibapi.client import EClient  # noqa: E402
from ibapi.contract import Contract  # noqa: E402
from ibapi.order import Order  # noqa: E402
from ibapi.wrapper import EWrapper  # noqa: E402


class Recorder(EWrapper, EClient):
    """EClient + EWrapper that records callbacks by name."""

    def __init__(self):
        EWrapper.__init__(self)
        EClient.__init__(self, wrapper=self)
        self.calls: list[tuple[str, tuple]] = []
        self.lock = threading.Lock()

    def _record(self, name, *args):
        with self.lock:
            self.calls.append((name, args))

    def named(self, name):
        with self.lock:
            return [args for n, args in self.calls if n == name]

    def wait_for(self, name, count=1, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.named(name)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {name} after {timeout} s; got {[n for n, _ in self.calls]}"
                )
            time.sleep(0.01)
        return self.named(name)

    def nextValidId(self, orderId):
        self._record("nextValidId", orderId)

    def managedAccounts(self, accountsList):
        self._record("managedAccounts", accountsList)

    def currentTime(self, time_):
        self._record("currentTime", time_)

    def contractDetails(self, reqId, contractDetails):
        self._record("contractDetails", reqId, contractDetails)

    def contractDetailsEnd(self, reqId):
        self._record("contractDetailsEnd", reqId)

    def tickPrice(self, reqId, tickType, price, attrib):
        self._record("tickPrice", reqId, tickType, price)

    def tickSnapshotEnd(self, reqId):
        self._record("tickSnapshotEnd", reqId)

    def orderStatus(self, orderId, status, filled, remaining, avgFillPrice, *rest):
        self._record("orderStatus", orderId, status, filled, remaining, avgFillPrice)

    def openOrder(self, orderId, contract, order, orderState):
        self._record("openOrder", orderId, contract, order, orderState)

    def execDetails(self, reqId, contract, execution):
        self._record("execDetails", reqId, contract, execution)

    def commissionReport(self, commissionReport):
        self._record("commissionReport", commissionReport)

    def position(self, account, contract, position, avgCost):
        self._record("position", account, contract, position, avgCost)

    def positionEnd(self):
        self._record("positionEnd")

    def accountSummary(self, reqId, account, tag, value, currency):
        self._record("accountSummary", reqId, account, tag, value, currency)

    def accountSummaryEnd(self, reqId):
        self._record("accountSummaryEnd", reqId)

    def error(self, reqId, errorCode, errorString):
        self._record("error", reqId, errorCode, errorString)


@pytest.fixture
def official(gateway):
    client = Recorder()
    client.connect("127.0.0.1", gateway.port, clientId=31)
    thread = threading.Thread(target=client.run, daemon=True)
    thread.start()
    client.wait_for("nextValidId")
    yield client
    client.disconnect()
    thread.join(5)


def stock(symbol: str) -> Contract:
    contract = Contract()
    contract.symbol, contract.secType, contract.exchange, contract.currency = (
        symbol,
        "STK",
        "SMART",
        "USD",
    )
    return contract


def test_official_client_connects_at_version_157(gateway, official):
    assert official.serverVersion() == 157
    assert official.named("managedAccounts") == [(gateway.account_id,)]
    official.reqCurrentTime()
    assert official.wait_for("currentTime")[0][0] > 0


def test_official_client_reads_contract_details_and_a_snapshot(official):
    official.reqContractDetails(1, stock("AAPL"))
    official.wait_for("contractDetailsEnd")
    ((_, details),) = official.named("contractDetails")
    assert details.contract.conId == 265598 and details.minTick == 0.01
    official.reqMktData(2, stock("AAPL"), "", True, False, [])
    official.wait_for("tickSnapshotEnd")
    prices = {tick_type: price for _, tick_type, price in official.named("tickPrice")}
    assert 0 < prices[1] < prices[2]  # bid < ask


def test_official_client_places_an_order_and_reads_the_fill(official):
    order_id = official.named("nextValidId")[0][0]
    order = Order()
    order.action, order.totalQuantity, order.orderType, order.orderRef = "BUY", 10, "MKT", "ibapi"
    order.eTradeOnly = order.firmQuoteOnly = False  # TWS 10 rejects these legacy flags
    official.placeOrder(order_id, stock("MSFT"), order)
    statuses = official.wait_for("orderStatus", 2)
    assert any(
        s[0] == order_id and s[1] == "Filled" and s[2] == 10
        for s in official.wait_for("orderStatus", len(statuses))
    )
    ((_, contract, execution),) = official.wait_for("execDetails")
    assert contract.symbol == "MSFT" and execution.shares == 10
    (report,) = official.wait_for("commissionReport")[0]
    assert report.commission == pytest.approx(1.0)


def test_legacy_order_flags_are_refused_as_tws_10_does(official):
    order_id = official.named("nextValidId")[0][0]
    order = Order()  # this client version defaults eTradeOnly and firmQuoteOnly to True
    order.action, order.totalQuantity, order.orderType = "BUY", 1, "MKT"
    official.placeOrder(order_id, stock("MSFT"), order)
    errors = official.wait_for("error", 4)  # three farm-status notices, then the refusal
    assert (order_id, 10268, "The 'EtradeOnly' order attribute is not supported.") in errors
    assert not official.named("execDetails")


def test_official_client_reads_positions_and_account_summary(official):
    official.reqPositions()
    official.wait_for("positionEnd")
    assert len(official.named("position")) >= 3
    official.reqAccountSummary(9, "All", "NetLiquidation,TotalCashValue,BuyingPower")
    official.wait_for("accountSummaryEnd")
    tags = {args[2] for args in official.named("accountSummary")}
    assert tags == {"NetLiquidation", "TotalCashValue", "BuyingPower"}
