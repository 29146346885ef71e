"""Margin, exercise and currency booking as pure calculations: figures a reader can check by
eye, and properties over many inputs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import CLOCK, SEED

from ibkr_nb.gateway.account import Account
from ibkr_nb.gateway.exercise import booked_prices, exercise_trades, expiry_trades, intrinsic
from ibkr_nb.gateway.instruments import LISTED, listed_futures, option
from ibkr_nb.gateway.margin import Holding, margin, requirement, short_option_requirement
from ibkr_nb.gateway.market import Clock, Market
from ibkr_nb.gateway.records import TradeRecord

FRIDAY = date(2026, 11, 27)


def short(strike: float, right: str, underlying: float, premium: float, index: bool = False):
    return Holding("OPT", -1, premium * 100, 0.0, underlying, strike, right, 100.0, index)


def test_short_option_figures():
    # call 10 out of the money on a 100 stock, premium 1: 100 + max(2000 - 1000, 1000) = 1100
    assert short_option_requirement(short(110, "C", 100, 1.0)) == pytest.approx(1100)
    # put 5 in the money: 600 + 20 % of 10,000 = 2600
    assert short_option_requirement(short(105, "P", 100, 6.0)) == pytest.approx(2600)
    # far out put: the floor is 10 % of the strike value, 10 % x 60 x 100 = 600
    assert short_option_requirement(short(60, "P", 100, 0.05)) == pytest.approx(605)
    # broad-based index: 15 %; SPX 5800, put 5700, premium 40: 4000 + 87,000 - 10,000
    assert short_option_requirement(short(5700, "P", 5800, 40.0, True)) == pytest.approx(81_000)


def test_margin_of_a_mixed_book():
    book = [
        Holding("STK", 100, 200.0),  # 20,000 long: 10,000 / 5,000
        Holding("OPT", 2, 350.0),  # long options paid in full: 700 / 700
        Holding("FUT", -1, 290_000.0, 291_000.0, root="ES"),  # short ES up 1,000
        Holding("CASH", 25_000, 1.05),  # a currency balance: no requirement of its own
    ]
    m = margin(50_000.0, book)
    assert m.long_value == 20_700.0 and m.short_value == 0.0
    assert m.init == pytest.approx(10_000 + 700 + 13_915)
    assert m.maint == pytest.approx(5_000 + 700 + 12_650)
    assert m.futures_pnl == 1_000.0 and m.equity == pytest.approx(50_000 + 20_700 + 1_000)


@given(
    u=st.floats(1, 10_000),
    moneyness=st.floats(0.3, 3.0),
    premium=st.floats(0.0, 500.0),
    right=st.sampled_from("CP"),
    index=st.booleans(),
)
def test_short_option_requirement_is_the_premium_plus_the_larger_of_rule_and_floor(
    u, moneyness, premium, right, index
):
    k = u * moneyness
    h = short(k, right, u, premium, index)
    req = short_option_requirement(h)
    otm = max(k - u, 0.0) if right == "C" else max(u - k, 0.0)
    floor = 0.10 * (u if right == "C" else k) * 100
    rule = (0.15 if index else 0.20) * u * 100 - otm * 100
    assert req == pytest.approx(premium * 100 + max(rule, floor))
    assert requirement(h) == (req, req)


@given(
    u=st.floats(100, 300), strike=st.sampled_from([170.0, 190.0, 215.0]), held=st.integers(-3, 3)
)
def test_expiry_exercises_in_the_money_and_lapses_the_rest(u, strike, held):
    if held == 0:
        return
    for right in "CP":
        opt = option("AAPL", FRIDAY, strike, right)
        trades = expiry_trades(opt, held, u)
        assert trades[0][:2] == (opt, -held) and trades[0][2] == 0.0  # the option leaves
        if intrinsic(opt, u) >= 0.01:
            [(stock, shares, price)] = trades[1:]
            sign = 1 if right == "C" else -1
            assert (stock, shares, price) == (LISTED["AAPL"], sign * held * 100, strike)
        else:
            assert len(trades) == 1


@pytest.mark.parametrize(
    ("right", "held", "stock_price"),
    [
        ("C", 1, 183.25),  # long call: the shares cost the strike plus the premium paid
        ("P", 1, 176.75),  # long put: the shares sell for the strike less the premium paid
        ("P", -1, 176.75),  # assigned put: the shares cost the strike less the premium taken
        ("C", -1, 183.25),  # assigned call: the shares sell for the strike plus it
    ],
)
def test_exercise_moves_the_option_premium_into_the_stock(right, held, stock_price):
    opt = option("AAPL", FRIDAY, 180.0, right)
    trades = expiry_trades(opt, held, 190.0 if right == "C" else 170.0)
    # option held at 325 a contract (3.25 a share, commission included)
    assert booked_prices(trades, 325.0) == [3.25, stock_price]


def test_lapses_and_cash_settlements_book_at_their_execution_prices():
    call = option("AAPL", FRIDAY, 180.0, "C")
    assert booked_prices(expiry_trades(call, 1, 150.0), 325.0) == [0.0]
    put = option("SPX", date(2026, 12, 18), 5800.0, "P")
    assert booked_prices(exercise_trades(put, 1, 5700.0), 9_000.0) == [100.0]


def test_an_index_option_settles_in_cash_at_its_intrinsic_value():
    put = option("SPX", date(2026, 12, 18), 5800.0, "P")
    assert expiry_trades(put, 2, 5700.0) == [(put, -2, 100.0)]


@given(
    qty=st.integers(1, 5_000_000),
    price=st.floats(0.5, 200.0),
    pair=st.sampled_from(["EUR.USD", "USD.JPY", "GBP.USD", "USD.CHF"]),
)
def test_fx_round_trip_at_one_price_costs_only_the_commissions(qty, price, pair):
    account = Account("DU1", Market(SEED, Clock(CLOCK, fixed=True)), cash=0.0)
    con_id = LISTED[pair].con_id
    for signed in (qty, -qty):
        account.book(TradeRecord("t", CLOCK, pair, con_id, signed, price, 2.0), session=True)
    base, quote = pair.split(".")
    assert account.balances[base] == pytest.approx(-4.0 if base == "USD" else 0.0, abs=1e-6)
    assert account.balances[quote] == pytest.approx(
        -4.0 if quote == "USD" else 0.0, abs=1e-6 * qty * price
    )
    assert account.positions[con_id].quantity == 0


def test_the_daily_futures_settlement_is_the_stock_close():
    from ibkr_nb.gateway.hours import last_settlement

    tuesday_noon = datetime(2026, 11, 24, 17, 0, tzinfo=UTC).timestamp()
    assert last_settlement(tuesday_noon) == datetime(2026, 11, 23, 21, 0, tzinfo=UTC).timestamp()
    # Friday after Thanksgiving closes at 13:00; Saturday's latest settlement is that one
    saturday = datetime(2026, 11, 28, 15, 0, tzinfo=UTC).timestamp()
    assert last_settlement(saturday) == datetime(2026, 11, 27, 18, 0, tzinfo=UTC).timestamp()


@settings(max_examples=25)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 2 * 24), st.integers(-3, 3), st.booleans()),
        min_size=1,
        max_size=6,
    )
)
def test_futures_cash_does_not_depend_on_when_the_settlements_are_booked(steps):
    """Settling at every step or only at the end leaves the same cash: the daily variations
    add up (a restored state file books them at other moments than the live account did)."""
    es = listed_futures("ES", CLOCK.date())[0]
    market = Market(SEED, Clock(CLOCK + timedelta(days=13), fixed=True))  # after every step
    eager, lazy = (Account("DU1", market, cash=0.0) for _ in range(2))
    hours = 0
    for gap, quantity, settle_now in steps:
        hours += gap
        when = CLOCK + timedelta(hours=hours)
        price = 5000.0 + 0.25 * ((hours * 7) % 400)
        if quantity:
            trade = TradeRecord("t", when, es.symbol, es.con_id, quantity, price, 2.25)
            for account in (eager, lazy):
                account.book(trade, session=True)
        if settle_now:
            eager.settle(when.timestamp())
    end = market.clock.timestamp()
    eager.settle(end)
    lazy.settle(end)
    assert eager.balances["USD"] == pytest.approx(lazy.balances["USD"], abs=1e-6)
