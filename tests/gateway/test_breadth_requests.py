"""Requests beyond stocks and orders, through real ib_async: answered with data, or with TWS's
error carrying the request's id (never a hang, never a silent NaN)."""

from __future__ import annotations

import math
import re

import pytest
from ib_async import (
    ContFuture,
    Forex,
    Future,
    Index,
    MarketOrder,
    ScannerSubscription,
    Stock,
    TagValue,
)
from ib_async.util import UNSET_DOUBLE
from support import CLOCK, qualified, spx_option, wait_until


def last_error(ib, errors, code: int) -> tuple[int, int, str]:
    wait_until(ib, lambda: any(e[1] == code for e in errors))
    return next(e for e in errors if e[1] == code)


# -- market data -------------------------------------------------------------------------------


def test_generic_ticks_arrive_and_an_unknown_one_is_refused_with_the_req_id(ib, errors):
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    ticker = ib.reqMktData(aapl, "233,236,106,104,165,221,100,101,258")
    wait_until(ib, lambda: ticker.rtVolume == ticker.rtVolume and ticker.impliedVolatility > 0)
    wait_until(ib, lambda: ticker.fundamentalRatios is not None)
    assert ticker.fundamentalRatios.PEEXCLXOR > 0
    assert ticker.shortableShares > 0 and ticker.shortable == 3.0
    assert 0 < ticker.histVolatility < 2 and ticker.markPrice == ticker.markPrice
    ib.cancelMktData(aapl)
    ib.reqMktData(aapl, "999")
    req_id, code, text = last_error(ib, errors, 321)
    assert req_id > 0 and "999" in text


def test_fx_quotes_carry_no_trades_and_index_quotes_no_bid_or_ask_as_tws(ib):
    eurusd = ib.reqMktData(qualified(ib, Forex("EURUSD")))
    spx = ib.reqMktData(qualified(ib, Index("SPX", "CBOE")))
    wait_until(ib, lambda: eurusd.bid > 0 and eurusd.close > 0 and spx.last > 0 and spx.close > 0)
    ib.sleep(0.3)
    assert math.isnan(eurusd.last) and math.isnan(eurusd.volume) and eurusd.lastTimestamp is None
    assert eurusd.marketPrice() == eurusd.midpoint() and eurusd.halted == 0
    assert math.isnan(spx.bid) and math.isnan(spx.ask) and spx.lastSize == 0
    assert spx.marketPrice() == spx.last and spx.low <= spx.last <= spx.high


def test_option_ticks_carry_greeks_while_streaming(ib):
    call = spx_option(ib, 5250.0, "C", "SPXW", "CBOE")
    ticker = ib.reqMktData(call, "106")
    wait_until(ib, lambda: ticker.modelGreeks is not None and ticker.bidGreeks is not None)
    g = ticker.modelGreeks
    assert 0 < g.delta < 1 and g.gamma > 0 and g.vega > 0 and g.theta < 0
    assert g.undPrice > 5000 and not math.isnan(ticker.impliedVolatility)


@pytest.mark.parametrize("kind", ["Last", "AllLast", "BidAsk", "MidPoint"])
def test_tick_by_tick_types_tick_under_a_frozen_clock(ib, kind):
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    seen = []
    ticker = ib.reqTickByTickData(aapl, kind)
    ticker.updateEvent += lambda t: seen.extend(t.tickByTicks)
    wait_until(ib, lambda: len(seen) >= 2, timeout=5)
    ib.cancelTickByTickData(aapl, kind)
    values = [v for t in seen for v in t._asdict().values() if isinstance(v, float)]
    assert values and not any(math.isnan(v) for v in values)


@pytest.mark.parametrize("kind", ["Last", "AllLast", "BidAsk", "MidPoint"])
def test_tick_by_tick_number_of_ticks_sends_past_ticks_first(ib, kind):
    """numberOfTicks > 0: that many past ticks (up to now) arrive as tick-by-tick messages
    before the live ones, and ib_async's ticker.tickByTicks holds them."""
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    batches: list[list] = []
    ticker = ib.reqTickByTickData(aapl, kind, numberOfTicks=25)
    ticker.updateEvent += lambda t: batches.append(list(t.tickByTicks))
    wait_until(ib, lambda: len(batches) >= 2, timeout=5)
    ib.cancelTickByTickData(aapl, kind)
    first = batches[0]
    assert len(first) >= 25  # the back-fill, perhaps with the first live tick
    past = first[:25]
    if kind in ("Last", "AllLast"):
        expected = ib.reqHistoricalTicks(aapl, "", CLOCK, 25, "TRADES", useRth=True)
        assert [t.price for t in past] == [t.price for t in expected]
        assert all(t.size > 0 for t in past)
    elif kind == "BidAsk":
        assert all(0 < t.bidPrice < t.askPrice for t in past)
        changes = zip(past, past[1:], strict=False)
        assert all(a[1:5] != b[1:5] for a, b in changes)  # each one a change
    else:
        assert all(a.midPoint != b.midPoint for a, b in zip(past, past[1:], strict=False))


def test_tick_by_tick_ignore_size_sends_price_changes_only(ib):
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    seen: list = []
    ticker = ib.reqTickByTickData(aapl, "BidAsk", numberOfTicks=20, ignoreSize=True)
    ticker.updateEvent += lambda t: seen.extend(t.tickByTicks)
    wait_until(ib, lambda: len(seen) >= 22, timeout=5)
    ib.cancelTickByTickData(aapl, "BidAsk")
    pairs = [(t.bidPrice, t.askPrice) for t in seen]
    assert all(a != b for a, b in zip(pairs, pairs[1:], strict=False))


def test_bad_tick_by_tick_real_time_bar_and_tick_requests_name_the_problem(ib, errors):
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    ib.reqTickByTickData(aapl, "Trades")
    assert "Invalid tick type" in last_error(ib, errors, 321)[2]
    errors.clear()
    bars = ib.reqRealTimeBars(aapl, 10, "TRADES", False)
    req_id, _, text = last_error(ib, errors, 321)
    assert req_id == bars.reqId and "5 seconds" in text
    errors.clear()
    ticks = ib.reqHistoricalTicks(aapl, CLOCK, CLOCK, 10, "TRADES", useRth=True)
    assert ticks == [] and "exactly one of" in last_error(ib, errors, 162)[2]


def test_histogram(ib, errors):
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    items = ib.reqHistogramData(aapl, True, "3 days")
    assert items and all(i.count > 0 for i in items)
    assert ib.reqHistogramData(aapl, True, "soon") == []
    assert "soon" in last_error(ib, errors, 162)[2]


def test_real_time_trades_bars_and_historical_trades(ib):
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    bars = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
    wait_until(ib, lambda: len(bars) >= 2, timeout=5)
    ib.cancelRealTimeBars(bars)
    assert all(b.low <= b.open_ <= b.high and b.volume > 0 for b in bars)
    assert (bars[1].time - bars[0].time).total_seconds() == 5
    ticks = ib.reqHistoricalTicks(aapl, "", CLOCK, 50, "TRADES", useRth=True)
    assert len(ticks) == 50 and ticks[-1].time == CLOCK and ticks[0].exchange == "NASDAQ"
    mids = ib.reqHistoricalTicks(aapl, CLOCK.replace(minute=0), "", 20, "MIDPOINT", useRth=True)
    assert len(mids) == 20 and all(t.price > 0 for t in mids)


def test_stock_depth_is_level_2_with_market_makers(ib):
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    ticker = ib.reqMktDepth(aapl, numRows=3, isSmartDepth=True)
    wait_until(ib, lambda: len(ticker.domBids) == 3 and len(ticker.domAsks) == 3)
    assert all(level.marketMaker for level in ticker.domBids + ticker.domAsks)
    assert ticker.domBids[0].price < ticker.domAsks[0].price
    assert [b.price for b in ticker.domBids] == sorted(
        (b.price for b in ticker.domBids), reverse=True
    )


@pytest.mark.parametrize(
    ("contract", "lot", "most"),
    [(Forex("EURUSD"), 1_000_000, 50_000_000), (ContFuture("ES", "CME"), 1, 100)],
)
def test_depth_levels_below_the_top_are_in_the_instruments_own_lots(ib, contract, lot, most):
    """FX depth in millions of the base currency like its quote; futures in contracts."""
    ticker = ib.reqMktDepth(qualified(ib, contract), numRows=5)
    wait_until(ib, lambda: len(ticker.domBids) == 5 and len(ticker.domAsks) == 5)
    deeper = [level.size for level in ticker.domBids[1:] + ticker.domAsks[1:]]
    assert all(size % lot == 0 and 0 < size <= most for size in deeper)


def test_keep_up_to_date_bars_update_the_last_bar(ib):
    eurusd = qualified(ib, Forex("EURUSD"))
    bars = ib.reqHistoricalData(eurusd, "", "60 S", "5 secs", "BID", True, keepUpToDate=True)
    count = len(bars)
    wait_until(ib, lambda: len(bars) > count + 1, timeout=6)
    ib.cancelHistoricalData(bars)
    assert bars[-1].date > bars[count - 1].date


@pytest.mark.parametrize(
    "what",
    ["BID_ASK", "ASK", "ADJUSTED_LAST", "HISTORICAL_VOLATILITY", "OPTION_IMPLIED_VOLATILITY"],
)
def test_more_what_to_show(ib, what):
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    bars = ib.reqHistoricalData(aapl, "", "5 D", "1 day", what, True)
    assert len(bars) == 5 and all(b.close > 0 for b in bars)


@pytest.mark.parametrize(("duration", "bar_size"), [("1800 S", "5 mins"), ("10 D", "1 day")])
def test_bid_ask_bars_are_average_bid_max_ask_min_bid_average_ask(ib, duration, bar_size):
    """TWS's BID_ASK bar: open = time-average bid, high = max ask, low = min bid, close =
    time-average ask, consistent with the BID and ASK bars of the same request."""
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    ba, bid, ask = (
        ib.reqHistoricalData(aapl, "", duration, bar_size, what, True)
        for what in ("BID_ASK", "BID", "ASK")
    )
    assert len(ba) == len(bid) == len(ask) > 1
    for both, b, a in zip(ba, bid, ask, strict=True):
        assert both.date == b.date == a.date
        assert both.low == b.low and both.high == a.high
        assert b.low <= both.open <= b.high and a.low <= both.close <= a.high
        assert both.open < both.close  # the average ask is above the average bid
        assert both.volume == -1 and both.barCount == -1
    assert any(bar.open not in (b.open, b.close) for bar, b in zip(ba, bid, strict=True))


# -- options and futures ---------------------------------------------------------------------


def test_futures_quote_near_their_carry_fair_value(ib):
    es = qualified(ib, Future("ES", "202612", "CME"))
    spx = qualified(ib, Index("SPX", "CBOE"))
    fut, index = ib.reqTickers(es, spx)
    assert es.multiplier == "50" and 0 < fut.marketPrice() / index.marketPrice() - 1 < 0.01


def test_a_continuous_future_is_the_front_month(ib):
    cont = qualified(ib, ContFuture("NQ", "CME"))
    [front] = ib.reqContractDetails(Future("NQ", "202612", "CME"))
    assert cont.secType == "CONTFUT" and cont.conId == front.contract.conId
    [ticker] = ib.reqTickers(Future(conId=cont.conId))
    assert ticker.marketPrice() > 0


def test_ambiguous_future_is_refused(ib, errors):
    assert len(ib.reqContractDetails(Future("ES", exchange="CME"))) == 5  # details list them all
    ib.client.reqMktData(9001, Future("ES", exchange="CME"), "", False, False, [])
    assert last_error(ib, errors, 200)[0] == 9001 and "ambiguous" in last_error(ib, errors, 200)[2]


def test_option_calculations(ib, errors):
    put = spx_option(ib, 5200.0, "P", "SPX", "SMART")
    priced = ib.calculateOptionPrice(put, 0.2, 5250.0)
    implied = ib.calculateImpliedVolatility(put, priced.optPrice, 5250.0)
    assert math.isclose(implied.impliedVol, 0.2, abs_tol=1e-6) and implied.delta < 0
    assert ib.calculateImpliedVolatility(put, 1e6, 5250.0) is None
    assert "no volatility" in last_error(ib, errors, 321)[2]


def test_sec_def_of_an_unknown_underlying_ends_empty(ib):
    assert ib.reqSecDefOptParams("ZZZZ", "", "STK", 1) == []
    assert ib.reqSecDefOptParams("ES", "CME", "FUT", 0) == []


# -- scanners, research, rules, account ---------------------------------------------------------


def test_scanner_filters_and_bad_codes(ib, errors):
    sub = ScannerSubscription(instrument="STK", locationCode="STK.NYSE", scanCode="MOST_ACTIVE")
    rows = ib.reqScannerData(sub, [], [TagValue("priceBelow", "100")])
    assert rows and all(r.contractDetails.contract.symbol in {"BAC", "KO", "DIS"} for r in rows)
    bad = ScannerSubscription(instrument="STK", locationCode="STK.US", scanCode="NOPE")
    assert len(ib.reqScannerData(bad)) == 0
    assert "scan code 'NOPE'" in last_error(ib, errors, 162)[2]


def test_fundamentals_news_and_rules(ib, errors):
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    for report in (
        "ReportSnapshot",
        "ReportsFinSummary",
        "ReportRatios",
        "ReportsFinStatements",
        "RESC",
    ):
        assert "simulated" in ib.reqFundamentalData(aapl, report)
    assert not ib.reqFundamentalData(qualified(ib, Forex("EURUSD")), "ReportSnapshot")
    assert last_error(ib, errors, 430)
    news = ib.reqHistoricalNews(aapl.conId, "BRFG", "", "", 3)
    assert len(news) == 3 and all("simulated" in n.headline for n in news)
    assert "APPLE INC" in ib.reqNewsArticle("BRFG", news[0].articleId).articleText
    ib.reqNewsArticle("BRFG", "BRFG$nothing")
    assert last_error(ib, errors, 10172)
    assert ib.reqMarketRule(239)[0].increment == 0.00005
    ib.reqUserInfo()  # ib_async ends the request without returning the (empty) id
    assert ib.reqSmartComponents("9c0001")[0].exchange == "ARCA"


def test_requests_ib_async_only_sends_raw(ib):
    """ib_async's client sends these, but its IB has no method that waits for the answer."""
    seen = {}
    ib.wrapper.familyCodes = lambda codes: seen.setdefault("familyCodes", codes)
    ib.wrapper.softDollarTiers = lambda req_id, tiers: seen.setdefault(
        "softDollarTiers", (req_id, tiers)
    )
    ib.client.reqFamilyCodes()
    ib.client.reqSoftDollarTiers(77)
    wait_until(ib, lambda: len(seen) == 2)
    assert seen["familyCodes"][0].accountID.startswith("DU")
    assert seen["softDollarTiers"] == (77, [])


def test_pnl_subscriptions(ib, gateway):
    pnl = ib.reqPnL(gateway.account_id)
    wait_until(ib, lambda: not math.isnan(pnl.dailyPnL))
    position = ib.positions()[0]
    single = ib.reqPnLSingle(gateway.account_id, "", position.contract.conId)
    wait_until(ib, lambda: not math.isnan(single.value))
    assert single.position == position.position and single.value != UNSET_DOUBLE
    ib.cancelPnLSingle(gateway.account_id, "", position.contract.conId)
    ib.cancelPnL(gateway.account_id)


def test_account_values_by_currency_follow_fx_rates(ib):
    rates = {v.currency: float(v.value) for v in ib.accountValues() if v.tag == "ExchangeRate"}
    assert rates["USD"] == 1.0 and 0.5 < rates["EUR"] < 2 and 0.001 < rates["JPY"] < 0.02
    base = [v for v in ib.accountValues() if v.currency == "BASE"]
    assert {v.tag for v in base} >= {"NetLiquidationByCurrency", "CashBalance"}
    assert re.fullmatch(r"-?\d+\.\d\d", base[0].value)


def test_streams_replay_the_same_schedule_under_a_frozen_clock(gateway):
    from support import connect_ib

    runs = []
    for _ in range(2):
        ib = connect_ib(gateway)
        aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
        seen = []
        ticker = ib.reqTickByTickData(aapl, "BidAsk")
        ticker.updateEvent += lambda t, seen=seen: seen.extend(t.tickByTicks)
        wait_until(ib, lambda seen=seen: len(seen) >= 5, timeout=5)
        ib.disconnect()
        runs.append([(t.bidPrice, t.askPrice, t.bidSize, t.askSize) for t in seen[:5]])
    assert runs[0] == runs[1] and len(set(runs[0])) == 5


# -- orders beyond stocks ----------------------------------------------------------------------


def test_an_option_order_books_contracts_times_100_with_the_option_schedule(ib, gateway):
    call = spx_option(ib, 5250.0, "C", "SPX", "SMART")
    cash_before = float(next(v.value for v in ib.accountValues() if v.tag == "TotalCashValue"))
    trade = ib.placeOrder(call, MarketOrder("BUY", 2))
    wait_until(ib, trade.isDone)
    fill = trade.fills[0]
    assert trade.orderStatus.status == "Filled" and fill.commissionReport.commission == 1.30
    wait_until(ib, lambda: any(p.contract.conId == call.conId for p in ib.positions()))
    [position] = [p for p in ib.positions() if p.contract.conId == call.conId]
    assert position.position == 2
    assert math.isclose(position.avgCost, fill.execution.price * 100 + 0.65, rel_tol=1e-9)
    wait_until(ib, lambda: any(p.contract.conId == call.conId for p in ib.portfolio()))
    [item] = [p for p in ib.portfolio() if p.contract.conId == call.conId]
    assert math.isclose(item.marketValue, 2 * item.marketPrice * 100, rel_tol=1e-9)
    wait_until(
        ib,
        lambda: (
            float(next(v.value for v in ib.accountValues() if v.tag == "TotalCashValue"))
            != cash_before
        ),
    )
    cash_after = float(next(v.value for v in ib.accountValues() if v.tag == "TotalCashValue"))
    assert math.isclose(
        cash_before - cash_after, 2 * fill.execution.price * 100 + 1.30, abs_tol=0.01
    )


def test_an_fx_order_pays_the_idealpro_schedule(ib):
    eurusd = qualified(ib, Forex("EURUSD"))
    trade = ib.placeOrder(eurusd, MarketOrder("BUY", 20000))
    wait_until(ib, trade.isDone)
    assert trade.fills[0].commissionReport.commission == 2.00
    wait_until(
        ib, lambda: any(v.tag == "CashBalance" and v.currency == "EUR" for v in ib.accountValues())
    )
    cash = {v.currency: v.value for v in ib.accountValues() if v.tag == "CashBalance"}
    assert float(cash["EUR"]) == 20000.0


def test_an_index_order_is_refused_by_name(ib):
    contract = qualified(ib, Index("SPX", "CBOE"))
    trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
    wait_until(ib, trade.isDone)
    assert trade.orderStatus.status in ("Cancelled", "Inactive") and not trade.fills
    assert any(
        "does not trade it" in entry.message and "SPX" in entry.message for entry in trade.log
    )


def test_a_fractional_option_order_is_refused(ib):
    put = spx_option(ib, 5250.0, "P", "SPX", "SMART")
    trade = ib.placeOrder(put, MarketOrder("BUY", 1.5))
    wait_until(ib, trade.isDone)
    assert any("Fractional" in entry.message and "1.5" in entry.message for entry in trade.log)


def test_an_adaptive_order_fills_and_keeps_its_algo(ib):
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    order = MarketOrder(
        "BUY", 10, algoStrategy="Adaptive", algoParams=[TagValue("adaptivePriority", "Patient")]
    )
    trade = ib.placeOrder(aapl, order)
    wait_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Filled"
    [open_order] = [
        t.order for t in ib.reqCompletedOrders(apiOnly=True) if t.order.permId == trade.order.permId
    ]
    assert open_order.algoStrategy == "Adaptive"
    assert [(p.tag, p.value) for p in open_order.algoParams] == [("adaptivePriority", "Patient")]


@pytest.mark.parametrize(
    ("strategy", "params", "reason"),
    [
        ("Sweep", [], "Unknown algo strategy 'Sweep'"),
        ("Adaptive", [TagValue("adaptivePriority", "Fast")], "is not one of Urgent"),
        ("Adaptive", [TagValue("maxPctVol", "0.1")], "has no parameter 'maxPctVol'"),
        ("Vwap", [TagValue("maxPctVol", "lots")], "needs a number"),
    ],
)
def test_bad_algo_orders_are_refused_by_name(ib, strategy, params, reason):
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, algoStrategy=strategy, algoParams=params))
    wait_until(ib, trade.isDone)
    assert not trade.fills and any(reason in entry.message for entry in trade.log)
