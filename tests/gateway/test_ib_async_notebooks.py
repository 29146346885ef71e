"""ib_async's own example notebooks, cell by cell, against the paper gateway.

The eight notebooks live in ib_async's repository (``notebooks/basics.ipynb``,
``contract_details``, ``option_chain``, ``bar_data``, ``tick_data``, ``market_depth``,
``scanners``, ``ordering``); they are not copied here. Each code cell below makes the same
ib_async calls as the notebook's cell (sleeps shortened: 30 s of streaming become 1-2 s) and
returns what the cell shows. Every notebook runs twice, against two fresh gateways with the
same seed and frozen clock, and every cell must

* return without error,
* show something: non-empty, with no NaN anywhere,
* show the same thing in both runs.

Streams under the frozen clock tick on a fixed schedule, but how many updates arrive during
``ib.sleep(2)`` depends on the machine; a streaming cell therefore shows the first updates it
received (its ticks, bars or depth rows in order), which are the same on every run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from ib_async import (
    IB,
    Contract,
    Forex,
    Index,
    LimitOrder,
    MarketOrder,
    Option,
    ScannerSubscription,
    Stock,
    TagValue,
    util,
)
from support import CLOCK, SEED

from ibkr_nb.gateway.server import PaperGateway

FIRST = 6  # streamed updates a cell shows
Cell = tuple[str, Callable[[SimpleNamespace], object]]
NOTEBOOKS: dict[str, list[Cell]] = {}


def cell(notebook: str, name: str):
    def register(func):
        NOTEBOOKS.setdefault(notebook, []).append((name, func))
        return func

    return register


def wait_for(ib: IB, predicate, timeout: float = 5.0) -> None:
    deadline = datetime.now(UTC).timestamp() + timeout
    while not predicate():
        assert datetime.now(UTC).timestamp() < deadline, "no update in time"
        ib.sleep(0.05)


QUOTE = ("bid", "ask", "bidSize", "askSize", "last", "high", "low", "close")
FX_QUOTE = ("bid", "ask", "bidSize", "askSize", "high", "low", "close")  # no trades on IDEALPRO
INDEX_QUOTE = ("last", "lastSize", "high", "low", "close")  # an index has no bid or ask


def quote_of(ticker, fields=QUOTE) -> dict:
    return {k: getattr(ticker, k) for k in fields}


def greeks(g) -> dict:
    return {k: round(getattr(g, k), 10) for k in ("impliedVol", "delta", "optPrice", "gamma", "vega", "theta", "undPrice")}  # fmt: skip


def ticks_of(record: list) -> list:
    return [(t.tickType, t.price, t.size) for t in record[:FIRST]]


# -- basics ------------------------------------------------------------------------------------


@cell("basics", "positions")
def _(ns):
    return [(p.contract.symbol, p.position, round(p.avgCost, 6)) for p in ns.ib.positions()]


@cell("basics", "net liquidation in BASE")
def _(ns):
    return [
        (v.tag, v.value, v.currency)
        for v in ns.ib.accountValues()
        if v.tag == "NetLiquidationByCurrency" and v.currency == "BASE"
    ]


@cell("basics", "contracts")
def _(ns):
    made = [
        Contract(conId=270639),
        Stock("AMD", "SMART", "USD"),
        Stock("INTC", "SMART", "USD", primaryExchange="NASDAQ"),
        Forex("EURUSD"),
    ]
    return [(c.conId, c.symbol, c.secType) for c in ns.ib.qualifyContracts(*made)]


@cell("basics", "contract details")
def _(ns):
    [cd] = ns.ib.reqContractDetails(Stock("TSLA", "SMART", "USD"))
    return (cd.contract.conId, cd.longName, cd.minTick, cd.tradingHours[:40])


@cell("basics", "positions vs reqPositions")
def _(ns):
    return sorted((p.contract.symbol, p.position) for p in ns.ib.reqPositions())


# -- contract details ----------------------------------------------------------------------------


@cell("contract_details", "reqContractDetails(Stock('AMD'))")
def _(ns):
    ns.cds = ns.ib.reqContractDetails(Stock("AMD"))
    return len(ns.cds)


@cell("contract_details", "cds[0]")
def _(ns):
    cd = ns.cds[0]
    return (cd.contract.conId, cd.marketName, cd.longName, cd.industry, cd.marketRuleIds)


@cell("contract_details", "contracts[0]")
def _(ns):
    ns.contracts = [cd.contract for cd in ns.cds]
    return repr(ns.contracts[0])


@cell("contract_details", "util.df(contracts)")
def _(ns):
    df = util.df(ns.contracts)
    return df[["secType", "conId", "symbol", "exchange", "primaryExchange", "currency"]].to_dict(
        "records"
    )


@cell("contract_details", "AMD in USD on SMART is unique")
def _(ns):
    ns.amd = Stock("AMD", "SMART", "USD")
    return len(ns.ib.reqContractDetails(ns.amd))


@cell("contract_details", "INTC is unique")
def _(ns):
    ns.intc = Stock("INTC", "SMART", "USD")
    return len(ns.ib.reqContractDetails(ns.intc))


@cell("contract_details", "a non-existing contract")
def _(ns):
    ns.xxx = Stock("XXX", "SMART", "USD")
    ns.ib.RaiseRequestErrors = False
    found = ns.ib.reqContractDetails(ns.xxx)
    ns.ib.RaiseRequestErrors = True
    return f"{len(found)} contracts"


@cell("contract_details", "a Forex contract")
def _(ns):
    ns.eurusd = Forex("EURUSD")
    return len(ns.ib.reqContractDetails(ns.eurusd))


@cell("contract_details", "amd before qualifying")
def _(ns):
    return repr(ns.amd)


@cell("contract_details", "qualifyContracts(amd)")
def _(ns):
    ns.ib.qualifyContracts(ns.amd)
    return repr(ns.amd)


@cell("contract_details", "Contract(conId=4391)")
def _(ns):
    contract_4391 = Contract(conId=4391)
    ns.ib.qualifyContracts(contract_4391)
    assert contract_4391 == ns.amd
    return repr(contract_4391)


@cell("contract_details", "qualify several")
def _(ns):
    ns.ib.RaiseRequestErrors = False
    qualified = ns.ib.qualifyContracts(ns.amd, ns.intc, ns.xxx, ns.eurusd)
    ns.ib.RaiseRequestErrors = True
    assert ns.intc in qualified and ns.xxx not in qualified
    return [c.symbol if c else None for c in qualified]


@cell("contract_details", "reqMatchingSymbols('intc')")
def _(ns):
    matches = ns.ib.reqMatchingSymbols("intc")
    assert ns.intc in [m.contract for m in matches]
    return [(m.contract.symbol, m.contract.conId, m.derivativeSecTypes) for m in matches]


# -- option chain --------------------------------------------------------------------------------


@cell("option_chain", "qualify SPX")
def _(ns):
    ns.spx = Index("SPX", "CBOE")
    return repr(ns.ib.qualifyContracts(ns.spx))


@cell("option_chain", "reqMarketDataType(4)")
def _(ns):
    ns.ib.reqMarketDataType(4)
    spy = Stock("SPY", "SMART", "USD")
    ns.ib.qualifyContracts(spy)
    [ticker] = ns.ib.reqTickers(spy)
    return ticker.marketDataType


@cell("option_chain", "reqTickers(spx)")
def _(ns):
    [ns.ticker] = ns.ib.reqTickers(ns.spx)
    return quote_of(ns.ticker, INDEX_QUOTE)


@cell("option_chain", "marketPrice")
def _(ns):
    ns.spx_value = ns.ticker.marketPrice()
    return ns.spx_value


@cell("option_chain", "reqSecDefOptParams")
def _(ns):
    ns.chains = ns.ib.reqSecDefOptParams(ns.spx.symbol, "", ns.spx.secType, ns.spx.conId)
    df = util.df(ns.chains)
    return [(r.exchange, r.tradingClass, r.multiplier, len(r.expirations), len(r.strikes)) for r in df.itertuples()]  # fmt: skip


@cell("option_chain", "the SPX chain on SMART")
def _(ns):
    ns.chain = next(c for c in ns.chains if c.tradingClass == "SPX" and c.exchange == "SMART")
    return (ns.chain.expirations[:3], ns.chain.strikes[:5])


@cell("option_chain", "qualify 3 expiries x strikes within 20 x P/C")
def _(ns):
    v = ns.spx_value
    strikes = [k for k in ns.chain.strikes if k % 5 == 0 and v - 20 < k < v + 20]
    expirations = sorted(ns.chain.expirations)[:3]
    contracts = [
        Option("SPX", expiration, strike, right, "SMART", tradingClass="SPX")
        for right in ["P", "C"]
        for expiration in expirations
        for strike in strikes
    ]
    ns.contracts = ns.ib.qualifyContracts(*contracts)
    assert len(ns.contracts) == len(contracts)
    return len(ns.contracts)


@cell("option_chain", "contracts[0]")
def _(ns):
    return repr(ns.contracts[0])


@cell("option_chain", "reqTickers(*contracts)")
def _(ns):
    tickers = ns.ib.reqTickers(*ns.contracts)
    t = tickers[0]
    return {
        "quote": quote_of(t),
        "volume": t.volume,
        **{
            k: greeks(getattr(t, k))
            for k in ("bidGreeks", "askGreeks", "lastGreeks", "modelGreeks")
        },
        "all have model greeks": all(x.modelGreeks is not None for x in tickers),
    }


# -- bar data ------------------------------------------------------------------------------------


@cell("bar_data", "reqHeadTimeStamp")
def _(ns):
    ns.contract = Stock("TSLA", "SMART", "USD")
    return ns.ib.reqHeadTimeStamp(ns.contract, whatToShow="TRADES", useRTH=True)


@cell("bar_data", "60 days of hourly bars")
def _(ns):
    ns.bars = ns.ib.reqHistoricalData(
        ns.contract,
        endDateTime="",
        durationStr="60 D",
        barSizeSetting="1 hour",
        whatToShow="TRADES",
        useRTH=True,
        formatDate=1,
    )
    return len(ns.bars)


@cell("bar_data", "bars[0]")
def _(ns):
    return repr(ns.bars[0])


@cell("bar_data", "util.df(bars) head and tail")
def _(ns):
    ns.df = util.df(ns.bars)
    return (ns.df.head().to_dict("records"), ns.df.tail().to_dict("records"))


@cell("bar_data", "close column to plot")
def _(ns):
    return ns.df["close"].describe().to_dict()


@cell("bar_data", "keepUpToDate bars of EURUSD")
def _(ns):
    ns.contract = Forex("EURUSD")
    ns.live = ns.ib.reqHistoricalData(
        ns.contract,
        endDateTime="",
        durationStr="900 S",
        barSizeSetting="10 secs",
        whatToShow="MIDPOINT",
        useRTH=True,
        formatDate=1,
        keepUpToDate=True,
    )
    # 900 S of 10-second bars are 90; an update may already have appended the 91st
    assert len(ns.live) in (90, 91)
    return (repr(ns.live[0]), repr(ns.live[89]))


@cell("bar_data", "updateEvent while keeping up to date")
def _(ns):
    updates = []
    ns.live.updateEvent += lambda bars, has_new_bar: updates.append((repr(bars[-1]), has_new_bar))
    wait_for(ns.ib, lambda: len(updates) >= FIRST)
    ns.ib.cancelHistoricalData(ns.live)
    return updates[:FIRST]


@cell("bar_data", "reqRealTimeBars")
def _(ns):
    ns.printed = []
    ns.rt = ns.ib.reqRealTimeBars(ns.contract, 5, "MIDPOINT", False)
    ns.rt.updateEvent += lambda bars, has_new_bar: ns.printed.append(repr(bars[-1]))
    return type(ns.rt).__name__


@cell("bar_data", "sleep, then cancelRealTimeBars")
def _(ns):
    wait_for(ns.ib, lambda: len(ns.printed) >= 3)
    ns.ib.cancelRealTimeBars(ns.rt)
    return ns.printed[:3]


# -- tick data -----------------------------------------------------------------------------------

PAIRS = ("EURUSD", "USDJPY", "GBPUSD", "USDCHF", "USDCAD", "AUDUSD")


@cell("tick_data", "Forex contracts")
def _(ns):
    ns.contracts = [Forex(pair) for pair in PAIRS]
    ns.ib.qualifyContracts(*ns.contracts)
    ns.eurusd = ns.contracts[0]
    return [c.conId for c in ns.contracts]


@cell("tick_data", "reqMktData for each")
def _(ns):
    ns.record = {c.pair(): [] for c in ns.contracts}
    for contract in ns.contracts:
        ticker = ns.ib.reqMktData(contract, "", False, False)
        ticker.updateEvent += lambda t: ns.record[t.contract.pair()].extend(t.ticks)
    return len(ns.ib.tickers())


@cell("tick_data", "ticker after ib.sleep(2)")
def _(ns):
    ticker = ns.ib.ticker(ns.eurusd)
    ns.ib.sleep(2)
    assert all(math.isfinite(v) for v in quote_of(ticker, FX_QUOTE).values())
    return ticks_of(ns.record["EURUSD"])


@cell("tick_data", "marketPrice")
def _(ns):
    price = ns.ib.ticker(ns.eurusd).marketPrice()
    ticker = ns.ib.ticker(ns.eurusd)
    assert ticker.bid <= price <= ticker.ask
    return ticks_of(ns.record["EURUSD"])[:2]


@cell("tick_data", "live table from pendingTickersEvent")
def _(ns):
    rows = {}

    def on_pending(tickers):
        for t in tickers:
            rows[t.contract.pair()] = (t.bidSize, t.bid, t.ask, t.askSize, t.high, t.low, t.close)

    ns.ib.pendingTickersEvent += on_pending
    wait_for(ns.ib, lambda: len(rows) == len(PAIRS))
    ns.ib.pendingTickersEvent -= on_pending
    assert all(math.isfinite(x) for row in rows.values() for x in row)
    return {pair: ticks_of(ticks) for pair, ticks in ns.record.items()}


@cell("tick_data", "cancelMktData")
def _(ns):
    for contract in ns.contracts:
        ns.ib.cancelMktData(contract)
    ns.ib.sleep(0.5)
    before = {pair: len(ticks) for pair, ticks in ns.record.items()}
    ns.ib.sleep(0.6)
    assert before == {pair: len(ticks) for pair, ticks in ns.record.items()}
    return "no ticks after cancelling"


@cell("tick_data", "reqTickByTickData BidAsk")
def _(ns):
    seen = []
    ticker = ns.ib.reqTickByTickData(ns.eurusd, "BidAsk")
    ticker.updateEvent += lambda t: seen.extend(t.tickByTicks)
    wait_for(ns.ib, lambda: len(seen) >= 3)
    print(ticker)
    ns.ib.cancelTickByTickData(ticker.contract, "BidAsk")
    return [(t.bidPrice, t.askPrice, t.bidSize, t.askSize) for t in seen[:3]]


@cell("tick_data", "reqHistoricalTicks BID_ASK")
def _(ns):
    ticks = ns.ib.reqHistoricalTicks(ns.eurusd, "", CLOCK, 1000, "BID_ASK", useRth=False)
    return (len(ticks), repr(ticks[-1]))


# -- market depth --------------------------------------------------------------------------------


@cell("market_depth", "reqMktDepthExchanges")
def _(ns):
    return [repr(d) for d in ns.ib.reqMktDepthExchanges()[:5]]


@cell("market_depth", "reqMktDepth(EURUSD)")
def _(ns):
    ns.contract = Forex("EURUSD")
    ns.ib.qualifyContracts(ns.contract)
    ns.ticker = ns.ib.reqMktDepth(ns.contract)
    return ns.ticker.contract.conId


@cell("market_depth", "order book from updateEvent")
def _(ns):
    books, seen = [], []

    def on_update(ticker):
        seen.extend(ticker.domTicks)
        bids, asks = ticker.domBids, ticker.domAsks
        books.append(
            [
                (
                    bids[i].size if i < len(bids) else 0,
                    bids[i].price if i < len(bids) else 0,
                    asks[i].price if i < len(asks) else 0,
                    asks[i].size if i < len(asks) else 0,
                )
                for i in range(5)
            ]
        )

    ns.ticker.updateEvent += on_update
    wait_for(ns.ib, lambda: len(seen) >= 10)
    first = [(d.position, d.operation, d.side, d.price, d.size) for d in seen[:10]]
    return (first, books[-1][0][1] < books[-1][0][2])


@cell("market_depth", "cancelMktDepth")
def _(ns):
    ns.ib.cancelMktDepth(ns.contract)
    return len(ns.ticker.domBids)


# -- scanners ------------------------------------------------------------------------------------


@cell("scanners", "TOP_PERC_GAIN")
def _(ns):
    ns.sub = ScannerSubscription(
        instrument="STK", locationCode="STK.US.MAJOR", scanCode="TOP_PERC_GAIN"
    )
    scan = ns.ib.reqScannerData(ns.sub)
    return (len(scan), repr(scan[0].contractDetails.contract))


@cell("scanners", "abovePrice = 200")
def _(ns):
    ns.sub.abovePrice = 200
    scan = ns.ib.reqScannerData(ns.sub)
    return [sd.contractDetails.contract.symbol for sd in scan]


@cell("scanners", "reqScannerParameters")
def _(ns):
    ns.xml = ns.ib.reqScannerParameters()
    return len(ns.xml)


@cell("scanners", "write the XML to a file")
def _(ns):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scanner_parameters.xml"
        path.write_text(ns.xml)
        return path.stat().st_size


@cell("scanners", "filter tags")
def _(ns):
    import xml.etree.ElementTree as ET

    ns.tree = ET.fromstring(ns.xml)
    return [elem.text for elem in ns.tree.findall(".//AbstractField/code")]


@cell("scanners", "filtering the new way")
def _(ns):
    sub = ScannerSubscription(
        instrument="STK", locationCode="STK.US.MAJOR", scanCode="TOP_PERC_GAIN"
    )
    tags = [
        TagValue("changePercAbove", "-100"),
        TagValue("priceAbove", 5),
        TagValue("priceBelow", 500),
    ]
    scan = ns.ib.reqScannerData(sub, [], tags)
    return [sd.contractDetails.contract.symbol for sd in scan]


@cell("scanners", "scan codes")
def _(ns):
    return [e.text for e in ns.tree.findall(".//scanCode")]


@cell("scanners", "instrument types")
def _(ns):
    return sorted({e.text for e in ns.tree.findall(".//Instrument/type")})


@cell("scanners", "location codes")
def _(ns):
    return [e.text for e in ns.tree.findall(".//locationCode")]


# -- ordering ------------------------------------------------------------------------------------


@cell("ordering", "EURUSD and a limit order")
def _(ns):
    ns.contract = Forex("EURUSD")
    ns.ib.qualifyContracts(ns.contract)
    ns.order = LimitOrder("SELL", 20000, 1.11)
    return repr(ns.contract)


@cell("ordering", "placeOrder")
def _(ns):
    ns.trade = ns.ib.placeOrder(ns.contract, ns.order)
    return ns.trade.order.orderId


@cell("ordering", "trade.log")
def _(ns):
    ns.ib.sleep(1)
    return [(e.status, e.message) for e in ns.trade.log]


@cell("ordering", "trade in ib.trades()")
def _(ns):
    assert ns.trade in ns.ib.trades()
    return len(ns.ib.trades())


@cell("ordering", "order in ib.orders()")
def _(ns):
    assert ns.order in ns.ib.orders()
    return len(ns.ib.orders())


@cell("ordering", "an unrealistic limit")
def _(ns):
    ns.limit_order = LimitOrder("BUY", 20000, 0.05)
    ns.limit_trade = ns.ib.placeOrder(ns.contract, ns.limit_order)
    return repr(ns.limit_trade.order)


@cell("ordering", "status becomes Submitted")
def _(ns):
    ns.ib.sleep(1)
    assert ns.limit_trade.orderStatus.status == "Submitted"
    return ns.limit_trade.orderStatus.status


@cell("ordering", "in openTrades")
def _(ns):
    assert ns.limit_trade in ns.ib.openTrades()
    return len(ns.ib.openTrades())


@cell("ordering", "modify the limit")
def _(ns):
    ns.limit_order.lmtPrice = 0.10
    trade = ns.ib.placeOrder(ns.contract, ns.limit_order)
    wait_for(
        ns.ib,
        lambda: (
            trade.order.lmtPrice == 0.10
            and trade.log[-1].message == "Modify"
            or trade.log[-1].status == "Submitted"
        ),
    )
    return (trade.order.lmtPrice, trade.orderStatus.status)


@cell("ordering", "cancelOrder")
def _(ns):
    trade = ns.ib.cancelOrder(ns.limit_order)
    return trade.orderStatus.status


@cell("ordering", "limitTrade.log")
def _(ns):
    wait_for(ns.ib, lambda: ns.limit_trade.orderStatus.status == "Cancelled")
    return [e.status for e in ns.limit_trade.log]


@cell("ordering", "a market order, blocking")
def _(ns):
    trade = ns.ib.placeOrder(ns.contract, MarketOrder("BUY", 100))
    while not trade.isDone():
        ns.ib.waitOnUpdate()
    return (trade.orderStatus.status, trade.orderStatus.avgFillPrice)


@cell("ordering", "positions")
def _(ns):
    # TWS sends the position update after the fill; the next cell sees it a moment later
    filled = sum(
        f.execution.shares * (1 if f.execution.side == "BOT" else -1)
        for f in ns.ib.fills()
        if f.contract.secType == "CASH"
    )
    held = lambda: sum(p.position for p in ns.ib.positions() if p.contract.secType == "CASH")  # noqa: E731
    wait_for(ns.ib, lambda: held() == filled)
    return sorted((p.contract.symbol, p.contract.secType, p.position) for p in ns.ib.positions())


@cell("ordering", "commissions today")
def _(ns):
    return round(sum(fill.commissionReport.commission for fill in ns.ib.fills()), 6)


@cell("ordering", "whatIfOrder")
def _(ns):
    state = ns.ib.whatIfOrder(ns.contract, MarketOrder("SELL", 20000))
    return (state.initMarginChange, state.commission, state.commissionCurrency)


# -- the runs ------------------------------------------------------------------------------------

CLIENT_IDS = {
    "basics": 10,
    "contract_details": 11,
    "option_chain": 12,
    "ordering": 13,
    "bar_data": 14,
    "tick_data": 15,
    "market_depth": 16,
    "scanners": 17,
}


def run_notebook(name: str) -> list[tuple[str, object]]:
    """Every cell of ``name`` in order against a fresh gateway (a failing cell's output is the
    exception, so the test of that cell reports it)."""
    outputs = []
    with PaperGateway(port=0, seed=SEED, clock_start=CLOCK, fixed_clock=True) as gw:
        ib = IB()
        ib.RaiseRequestErrors = True
        ib.connect("127.0.0.1", gw.port, clientId=CLIENT_IDS[name], timeout=10)
        ns = SimpleNamespace(ib=ib)
        try:
            for cell_name, func in NOTEBOOKS[name]:
                try:
                    outputs.append((cell_name, func(ns)))
                except Exception as exc:  # reported by the cell's own test
                    outputs.append((cell_name, exc))
        finally:
            ib.disconnect()
    return outputs


@pytest.fixture(scope="module")
def runs():
    cache: dict[str, tuple[list, list]] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = (run_notebook(name), run_notebook(name))
        return cache[name]

    return get


def _nan_paths(value, path="output") -> list[str]:
    if isinstance(value, float) and math.isnan(value):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nan_paths(v, f"{path}[{k!r}]")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _nan_paths(v, f"{path}[{i}]")]
    if isinstance(value, str) and re.search(r"=nan\b", value):
        return [path]
    return []


CELLS = [(nb, i, name) for nb, cells in NOTEBOOKS.items() for i, (name, _) in enumerate(cells)]


@pytest.mark.parametrize(
    ("notebook", "index", "name"), CELLS, ids=[f"{nb}-{i:02d}-{name}" for nb, i, name in CELLS]
)
def test_notebook_cell(runs, notebook, index, name):
    first, second = runs(notebook)
    cell_name, output = first[index]
    assert cell_name == name
    if isinstance(output, BaseException):
        raise output
    assert output not in (None, "", [], {}, ()), f"{notebook} / {name} shows nothing"
    assert not _nan_paths(output), f"{notebook} / {name} shows NaN at {_nan_paths(output)}"
    assert second[index][1] == output, f"{notebook} / {name} differs between two runs"


def test_every_notebook_has_its_cells():
    assert set(NOTEBOOKS) == set(CLIENT_IDS)
    assert all(len(cells) >= 4 for cells in NOTEBOOKS.values())
