"""Orders on FX, futures and options through real ib_async: fills, positions and account values
as TWS reports them, margin what-ifs, Fixed-schedule commissions, exercise and expiry, and
every refusal with its TWS code and a message naming the problem."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from ib_async import Forex, Future, LimitOrder, MarketOrder, Option, Stock
from support import CLOCK, SEED, connect_ib, qualified, spx_option, wait_until

from ibkr_nb.gateway.market import ET
from ibkr_nb.gateway.server import PaperGateway

AAPL_FRIDAY = "20261127"  # the Friday after CLOCK: a weekly AAPL expiry
EXPIRY_CLOSE = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)  # 16:00 New York


def filled(ib, contract, order):
    trade = ib.placeOrder(contract, order)
    wait_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Filled", trade.log
    return trade


def value(ib, tag: str, currency: str = "USD") -> float:
    [v] = [v for v in ib.accountValues() if v.tag == tag and v.currency == currency]
    return float(v.value)


def settled(ib, tag: str, currency: str, before: float) -> float:
    """The account value once it differs from ``before`` (account updates follow fills)."""
    wait_until(ib, lambda: value(ib, tag, currency) != before)
    return value(ib, tag, currency)


def position(ib, con_id: int) -> float:
    return sum(p.position for p in ib.positions() if p.contract.conId == con_id)


def refused(errors, ib, code: int) -> str:
    wait_until(ib, lambda: any(e[1] == code for e in errors))
    return next(e[2] for e in errors if e[1] == code)


def aapl_option(ib, strike: float, right: str, expiry: str = AAPL_FRIDAY) -> Option:
    return qualified(ib, Option("AAPL", expiry, strike, right, "SMART"))


# -- FX on IDEALPRO ------------------------------------------------------------------------------


def test_buying_eur_usd_books_both_currency_legs(ib):
    eurusd = qualified(ib, Forex("EURUSD"))
    usd = value(ib, "CashBalance", "USD")
    trade = filled(ib, eurusd, MarketOrder("BUY", 25_000))
    fill = trade.fills[0]
    price = fill.execution.price
    assert fill.execution.exchange == "IDEALPRO"
    assert fill.commissionReport.commission == 2.00  # 0.2 bp of 26,381 USD is 0.53: the minimum
    assert fill.commissionReport.currency == "USD"
    assert settled(ib, "CashBalance", "USD", usd) == pytest.approx(usd - 25_000 * price - 2.0)
    assert value(ib, "CashBalance", "EUR") == 25_000.0
    assert value(ib, "NetLiquidationByCurrency", "EUR") == 25_000.0
    rate = value(ib, "ExchangeRate", "EUR")
    assert abs(rate - price) < 0.001
    base_cash = value(ib, "CashBalance", "BASE")
    assert base_cash == value(ib, "TotalCashValue", "USD")
    assert base_cash == pytest.approx(value(ib, "CashBalance", "USD") + 25_000 * rate, abs=0.01)
    [pos] = [p for p in ib.positions() if p.contract.conId == eurusd.conId]
    assert (pos.contract.secType, pos.contract.exchange, pos.position) == ("CASH", "IDEALPRO", 25e3)
    assert pos.avgCost == pytest.approx(price + 2.0 / 25_000)
    summary = {(v.tag, v.currency): v.value for v in ib.accountSummary()}  # $LEDGER:ALL
    assert float(summary[("CashBalance", "EUR")]) == 25_000.0
    assert float(summary[("NetLiquidationByCurrency", "BASE")]) == value(ib, "NetLiquidation")


def test_selling_usd_jpy_books_yen_and_pays_the_commission_in_usd(ib):
    usdjpy = qualified(ib, Forex("USDJPY"))
    usd = value(ib, "CashBalance", "USD")
    trade = filled(ib, usdjpy, MarketOrder("SELL", 30_000))
    price = trade.fills[0].execution.price
    assert trade.fills[0].commissionReport.commission == 2.00  # 0.2 bp of 30,000 USD is 0.60
    assert settled(ib, "CashBalance", "USD", usd) == pytest.approx(usd - 30_000 - 2.0)
    wait_until(ib, lambda: value(ib, "CashBalance", "JPY") != 0)
    assert value(ib, "CashBalance", "JPY") == pytest.approx(30_000 * price, abs=0.01)
    assert value(ib, "ExchangeRate", "JPY") == pytest.approx(1 / price, rel=1e-3)
    [pos] = [p for p in ib.positions() if p.contract.conId == usdjpy.conId]
    # a short's average cost is its proceeds less the commission (2 USD = 2 x price JPY)
    assert pos.position == -30_000
    assert pos.avgCost == pytest.approx(price - 2.0 * price / 30_000)


def test_fx_commission_is_two_tenths_of_a_basis_point_of_the_usd_value(ib):
    eurusd = qualified(ib, Forex("EURUSD"))
    [ticker] = ib.reqTickers(eurusd)
    state = ib.whatIfOrder(eurusd, MarketOrder("BUY", 10_000_000))
    assert state.commission == pytest.approx(0.00002 * 10_000_000 * ticker.ask)
    assert state.commissionCurrency == "USD"


def test_an_fx_order_below_the_idealpro_minimum_fills_as_an_odd_lot_with_warning_399(ib, errors):
    eurusd = qualified(ib, Forex("EURUSD"))
    trade = filled(ib, eurusd, MarketOrder("BUY", 100))
    text = refused(errors, ib, 399)
    assert "BUY 100 EUR.USD" in text
    assert "below the EUR 20000 IdealPro minimum" in text and "odd lot" in text
    assert trade.fills[0].commissionReport.commission == 2.00


@pytest.mark.parametrize(
    ("pair", "order", "code", "words"),
    [
        ("EURUSD", LimitOrder("BUY", 25_000, 1.05503), 110, "minimum price variation"),
        ("USDJPY", LimitOrder("BUY", 25_000, 158.843), 110, "minimum price variation"),
        ("EURUSD", MarketOrder("BUY", 25_000.5), 201, "Fractional FX quantity 25000.5"),
        (
            "EURUSD",
            MarketOrder("BUY", 150_000_000),
            383,
            "Size Limit of 100000000 units of the base currency",
        ),
    ],
)
def test_bad_fx_orders_are_refused_by_name(ib, errors, pair, order, code, words):
    trade = ib.placeOrder(qualified(ib, Forex(pair)), order)
    assert words in refused(errors, ib, code)
    wait_until(ib, trade.isDone)
    assert not trade.fills


def test_an_fx_order_above_the_share_limit_is_accepted(ib):
    """The 1,000,000 size limit is for shares; FX has its own (100 million units)."""
    trade = filled(ib, qualified(ib, Forex("GBPUSD")), MarketOrder("BUY", 2_000_000))
    assert trade.orderStatus.filled == 2_000_000


# -- trading hours -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "contract", "fills"),
    [
        (datetime(2026, 11, 24, 20, 0, tzinfo=ET), Forex("EURUSD"), True),  # Tuesday evening
        (datetime(2026, 11, 24, 20, 0, tzinfo=ET), Stock("AAPL", "SMART", "USD"), False),
        (datetime(2026, 11, 24, 17, 5, tzinfo=ET), Forex("EURUSD"), False),  # daily pause
        (datetime(2026, 11, 28, 12, 0, tzinfo=ET), Forex("EURUSD"), False),  # Saturday
        (datetime(2026, 11, 24, 17, 30, tzinfo=ET), Future("ES", "202612", "CME"), False),
        (datetime(2026, 11, 24, 19, 0, tzinfo=ET), Future("ES", "202612", "CME"), True),
        (datetime(2026, 11, 29, 18, 30, tzinfo=ET), Future("ES", "202612", "CME"), True),  # Sun
    ],
)
def test_fx_and_futures_trade_in_their_own_hours(when, contract, fills):
    with PaperGateway(port=0, seed=SEED, clock_start=when, fixed_clock=True) as gateway:
        ib = connect_ib(gateway)
        try:
            trade = ib.placeOrder(qualified(ib, contract), MarketOrder("BUY", 1))
            wait_until(ib, lambda: trade.orderStatus.status in ("PreSubmitted", "Filled"))
            ib.sleep(0.3)  # a market order that can trade fills at once
            assert trade.orderStatus.status == ("Filled" if fills else "PreSubmitted")
        finally:
            ib.disconnect()


# -- futures -------------------------------------------------------------------------------------


def test_an_es_future_fills_with_its_multiplier_and_moves_cash_by_the_fee_only(ib):
    es = qualified(ib, Future("ES", "202612", "CME"))
    assert (es.multiplier, es.localSymbol) == ("50", "ESZ6")
    cash = value(ib, "TotalCashValue")
    trade = filled(ib, es, MarketOrder("BUY", 2))
    fill = trade.fills[0]
    price = fill.execution.price
    assert fill.execution.exchange == "CME"
    assert fill.commissionReport.commission == 4.50  # (0.85 + 1.38 CME + 0.02 NFA) x 2
    assert settled(ib, "TotalCashValue", "USD", cash) == pytest.approx(cash - 4.50)
    [pos] = [p for p in ib.positions() if p.contract.conId == es.conId]
    assert pos.position == 2 and pos.avgCost == pytest.approx(price * 50 + 2.25)
    wait_until(ib, lambda: any(p.contract.conId == es.conId for p in ib.portfolio()))
    [item] = [p for p in ib.portfolio() if p.contract.conId == es.conId]
    assert item.marketValue == pytest.approx(2 * item.marketPrice * 50)
    assert item.unrealizedPNL == pytest.approx(2 * (item.marketPrice * 50 - pos.avgCost))
    assert value(ib, "FuturesPNL") == pytest.approx(2 * (item.marketPrice - price) * 50, abs=0.01)


def test_closing_a_future_settles_its_variation_into_cash(ib):
    nq = qualified(ib, Future("NQ", "202612", "CME"))
    cash = value(ib, "TotalCashValue")
    bought = filled(ib, nq, MarketOrder("BUY", 1)).fills[0].execution.price
    sold_fill = filled(ib, nq, MarketOrder("SELL", 1)).fills[0]
    sold = sold_fill.execution.price
    variation = (sold - bought) * 20
    assert sold_fill.commissionReport.realizedPNL == pytest.approx(variation - 4.50)
    wait_until(ib, lambda: position(ib, nq.conId) == 0)
    wait_until(ib, lambda: value(ib, "TotalCashValue") == round(cash - 4.50 + variation, 2))


def test_an_open_future_settles_its_daily_variation_into_cash(ib, gateway):
    es = qualified(ib, Future("ES", "202612", "CME"))
    price = filled(ib, es, MarketOrder("BUY", 1)).fills[0].execution.price
    wait_until(ib, lambda: position(ib, es.conId) == 1)
    cash = value(ib, "TotalCashValue")
    settlement = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)  # 16:00 New York, the same day
    settle = gateway.market.quote_at(es.localSymbol, settlement).last
    gateway.advance_clock(24 * 3600)  # Wednesday 10:30: one settlement has passed
    ib.reqAccountSummary()
    summary = {
        (v.tag, v.currency): float(v.value)
        for v in ib.accountSummary()
        if v.tag in ("TotalCashValue", "FuturesPNL")
    }
    assert summary[("TotalCashValue", "USD")] == round(cash + (settle - price) * 50, 2)
    mark = gateway.market.last_price(es.localSymbol)
    assert summary[("FuturesPNL", "USD")] == pytest.approx((mark - settle) * 50, abs=0.01)
    [pos] = [p for p in ib.reqPositions() if p.contract.conId == es.conId]
    assert pos.avgCost == pytest.approx(price * 50 + 2.25)  # the trade's cost, as TWS keeps it


def test_future_margin_is_per_contract(ib):
    es = qualified(ib, Future("ES", "202612", "CME"))
    state = ib.whatIfOrder(es, MarketOrder("BUY", 2))
    assert float(state.initMarginChange) == 2 * 13_915.0
    assert float(state.maintMarginChange) == 2 * 12_650.0
    assert state.commission == 4.50


def test_futures_beyond_the_equity_are_refused_for_margin(ib, errors):
    es = qualified(ib, Future("ES", "202612", "CME"))
    trade = ib.placeOrder(es, MarketOrder("BUY", 200))
    text = refused(errors, ib, 201)
    assert "EQUITY WITH LOAN VALUE" in text and "INITIAL MARGIN" in text
    wait_until(ib, trade.isDone)
    assert not trade.fills


@pytest.mark.parametrize(
    ("order", "code", "words"),
    [
        (LimitOrder("BUY", 1, 5800.10), 110, "minimum price variation"),
        (MarketOrder("BUY", 1.5), 201, "Fractional contract quantity 1.5"),
    ],
)
def test_bad_future_orders_are_refused_by_name(ib, errors, order, code, words):
    trade = ib.placeOrder(qualified(ib, Future("ES", "202612", "CME")), order)
    assert words in refused(errors, ib, code)
    wait_until(ib, trade.isDone)
    assert not trade.fills


def test_an_order_for_an_unlisted_contract_month_is_refused_with_200(ib, errors):
    expired = Future("ES", "202503", "CME", multiplier="50", currency="USD")
    ib.placeOrder(expired, MarketOrder("BUY", 1))
    assert "No security definition" in refused(errors, ib, 200)


def test_a_future_expiring_settles_in_cash_at_the_index_price(ib, gateway):
    es = qualified(ib, Future("ES", "202612", "CME"))
    price = filled(ib, es, MarketOrder("BUY", 1)).fills[0].execution.price
    wait_until(ib, lambda: position(ib, es.conId) == 1)
    cash = value(ib, "TotalCashValue")
    settle = datetime(2026, 12, 18, 21, 0, tzinfo=UTC)  # 16:00 New York on the expiry
    index = round(gateway.market.quote_at("SPX", settle).last / 0.25) * 0.25
    gateway.advance_clock((settle - CLOCK).total_seconds() + 60)
    wait_until(ib, lambda: position(ib, es.conId) == 0)
    wait_until(ib, lambda: value(ib, "TotalCashValue") == round(cash + (index - price) * 50, 2))


# -- options: exercise, lapse, expiry, margin --------------------------------------------------


@pytest.mark.parametrize(
    ("strike", "right", "contracts", "side"),
    [(180.0, "C", 2, "BOT"), (215.0, "P", 1, "SLD")],
)
def test_exercising_long_options_books_the_shares_at_the_strike(
    ib, gateway, strike, right, contracts, side
):
    option = aapl_option(ib, strike, right)
    filled(ib, option, MarketOrder("BUY", contracts))
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    wait_until(ib, lambda: position(ib, option.conId) == contracts)
    shares, cash = position(ib, aapl.conId), value(ib, "TotalCashValue")
    [held] = [p for p in ib.positions() if p.contract.conId == option.conId]
    stock_cost = next((p.avgCost for p in ib.positions() if p.contract.conId == aapl.conId), 0)
    ib.exerciseOptions(option, 1, contracts, gateway.account_id, 0)
    wait_until(ib, lambda: position(ib, option.conId) == 0)
    delivered = 100 * contracts if right == "C" else -100 * contracts  # call: buy, put: sell
    assert position(ib, aapl.conId) == shares + delivered
    if right == "C":  # the premium paid is part of the shares' cost (IBKR's basis)
        [stock] = [p for p in ib.positions() if p.contract.conId == aapl.conId]
        bought_at = strike + held.avgCost / 100
        expected = (stock_cost * shares + bought_at * delivered) / (shares + delivered)
        assert stock.avgCost == pytest.approx(expected)
    wait_until(ib, lambda: value(ib, "TotalCashValue") == round(cash - strike * delivered, 2))
    legs = sorted(
        (f.contract.secType, f.execution.side, f.execution.shares, f.execution.price)
        for f in ib.fills()
        if f.execution.orderId == 0
    )
    assert legs == [("OPT", "SLD", contracts, 0.0), ("STK", side, 100.0 * contracts, strike)]
    venues = {(f.contract.secType, f.execution.exchange) for f in ib.fills()}
    assert venues == {("OPT", "CBOE"), ("STK", "ISLAND")}  # options trade on an option exchange
    assert all(f.commissionReport.commission == 0 for f in ib.fills() if f.execution.orderId == 0)


def test_an_out_of_the_money_option_is_exercised_only_with_override(ib, gateway, errors):
    call = aapl_option(ib, 225.0, "C")
    filled(ib, call, MarketOrder("BUY", 1))
    wait_until(ib, lambda: position(ib, call.conId) == 1)
    ib.exerciseOptions(call, 1, 1, gateway.account_id, 0)
    text = refused(errors, ib, 321)
    assert "out of the money" in text and "override=1" in text
    assert position(ib, call.conId) == 1
    ib.exerciseOptions(call, 1, 1, gateway.account_id, 1)
    wait_until(ib, lambda: position(ib, call.conId) == 0)


@pytest.mark.parametrize(
    ("setup", "request_", "words"),
    [
        ((180.0, "C", 1), (1, 2), "fewer than the 2"),
        ((180.0, "C", 0), (1, 1), "holds 0 long"),
        ((180.0, "C", 1), (2, 1), "can only lapse on its last trading day, 20261127"),
        ((180.0, "C", 1), (3, 1), "exerciseAction 3 is not 1 (exercise) or 2 (lapse)"),
    ],
)
def test_refused_exercise_requests_name_the_problem(ib, gateway, errors, setup, request_, words):
    strike, right, bought = setup
    option = aapl_option(ib, strike, right)
    if bought:
        filled(ib, option, MarketOrder("BUY", bought))
        wait_until(ib, lambda: position(ib, option.conId) == bought)
    action, quantity = request_
    ib.exerciseOptions(option, action, quantity, gateway.account_id, 0)
    assert words in refused(errors, ib, 321)
    assert position(ib, option.conId) == bought


def test_a_european_spx_option_is_not_exercised_before_expiry(ib, gateway, errors):
    put = spx_option(ib, 6500.0, "P", "SPX", "SMART")
    filled(ib, put, MarketOrder("BUY", 1))
    wait_until(ib, lambda: position(ib, put.conId) == 1)
    ib.exerciseOptions(put, 1, 1, gateway.account_id, 0)
    assert "European-style" in refused(errors, ib, 321)


def test_exercising_an_unlisted_option_is_refused_with_200(ib, gateway, errors):
    ib.exerciseOptions(
        Option("AAPL", AAPL_FRIDAY, 181.0, "C", "SMART"), 1, 1, gateway.account_id, 0
    )
    assert "No security definition" in refused(errors, ib, 200)


def test_expiry_exercises_in_the_money_options_and_lapses_the_rest(ib, gateway):
    itm_call, otm_call = aapl_option(ib, 170.0, "C"), aapl_option(ib, 225.0, "C")
    itm_put = aapl_option(ib, 215.0, "P")
    aapl = qualified(ib, Stock("AAPL", "SMART", "USD"))
    filled(ib, itm_call, MarketOrder("BUY", 1))
    filled(ib, otm_call, MarketOrder("BUY", 1))
    filled(ib, itm_put, MarketOrder("SELL", 1))  # short: assigned at expiry
    wait_until(ib, lambda: position(ib, itm_put.conId) == -1)
    shares = position(ib, aapl.conId)
    underlying = gateway.market.quote_at("AAPL", EXPIRY_CLOSE).last
    assert 170.0 < underlying < 215.0  # the seeded path leaves the calls and put as named
    gateway.advance_clock((EXPIRY_CLOSE - CLOCK).total_seconds() + 60)
    options = {itm_call.conId, otm_call.conId, itm_put.conId}
    wait_until(ib, lambda: not any(p.contract.conId in options for p in ib.positions()))
    # the call delivers 100 shares at 170, the assigned put 100 more at 215
    assert position(ib, aapl.conId) == shares + 200
    # expiry executions belong to no API client: they show in reqExecutions, order id 0
    expiry_fills = [f for f in ib.reqExecutions() if f.execution.orderId == 0]
    assert sorted(
        (f.contract.secType, f.execution.side, f.execution.price) for f in expiry_fills
    ) == [
        ("OPT", "BOT", 0.0),  # the short put leaves
        ("OPT", "SLD", 0.0),  # the calls leave (exercised, lapsed)
        ("OPT", "SLD", 0.0),
        ("STK", "BOT", 170.0),
        ("STK", "BOT", 215.0),
    ]


def test_long_option_margin_is_the_full_premium(ib, gateway):
    call = aapl_option(ib, 200.0, "C")
    state = ib.whatIfOrder(call, MarketOrder("BUY", 1))
    value_ = gateway.market.last_price(call.localSymbol) * 100
    assert float(state.initMarginChange) == pytest.approx(value_, abs=0.01)
    assert float(state.maintMarginChange) == pytest.approx(value_, abs=0.01)


@pytest.mark.parametrize(
    ("underlying", "expiry", "strike", "right", "pct"),
    [
        ("AAPL", AAPL_FRIDAY, 225.0, "C", 0.20),  # out of the money: 20 % - OTM amount
        ("AAPL", AAPL_FRIDAY, 190.0, "P", 0.20),
        ("AAPL", AAPL_FRIDAY, 150.0, "P", 0.20),  # far out: the 10 % of strike floor
        ("SPX", "", 5000.0, "P", 0.15),  # broad-based index: 15 %
    ],
)
def test_short_option_margin_follows_the_cboe_rule(
    ib, gateway, underlying, expiry, strike, right, pct
):
    if underlying == "SPX":
        option = spx_option(ib, strike, right, "SPX", "SMART")
    else:
        option = qualified(ib, Option(underlying, expiry, strike, right, "SMART"))
    state = ib.whatIfOrder(option, MarketOrder("SELL", 1))
    u = gateway.market.last_price(underlying)
    premium = gateway.market.last_price(option.localSymbol) * 100
    otm = max(strike - u, 0.0) if right == "C" else max(u - strike, 0.0)
    floor = 0.10 * (u if right == "C" else strike) * 100
    expected = premium + max(pct * u * 100 - otm * 100, floor)
    assert float(state.initMarginChange) == pytest.approx(expected, abs=0.01)
    assert float(state.maintMarginChange) == pytest.approx(expected, abs=0.01)
    assert not math.isnan(float(state.equityWithLoanChange))
