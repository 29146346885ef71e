"""The paper gateway through unmodified ib_async over a loopback socket: every message family."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from ib_async import (
    IB,
    ExecutionFilter,
    LimitOrder,
    MarketOrder,
    Order,
    Stock,
    StopLimitOrder,
    StopOrder,
)
from support import CLOCK, SEED, connect_ib, wait_until

from ibkr_nb.frames import KEY_ACCOUNT_TAGS
from ibkr_nb.gateway.server import PaperGateway

AAPL = Stock("AAPL", "SMART", "USD")


def aapl(ib: IB) -> Stock:
    """AAPL qualified (ib_async keys tickers by conId)."""
    return ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))[0]


def errors_of(ib: IB) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
    return seen


# -- session -------------------------------------------------------------------------------------


def test_handshake_negotiates_178_and_reports_a_paper_account(gateway, ib):
    assert ib.client.serverVersion() == 178
    assert ib.managedAccounts() == [gateway.account_id]
    assert gateway.account_id.startswith("DU")
    assert ib.client.getReqId() >= 1


def test_second_connection_with_same_client_id_gets_326_and_is_closed(gateway, ib):
    other = IB()
    seen = errors_of(other)
    with pytest.raises((ConnectionError, TimeoutError)):
        other.connect("127.0.0.1", gateway.port, clientId=1, timeout=3)
    assert any(code == 326 for _, code, _ in seen)
    assert not other.isConnected()
    assert ib.reqCurrentTime() == CLOCK  # the first client is unaffected


def test_current_time_and_ids(ib):
    assert ib.reqCurrentTime() == CLOCK
    first = ib.client.getReqId()
    ib.client.reqIds(1)
    assert ib.client.getReqId() > first


# -- contracts -----------------------------------------------------------------------------------


def test_contract_details_for_a_known_symbol(ib):
    (details,) = ib.reqContractDetails(AAPL)
    assert details.contract.conId == 265598
    assert details.contract.primaryExchange == "NASDAQ"
    assert details.minTick == 0.01
    assert details.longName
    sessions = details.tradingSessions()  # TWS's "YYYYMMDD:HHMM-YYYYMMDD:HHMM;..." form
    assert sessions[0].start.hour == 9 and sessions[0].start.minute == 30
    assert sessions[0].end.hour == 16
    assert ib.qualifyContracts(Stock(conId=8314))[0].symbol == "IBM"


def test_unknown_symbol_is_error_200(ib):
    seen = errors_of(ib)
    with pytest.raises(Exception, match="200"):
        ib.reqContractDetails(Stock("NOPE", "SMART", "USD"))
    assert any(code == 200 for _, code, _ in seen)


def test_matching_symbols_and_universe_size(ib):
    found = ib.reqMatchingSymbols("MS")
    assert "MSFT" in [d.contract.symbol for d in found]
    symbols = {
        d.contract.symbol for letter in "ABCDGIJKMNOPQSTVWX" for d in ib.reqMatchingSymbols(letter)
    }
    assert len(symbols) >= 20


# -- market data ---------------------------------------------------------------------------------


def test_snapshot_quote(ib):
    (ticker,) = ib.reqTickers(aapl(ib))
    assert 0 < ticker.bid < ticker.ask
    assert ticker.last > 0 and ticker.close > 0 and ticker.volume > 0
    assert ticker.bidSize >= 100 and ticker.askSize >= 100
    assert round(ticker.ask - ticker.bid, 2) >= 0.01


def test_delayed_market_data_type(ib):
    ib.reqMarketDataType(3)
    (ticker,) = ib.reqTickers(ib.qualifyContracts(Stock("MSFT", "SMART", "USD"))[0])
    assert ticker.marketDataType == 3
    assert ticker.bid > 0 and ticker.ask > ticker.bid


def test_market_data_type_out_of_range_is_an_error(ib):
    seen = errors_of(ib)
    ib.reqMarketDataType(7)
    wait_until(ib, lambda: any(code == 321 for _, code, _ in seen))


def test_streaming_quotes_tick_and_cancel(live_clock_gateway):
    ib = connect_ib(live_clock_gateway)
    try:
        contract = ib.qualifyContracts(AAPL)[0]
        ticker = ib.reqMktData(contract)
        updates = []
        ticker.updateEvent += lambda t: updates.append(t.last)
        wait_until(ib, lambda: len(updates) >= 3, timeout=5)
        ib.cancelMktData(contract)
        ib.sleep(0.3)
        count = len(updates)
        ib.sleep(0.6)
        assert len(updates) == count
    finally:
        ib.disconnect()


def test_historical_daily_and_intraday_bars(ib):
    daily = ib.reqHistoricalData(AAPL, "", "1 M", "1 day", "TRADES", True)
    assert 18 <= len(daily) <= 23
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in daily)
    intraday = ib.reqHistoricalData(AAPL, "", "3600 S", "5 mins", "MIDPOINT", True, formatDate=2)
    assert len(intraday) >= 6
    assert intraday[-1].date.tzinfo is not None


def test_historical_bad_duration_is_error_321(ib):
    seen = errors_of(ib)
    bars = ib.reqHistoricalData(aapl(ib), "", "7 Q", "1 day", "TRADES", True, timeout=1)
    assert not bars
    assert any(code == 321 and "duration" in text for _, code, text in seen)


# -- account -------------------------------------------------------------------------------------


def test_positions_and_account_summary(gateway, ib):
    positions = ib.reqPositions()
    assert len(positions) >= 3
    assert all(p.account == gateway.account_id for p in positions)
    tags = {
        v.tag: float(v.value)
        for v in ib.accountSummary(gateway.account_id)
        if v.tag not in ("AccountType", "Currency")
    }
    for tag in KEY_ACCOUNT_TAGS:
        assert tag in tags
    assert tags["NetLiquidation"] == pytest.approx(
        tags["TotalCashValue"] + sum(i.marketValue for i in ib.portfolio()), abs=0.05
    )


def test_account_updates_portfolio(gateway, ib):
    items = ib.portfolio(gateway.account_id)
    assert items
    for item in items:
        assert item.marketValue == pytest.approx(item.position * item.marketPrice, abs=0.01)
        assert item.unrealizedPNL == pytest.approx(
            item.marketValue - item.position * item.averageCost, abs=0.02
        )
    assert any(v.tag == "NetLiquidation" for v in ib.accountValues(gateway.account_id))


# -- orders --------------------------------------------------------------------------------------


def test_market_order_fills_at_the_ask_with_ibkr_commission(gateway, ib):
    (ticker,) = ib.reqTickers(aapl(ib))
    cash_before = _cash(ib, gateway)
    trade = ib.placeOrder(ib.qualifyContracts(AAPL)[0], MarketOrder("BUY", 100, orderRef="t-1"))
    wait_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Filled"
    (fill,) = trade.fills
    assert fill.execution.price == ticker.ask
    assert fill.execution.orderRef == "t-1"
    assert fill.commissionReport.commission == pytest.approx(1.00)  # 100 x 0.005 < 1.00 minimum
    assert fill.commissionReport.realizedPNL == 0.0  # opening fill: TWS sends unset, read as 0
    assert _cash(ib, gateway) == pytest.approx(cash_before - 100 * ticker.ask - 1.00, abs=0.01)


def test_closing_sale_reports_ibkr_style_realized_pnl(gateway, ib):
    ko = ib.qualifyContracts(Stock("KO", "SMART", "USD"))[0]
    (held,) = [p for p in ib.reqPositions() if p.contract.symbol == "KO"]
    trade = ib.placeOrder(ko, MarketOrder("SELL", 200))
    wait_until(ib, trade.isDone)
    (fill,) = [f for f in ib.fills() if f.execution.orderId == trade.order.orderId]
    commission = fill.commissionReport.commission
    assert commission == pytest.approx(1.00)  # 200 x 0.005 = 1.00
    expected = (fill.execution.price - held.avgCost) * 200 - commission
    assert fill.commissionReport.realizedPNL == pytest.approx(expected, abs=0.01)
    (after,) = [p for p in ib.reqPositions() if p.contract.symbol == "KO"]
    assert after.position == held.position - 200
    assert after.avgCost == pytest.approx(held.avgCost)  # a sale leaves the average cost


def _cash(ib, gateway) -> float:
    ib.reqAccountUpdates(gateway.account_id)
    values = {v.tag: v.value for v in ib.accountValues(gateway.account_id) if v.currency == "USD"}
    return float(values["TotalCashValue"])


def test_limit_order_rests_then_fills_when_price_crosses(gateway, ib):
    contract = ib.qualifyContracts(AAPL)[0]
    (ticker,) = ib.reqTickers(contract)
    limit = round(ticker.bid - 2.00, 2)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 10, limit))
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    gateway.set_price("AAPL", limit - 0.50)
    wait_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.avgFillPrice <= limit


def test_stop_and_stop_limit_trigger(gateway, ib):
    contract = ib.qualifyContracts(AAPL)[0]
    (ticker,) = ib.reqTickers(contract)
    stop = round(ticker.last + 1.00, 2)
    stop_trade = ib.placeOrder(contract, StopOrder("BUY", 5, stop))
    stop_limit = ib.placeOrder(contract, StopLimitOrder("BUY", 5, stop + 5, stop))
    wait_until(ib, lambda: stop_trade.orderStatus.status in ("PreSubmitted", "Submitted"))
    assert not stop_trade.fills
    gateway.set_price("AAPL", stop + 0.50)
    wait_until(ib, lambda: stop_trade.isDone() and stop_limit.isDone())
    assert stop_trade.orderStatus.status == "Filled"
    assert stop_limit.orderStatus.avgFillPrice <= stop + 5


def test_trailing_stop_follows_then_triggers(gateway, ib):
    contract = ib.qualifyContracts(AAPL)[0]
    (ticker,) = ib.reqTickers(contract)
    order = Order(action="SELL", totalQuantity=5, orderType="TRAIL", auxPrice=2.0)
    trade = ib.placeOrder(contract, order)
    wait_until(ib, lambda: trade.orderStatus.status in ("PreSubmitted", "Submitted"))
    gateway.set_price("AAPL", ticker.last + 5)  # trail stop ratchets up to about last + 3
    assert not trade.isDone()
    gateway.set_price("AAPL", ticker.last + 2)  # falls through the trailed stop
    wait_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Filled"


def test_bracket_children_wait_for_parent_and_oca_cancels_the_other(gateway, ib):
    contract = ib.qualifyContracts(AAPL)[0]
    (ticker,) = ib.reqTickers(contract)
    entry = round(ticker.ask + 0.05, 2)
    bracket = ib.bracketOrder("BUY", 10, entry, takeProfitPrice=entry + 3, stopLossPrice=entry - 3)
    trades = [ib.placeOrder(contract, o) for o in bracket]
    wait_until(ib, lambda: all(t.isDone() for t in trades[:1]))
    parent, profit, loss = trades
    assert parent.orderStatus.status == "Filled"
    wait_until(ib, lambda: profit.orderStatus.status == "Submitted")
    gateway.set_price("AAPL", entry + 3.5)
    wait_until(ib, lambda: profit.isDone() and loss.isDone())
    assert profit.orderStatus.status == "Filled"
    assert loss.orderStatus.status == "Cancelled"


def test_modify_by_resending_the_order_id(gateway, ib):
    contract = ib.qualifyContracts(AAPL)[0]
    (ticker,) = ib.reqTickers(contract)
    order = LimitOrder("BUY", 10, round(ticker.bid - 5, 2))
    trade = ib.placeOrder(contract, order)
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    order.lmtPrice = round(ticker.ask + 0.10, 2)
    ib.placeOrder(contract, order)
    wait_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Filled"


def test_what_if_reports_commission_and_margin_and_fills_nothing(gateway, ib):
    contract = ib.qualifyContracts(AAPL)[0]
    positions_before = [(p.contract.symbol, p.position) for p in ib.reqPositions()]
    state = ib.whatIfOrder(contract, MarketOrder("BUY", 1000))
    assert state.commission == pytest.approx(5.00)
    assert float(state.initMarginChange) > 0
    assert [(p.contract.symbol, p.position) for p in ib.reqPositions()] == positions_before
    assert not ib.reqExecutions()


def test_cancel_sends_cancelled_and_error_202(gateway, ib):
    seen = errors_of(ib)
    contract = ib.qualifyContracts(AAPL)[0]
    (ticker,) = ib.reqTickers(contract)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 10, round(ticker.bid - 5, 2)))
    wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    ib.cancelOrder(trade.order)
    wait_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Cancelled"
    assert any(code == 202 and req == trade.order.orderId for req, code, _ in seen)


def test_global_cancel(gateway, ib):
    contract = ib.qualifyContracts(AAPL)[0]
    (ticker,) = ib.reqTickers(contract)
    trades = [
        ib.placeOrder(contract, LimitOrder("BUY", 1, round(ticker.bid - 5 - i, 2)))
        for i in range(3)
    ]
    wait_until(ib, lambda: all(t.orderStatus.status == "Submitted" for t in trades))
    ib.reqGlobalCancel()
    wait_until(ib, lambda: all(t.isDone() for t in trades))
    assert {t.orderStatus.status for t in trades} == {"Cancelled"}


def test_rejections_use_ibkr_codes(gateway, ib):
    seen = errors_of(ib)
    contract = ib.qualifyContracts(AAPL)[0]
    (ticker,) = ib.reqTickers(contract)
    off_grid = ib.placeOrder(contract, LimitOrder("BUY", 1, round(ticker.bid, 2) - 0.003))
    too_big = ib.placeOrder(contract, MarketOrder("BUY", 100_000))  # beyond buying power
    over_limit = ib.placeOrder(contract, MarketOrder("BUY", 10_000_000))  # TWS's size limit
    wait_until(ib, lambda: off_grid.isDone() and too_big.isDone() and over_limit.isDone())
    codes = {req: code for req, code, _ in seen}
    assert codes[off_grid.order.orderId] == 110
    assert codes[too_big.order.orderId] == 201
    assert codes[over_limit.order.orderId] == 383
    gateway.reject_next_order("Simulated exchange halt")
    halted = ib.placeOrder(contract, MarketOrder("BUY", 1))
    wait_until(ib, halted.isDone)
    assert any(
        code == 201 and "halt" in text for req, code, text in seen if req == halted.order.orderId
    )


def test_reused_order_ids_are_103_or_104_when_filled(gateway, ib):
    seen = errors_of(ib)
    contract = ib.qualifyContracts(AAPL)[0]
    first = ib.placeOrder(contract, MarketOrder("BUY", 1))
    (ticker,) = ib.reqTickers(contract)
    resting = ib.placeOrder(contract, LimitOrder("BUY", 1, round(ticker.bid - 5, 2)))
    wait_until(ib, first.isDone)
    ib.cancelOrder(resting.order)
    wait_until(ib, resting.isDone)
    for done in (first, resting):
        again = MarketOrder("BUY", 1)
        again.orderId = done.order.orderId
        ib.client.placeOrder(again.orderId, contract, again)
    wait_until(ib, lambda: {(r, c) for r, c, _ in seen} >= {
        (first.order.orderId, 104), (resting.order.orderId, 103)})  # fmt: skip


def test_open_completed_orders_and_executions_with_commissions(gateway, ib):
    contract = ib.qualifyContracts(AAPL)[0]
    (ticker,) = ib.reqTickers(contract)
    resting = ib.placeOrder(
        contract, LimitOrder("SELL", 3, round(ticker.ask + 9, 2), orderRef="rest")
    )
    ko = ib.qualifyContracts(Stock("KO", "SMART", "USD"))[0]  # held in the seeded portfolio
    filled = ib.placeOrder(ko, MarketOrder("SELL", 2, orderRef="done"))
    wait_until(ib, filled.isDone)
    assert [t.order.orderRef for t in ib.reqOpenOrders()] == ["rest"]
    assert "rest" in [t.order.orderRef for t in ib.reqAllOpenOrders()]
    completed = ib.reqCompletedOrders(apiOnly=True)
    assert "done" in [t.order.orderRef for t in completed]
    fills = ib.reqExecutions(ExecutionFilter(side="SELL"))
    assert [f.execution.orderRef for f in fills] == ["done"]
    # ib_async attaches commission reports to the fill objects it saw first (ib.fills())
    (seen,) = [f for f in ib.fills() if f.execution.execId == fills[0].execution.execId]
    assert seen.commissionReport.commission == pytest.approx(1.00)
    assert seen.commissionReport.realizedPNL != 0.0  # closes part of a seeded KO position
    assert resting.orderStatus.status == "Submitted"


def test_partial_fills_for_an_order_larger_than_displayed_size(gateway, ib):
    contract = ib.qualifyContracts(AAPL)[0]
    (ticker,) = ib.reqTickers(contract)
    size = int(ticker.askSize) * 3
    trade = ib.placeOrder(contract, MarketOrder("BUY", size))
    wait_until(ib, trade.isDone, timeout=10)
    assert len(trade.fills) >= 2
    assert sum(f.execution.shares for f in trade.fills) == size
    total = sum(f.commissionReport.commission for f in trade.fills)
    assert total == pytest.approx(max(1.0, 0.005 * size))


def test_positions_multi_and_head_timestamp(gateway, ib):
    rows, ended = [], []
    ib.wrapper.positionMulti = lambda req_id, account, model, contract, pos, cost: rows.append(
        contract.symbol
    )
    ib.wrapper.positionMultiEnd = ended.append
    ib.client.reqPositionsMulti(77, gateway.account_id, "")
    wait_until(ib, lambda: ended == [77])
    assert set(rows) == {p.contract.symbol for p in ib.reqPositions()}
    head = ib.reqHeadTimeStamp(aapl(ib), "TRADES", True)
    assert head.year < CLOCK.year - 2
    meta = ib.qualifyContracts(Stock("META", "SMART", "USD"))[0]
    first = ib.reqHeadTimeStamp(meta, "TRADES", True)  # ib_async gives naive UTC
    assert first.replace(tzinfo=UTC) == datetime(2012, 5, 18, 13, 30, tzinfo=UTC)


def test_client_zero_binds_manual_orders_and_others_may_not(gateway):
    master = connect_ib(gateway, client_id=0)  # ib_async calls reqAutoOpenOrders(True) for 0
    other = connect_ib(gateway)
    seen = errors_of(other)
    other.reqAutoOpenOrders(True)
    wait_until(other, lambda: any(code == 321 for _, code, _ in seen))
    assert master.isConnected()
    master.disconnect()
    other.disconnect()


def test_day_order_expires_at_the_close_and_gtc_stays(gateway, ib):
    contract = aapl(ib)
    (ticker,) = ib.reqTickers(contract)
    low = round(ticker.bid - 20, 2)
    day = ib.placeOrder(contract, LimitOrder("BUY", 1, low, tif="DAY"))
    gtc = ib.placeOrder(contract, LimitOrder("BUY", 1, low, tif="GTC"))
    wait_until(ib, lambda: gtc.orderStatus.status == "Submitted")
    gateway.advance_clock(7 * 3600)  # past 16:00 New York
    wait_until(ib, day.isDone)
    assert day.orderStatus.status == "Cancelled"
    assert gtc.orderStatus.status == "Submitted"


# -- pacing, robustness and determinism ----------------------------------------------------------


def test_pacing_over_50_messages_a_second_is_error_100(gateway, ib):
    seen = errors_of(ib)
    ib.client.MaxRequests = 0  # switch off ib_async's own throttle
    for _ in range(60):
        ib.client.reqCurrentTime()
    wait_until(ib, lambda: any(code == 100 for _, code, _ in seen))
    ib.sleep(1.1)
    assert ib.reqCurrentTime() == CLOCK  # served again after the second is over


def test_drop_connections(gateway, ib):
    gateway.drop_connections()
    with contextlib.suppress(ConnectionError):  # ib_async raises it out of a pending sleep
        wait_until(ib, lambda: not ib.isConnected())
    assert not ib.isConnected()


def test_same_seed_same_market_and_fills():
    results = []
    for _ in range(2):
        with PaperGateway(port=0, seed=SEED, clock_start=CLOCK, fixed_clock=True) as gw:
            ib = connect_ib(gw, client_id=5)
            contract = ib.qualifyContracts(AAPL)[0]
            trade = ib.placeOrder(contract, MarketOrder("BUY", 50))
            wait_until(ib, trade.isDone)
            bars = ib.reqHistoricalData(contract, "", "5 D", "1 hour", "TRADES", True)
            results.append(
                (
                    gw.account_id,
                    [
                        (f.execution.execId, f.execution.price, f.execution.permId)
                        for f in trade.fills
                    ],
                    [(b.date, b.close, b.volume) for b in bars],
                )
            )
            ib.disconnect()
    assert results[0] == results[1]
    with PaperGateway(port=0, seed=SEED + 1, clock_start=CLOCK, fixed_clock=True) as gw:
        ib = connect_ib(gw, client_id=5)
        (other,) = ib.reqTickers(aapl(ib))
        ib.disconnect()
    assert other.last != results[0][1][0][1]


def test_state_file_keeps_the_account_across_restarts(tmp_path):
    state = tmp_path / "account.json"
    with PaperGateway(
        port=0, seed=SEED, clock_start=CLOCK, fixed_clock=True, state_file=state
    ) as gw:
        ib = connect_ib(gw, client_id=5)
        trade = ib.placeOrder(
            ib.qualifyContracts(Stock("KO", "SMART", "USD"))[0], MarketOrder("BUY", 7)
        )
        wait_until(ib, trade.isDone)
        before = sorted((p.contract.symbol, p.position) for p in ib.reqPositions())
        ib.disconnect()
    with PaperGateway(
        port=0, seed=SEED, clock_start=CLOCK, fixed_clock=True, state_file=state
    ) as gw:
        ib = connect_ib(gw, client_id=5)
        after = sorted((p.contract.symbol, p.position) for p in ib.reqPositions())
        ib.disconnect()
    assert after == before
    assert dict(after)["KO"] == 1220 + 7  # the seeded 1,220 shares and the 7 bought


def test_refuses_a_non_loopback_host_unless_asked():
    with pytest.raises(ValueError, match="loopback"):
        PaperGateway("0.0.0.0", 0)
