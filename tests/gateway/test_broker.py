"""The paper account: order life cycle, fill rules, commissions, P&L, margin, persistence."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibkr_nb.commissions import stock_commission as commission
from ibkr_nb.gateway.broker import (
    INITIAL_CASH,
    AccountChanged,
    Broker,
    BrokerError,
    Fill,
    OrderRejected,
    OrderTicket,
    OrderUpdate,
    StateFileError,
    WhatIf,
    book_trade,
)
from ibkr_nb.gateway.market import ET, UNIVERSE, Clock, Market

START = datetime(2024, 6, 12, 15, 0, tzinfo=UTC)  # Wednesday 11:00 New York


@pytest.fixture
def clock() -> Clock:
    return Clock(START, fixed=True)


@pytest.fixture
def market(clock) -> Market:
    return Market(7, clock)


@pytest.fixture
def broker(market) -> Broker:
    return Broker(market, 7)


def free_symbol(broker: Broker, skip: int = 0) -> str:
    """A symbol the seeded portfolio does not hold."""
    held = {r.symbol for r in broker.positions()}
    return [s for s in sorted(UNIVERSE) if s not in held][skip]


def tk(oid, action="BUY", qty=10, typ="MKT", symbol="AAPL", client=1, **kw) -> OrderTicket:
    return OrderTicket(
        order_id=oid,
        client_id=client,
        action=action,
        total_quantity=qty,
        order_type=typ,
        symbol=symbol,
        **kw,
    )


def statuses(events) -> list[str]:
    return [e.ticket.status for e in events if isinstance(e, OrderUpdate)]


def fills(events) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


@given(
    parts=st.lists(st.integers(1, 5000), min_size=1, max_size=8),
    p=st.floats(0.5, 1000, allow_nan=False),
)
def test_commission_is_monotone_so_partial_fills_never_charge_negative(parts, p):
    cum, charged = 0, 0.0
    for q in parts:
        cum += q
        total = commission(cum, p)
        assert total >= charged - 1e-9
        charged = total
    assert charged == pytest.approx(commission(sum(parts), p))


# ---- P&L arithmetic --------------------------------------------------------------------------


trade_st = st.tuples(st.integers(-500, 500).filter(bool), st.integers(1000, 30000))


@settings(max_examples=200)
@given(trades=st.lists(trade_st, min_size=1, max_size=12), mark=st.integers(1000, 30000))
def test_cash_plus_position_value_is_realized_plus_unrealized(trades, mark):
    """From flat: cash change + market value == realized + unrealized, after any sequence."""
    pos, avg, cash, realized = 0.0, 0.0, 0.0, 0.0
    for q, cents in trades:
        price = cents / 100
        fee = commission(q, price)
        pos, avg, r = book_trade(pos, avg, q, price, fee)
        realized += r or 0.0
        cash -= q * price + fee
        if pos == 0:
            assert avg == 0.0
    m = mark / 100
    unrealized = (m - avg) * pos
    assert cash + pos * m == pytest.approx(realized + unrealized, abs=1e-6)
    assert pos == sum(q for q, _ in trades)


def test_book_trade_long_short_and_flip():
    pos, avg, r = book_trade(0, 0, 100, 10.0, 1.0)
    assert (pos, avg, r) == (100, pytest.approx(10.01), None)
    pos, avg, r = book_trade(pos, avg, -40, 12.0, 1.0)
    assert (pos, avg) == (60, pytest.approx(10.01)) and r == pytest.approx(40 * 1.99 - 1.0)
    pos, avg, r = book_trade(pos, avg, -100, 11.0, 1.0)  # close 60, open 40 short
    assert pos == -40 and r == pytest.approx(60 * (11.0 - 10.01) - 0.6)
    assert avg == pytest.approx((40 * 11.0 - 0.4) / 40)  # short avg: proceeds net of commission
    pos, avg2, r = book_trade(pos, avg, -10, 9.0, 1.0)  # add to the short
    assert pos == -50 and avg2 == pytest.approx((40 * avg + 10 * 9.0 - 1.0) / 50)
    pos, avg3, r = book_trade(pos, avg2, 50, 8.0, 1.0)  # cover all
    assert (pos, avg3) == (0, 0) and r == pytest.approx((avg2 - 8.0) * 50 - 1.0)


# ---- seeded portfolio ------------------------------------------------------------------------


def test_seeded_portfolio_has_long_and_short_term_lots_and_a_loss(broker, clock):
    history = broker.trade_history()
    assert all(t.source == "seed" for t in history)
    assert len({t.trade_id for t in history}) == len(history)
    start = clock.now()
    ages = [(start - t.time).days for t in history if t.quantity > 0]
    assert any(a > 365 for a in ages) and any(a < 365 for a in ages)
    rows = broker.positions()
    assert 5 <= len(rows) <= 7
    assert any(r.unrealized_pnl < 0 for r in rows)
    marks = {r.symbol: r.market_price for r in rows}
    assert any(t.price > marks.get(t.symbol, 1e9) for t in history if t.quantity > 0)
    assert any(t.quantity < 0 for t in history)  # one partial sale
    for t in history:
        assert t.time.tzinfo is not None and t.time < start
        assert 9.5 <= t.time.astimezone(ET).hour + t.time.astimezone(ET).minute / 60 < 16
        assert t.commission == commission(t.quantity, t.price)
    # positions and average cost agree with the history
    replay: dict[str, tuple[float, float]] = {}
    cash = INITIAL_CASH
    for t in history:
        p, a = replay.get(t.symbol, (0.0, 0.0))
        p, a, _ = book_trade(p, a, t.quantity, t.price, t.commission)
        replay[t.symbol] = (p, a)
        cash -= t.quantity * t.price + t.commission
    for r in rows:
        assert (r.quantity, r.average_cost) == pytest.approx(replay[r.symbol])
    assert broker.cash == pytest.approx(cash)
    assert broker.account_values()["TotalCashValue"] == pytest.approx(cash, abs=0.01)
    assert broker.executions() == []


def test_account_id_is_paper_and_seeded(market):
    a, b = Broker(market, 7), Broker(market, 8)
    assert re.fullmatch(r"DU\d{7}", a.account_id)
    assert a.account_id != b.account_id
    assert Broker(market, 7, account_id="DU1234567").account_id == "DU1234567"
    with pytest.raises(ValueError):
        Broker(market, 7, account_id="U1234567")
    assert [r.symbol for r in a.positions()] != [r.symbol for r in b.positions()] or [
        r.quantity for r in a.positions()
    ] != [r.quantity for r in b.positions()]


def test_account_values_follow_reg_t(broker):
    v = broker.account_values()
    rows = broker.positions()
    long_v = sum(r.market_value for r in rows if r.quantity > 0)
    assert v["NetLiquidation"] == pytest.approx(v["TotalCashValue"] + long_v, abs=0.02)
    assert v["EquityWithLoanValue"] == v["NetLiquidation"]
    assert v["GrossPositionValue"] == pytest.approx(long_v, abs=0.01)
    assert v["InitMarginReq"] == pytest.approx(0.5 * long_v, abs=0.01)
    assert v["MaintMarginReq"] == pytest.approx(0.25 * long_v, abs=0.01)
    assert v["AvailableFunds"] == pytest.approx(v["NetLiquidation"] - v["InitMarginReq"], abs=0.02)
    assert v["ExcessLiquidity"] == pytest.approx(
        v["NetLiquidation"] - v["MaintMarginReq"], abs=0.02
    )
    assert v["BuyingPower"] == pytest.approx(4 * v["AvailableFunds"], abs=0.05)
    assert v["UnrealizedPnL"] == pytest.approx(sum(r.unrealized_pnl for r in rows), abs=0.01)
    assert v["RealizedPnL"] == 0.0


# ---- fill rules ------------------------------------------------------------------------------


def test_market_orders_fill_at_ask_and_bid(broker, market):
    sym = free_symbol(broker)
    q = market.quote(sym)
    ev = broker.place_order(tk(1, "BUY", 10, symbol=sym))
    assert statuses(ev) == ["Submitted"]
    ev = broker.process()
    (f,) = fills(ev)
    assert (f.execution.side, f.execution.shares, f.execution.price) == ("BOT", 10, q.ask)
    assert f.commission.commission == 1.0 and f.commission.realized_pnl is None
    assert statuses(ev) == ["Filled"] and isinstance(ev[-1], AccountChanged)
    broker.place_order(tk(2, "SELL", 4, symbol=sym))
    (f,) = fills(broker.process())
    assert (f.execution.side, f.execution.price) == ("SLD", q.bid)
    assert f.commission.realized_pnl == pytest.approx((q.bid - (q.ask + 0.1)) * 4 - 1.0)
    assert broker.order(1, 1).status == "Filled" and broker.open_orders() == []


def test_limit_orders_wait_then_fill_at_the_better_price(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    q = market.quote(sym)
    broker.place_order(tk(1, "BUY", 10, "LMT", sym, lmt_price=99.0))
    broker.place_order(tk(2, "SELL", 10, "LMT", sym, lmt_price=102.0))
    broker.place_order(tk(3, "BUY", 10, "LMT", sym, lmt_price=101.0))  # marketable
    ev = broker.process()
    (f,) = fills(ev)
    assert f.execution.order_id == 3 and f.execution.price == q.ask  # min(ask, limit)
    assert f.execution.liquidity == 2
    assert [t.order_id for t in broker.open_orders()] == [1, 2]
    market.set_price(sym, 98.9)
    (f,) = fills(broker.process())
    assert f.execution.order_id == 1 and f.execution.price <= 99.0
    assert f.execution.liquidity == 1  # it rested on the book
    market.set_price(sym, 102.5)
    (f,) = fills(broker.process())
    assert f.execution.order_id == 2 and f.execution.price >= 102.0


def test_stop_orders_trigger_on_last_then_fill_as_market(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    broker.place_order(tk(1, "BUY", 20, "MKT", sym))
    broker.process()
    ev = broker.place_order(tk(2, "SELL", 20, "STP", sym, aux_price=95.0))
    assert statuses(ev) == ["PreSubmitted"]
    broker.place_order(tk(3, "BUY", 5, "STP", sym, aux_price=110.0))
    assert fills(broker.process()) == []
    market.set_price(sym, 94.99)
    q = market.quote(sym)
    ev = broker.process()
    assert statuses(ev) == ["Submitted", "Filled"]
    (f,) = fills(ev)
    assert (f.execution.order_id, f.execution.price) == (2, q.bid)
    market.set_price(sym, 110.0)
    (f,) = fills(broker.process())
    assert (f.execution.order_id, f.execution.price) == (3, market.quote(sym).ask)


def test_stop_limit_triggers_then_behaves_as_limit(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    broker.place_order(tk(1, "BUY", 10, "STP LMT", sym, aux_price=101.0, lmt_price=101.5))
    assert fills(broker.process()) == [] and broker.order(1, 1).status == "PreSubmitted"
    market.set_price(sym, 102.0)  # triggered, but ask > limit
    ev = broker.process()
    assert statuses(ev) == ["Submitted"] and fills(ev) == []
    market.set_price(sym, 101.2)  # back below the stop: stays triggered, now marketable
    (f,) = fills(broker.process())
    assert f.execution.price <= 101.5


def test_trailing_stop_follows_the_price_up_and_triggers(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    broker.place_order(tk(1, "BUY", 10, "MKT", sym))
    broker.process()
    broker.place_order(tk(2, "SELL", 10, "TRAIL", sym, aux_price=2.0))
    assert broker.order(2, 1).trail_stop_price == 98.0
    market.set_price(sym, 105.0)
    broker.process()
    assert broker.order(2, 1).trail_stop_price == 103.0
    market.set_price(sym, 103.5)  # down, but above the stop: the stop does not move
    assert fills(broker.process()) == [] and broker.order(2, 1).trail_stop_price == 103.0
    market.set_price(sym, 102.9)
    (f,) = fills(broker.process())
    assert f.execution.order_id == 2 and broker.order(2, 1).status == "Filled"


def test_trailing_percent_buy(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 200.0)
    broker.place_order(tk(1, "BUY", 5, "TRAIL", sym, trailing_percent=1.0))
    assert broker.order(1, 1).trail_stop_price == 202.0
    market.set_price(sym, 190.0)
    broker.process()
    assert broker.order(1, 1).trail_stop_price == 191.9
    market.set_price(sym, 192.0)
    (f,) = fills(broker.process())
    assert f.execution.side == "BOT"


def test_partial_fills_take_the_displayed_size(broker, market):
    sym = free_symbol(broker)
    size = market.quote(sym).ask_size
    total = 3 * size + 50
    broker.place_order(tk(1, "BUY", total, symbol=sym))
    seen = []
    for _ in range(3):
        ev = broker.process()
        (f,) = fills(ev)
        t = broker.order(1, 1)
        seen.append(f.execution.shares)
        assert t.status == "Submitted" and t.filled + t.remaining == total
        assert f.execution.cum_qty == t.filled
    (f,) = fills(broker.process())
    assert seen == [size] * 3 and f.execution.shares == 50
    t = broker.order(1, 1)
    assert (t.status, t.filled, t.remaining) == ("Filled", total, 0)
    assert broker.process() == []
    # commission: the order's schedule, charged cumulatively
    execs = [c.commission for e, c in broker.executions()]
    assert sum(execs) == pytest.approx(commission(total, t.avg_fill_price))
    assert execs[0] == commission(size, market.quote(sym).ask)
    assert t.commission == pytest.approx(sum(execs))


def test_small_partial_fills_pay_the_minimum_once(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 50.0)
    size = market.quote(sym).ask_size
    broker.place_order(tk(1, "BUY", size + 10, symbol=sym))
    broker.process()
    broker.process()
    first, second = (c.commission for _, c in broker.executions())
    assert first == commission(size, market.quote(sym).ask)
    assert first + second == pytest.approx(commission(size + 10, broker.order(1, 1).avg_fill_price))


# ---- brackets, OCA, modify, cancel -----------------------------------------------------------


def bracket(sym, entry, tp, sl, qty=10, first=1):
    parent = tk(first, "BUY", qty, "LMT", sym, lmt_price=entry, transmit=False)
    take = tk(first + 1, "SELL", qty, "LMT", sym, lmt_price=tp, parent_id=first, transmit=False)
    stop = tk(first + 2, "SELL", qty, "STP", sym, aux_price=sl, parent_id=first, transmit=True)
    return parent, take, stop


def test_bracket_is_held_until_the_last_leg_then_children_wait_for_the_parent(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    parent, take, stop = bracket(sym, 99.0, 105.0, 95.0)
    assert broker.place_order(parent) == []  # not transmitted: no events (TWS sends none)
    assert broker.place_order(take) == []
    assert broker.order(1, 1).status == "PendingSubmit" and broker.open_orders() == []
    assert fills(broker.process()) == []
    ev = broker.place_order(stop)
    assert [(e.ticket.order_id, e.ticket.status) for e in ev] == [
        (1, "Submitted"), (2, "PreSubmitted"), (3, "PreSubmitted")
    ]  # fmt: skip
    assert fills(broker.process()) == []
    market.set_price(sym, 98.5)  # parent fills; take-profit goes live, stop waits for trigger
    ev = broker.process()
    assert [f.execution.order_id for f in fills(ev)] == [1]
    assert broker.order(2, 1).status == "Submitted" and broker.order(3, 1).status == "PreSubmitted"
    market.set_price(sym, 105.5)  # take profit fills; the stop is cancelled (bracket OCA)
    ev = broker.process()
    assert [f.execution.order_id for f in fills(ev)] == [2]
    cancelled = [e for e in ev if isinstance(e, OrderUpdate) and e.ticket.status == "Cancelled"]
    assert [e.ticket.order_id for e in cancelled] == [3]
    assert broker.open_orders() == []


def test_bracket_children_fill_in_the_same_pass_and_cancel_with_parent(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    for t in bracket(sym, 101.0, 100.0, 90.0):  # entry and take-profit both marketable
        broker.place_order(t)
    ev = broker.process()
    assert [f.execution.order_id for f in fills(ev)] == [1, 2]
    assert broker.order(3, 1).status == "Cancelled"
    for t in bracket(sym, 95.0, 110.0, 90.0, first=10):
        broker.place_order(t)
    ev = broker.cancel_order(10, 1)
    assert [(e.ticket.order_id, e.ticket.status, e.reason) for e in ev] == [
        (10, "Cancelled", ""),
        (11, "Cancelled", "Parent order cancelled"),
        (12, "Cancelled", "Parent order cancelled"),
    ]


def test_oca_cancel_and_reduce(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    broker.place_order(tk(1, "BUY", 10, "LMT", sym, lmt_price=99.0, oca_group="g", oca_type=1))
    broker.place_order(tk(2, "BUY", 10, "LMT", sym, lmt_price=101.0, oca_group="g", oca_type=1))
    ev = broker.process()
    assert [f.execution.order_id for f in fills(ev)] == [2]
    assert broker.order(1, 1).status == "Cancelled"
    assert any(e.reason == "OCA group cancelled" for e in ev if isinstance(e, OrderUpdate))
    broker.place_order(tk(3, "BUY", 10, "LMT", sym, lmt_price=99.0, oca_group="h", oca_type=2))
    broker.place_order(tk(4, "BUY", 4, "LMT", sym, lmt_price=101.0, oca_group="h", oca_type=2))
    broker.process()
    t3 = broker.order(3, 1)
    assert (t3.status, t3.total_quantity, t3.remaining) == ("Submitted", 6, 6)


def test_modify_a_working_order(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    broker.place_order(tk(1, "BUY", 10, "LMT", sym, lmt_price=95.0, order_ref="r1"))
    perm = broker.order(1, 1).perm_id
    assert fills(broker.process()) == []
    ev = broker.place_order(tk(1, "BUY", 20, "LMT", sym, lmt_price=101.0, order_ref="r2"))
    (u,) = ev
    assert (u.ticket.total_quantity, u.ticket.lmt_price, u.ticket.status) == (
        20,
        101.0,
        "Submitted",
    )
    assert u.ticket.perm_id == perm
    (f,) = fills(broker.process())
    assert (f.execution.shares, f.execution.order_ref) == (20, "r2")
    with pytest.raises(OrderRejected) as exc:  # filled: TWS says 104
        broker.place_order(tk(1, "BUY", 20, "LMT", sym, lmt_price=101.0))
    assert (exc.value.code, exc.value.message) == (104, "Can't modify a filled order.")
    broker.place_order(tk(2, "BUY", 10, "LMT", sym, lmt_price=95.0))
    with pytest.raises(OrderRejected) as exc:
        broker.place_order(tk(2, "SELL", 10, "LMT", sym, lmt_price=95.0))
    assert exc.value.code == 105
    broker.place_order(tk(2, "BUY", 10, "MKT", sym))  # change the type
    assert fills(broker.process())[0].execution.order_id == 2


def test_same_order_id_from_another_client_is_a_new_order(broker, market):
    sym = free_symbol(broker)
    broker.place_order(tk(1, "BUY", 1, symbol=sym, client=1))
    broker.place_order(tk(1, "BUY", 1, symbol=sym, client=2))
    assert len(fills(broker.process())) == 2
    assert broker.next_order_id == 2
    assert broker.open_orders(client_id=2) == []


def test_cancel_errors_and_global_cancel(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    broker.place_order(tk(1, "BUY", 10, "LMT", sym, lmt_price=90.0))
    (u,) = broker.cancel_order(1, 1)
    assert u.ticket.status == "Cancelled" and u.reason == ""
    with pytest.raises(BrokerError) as exc:
        broker.cancel_order(1, 1)
    assert exc.value.code == 10147
    assert exc.value.message == "OrderId 1 that needs to be cancelled is not found."
    with pytest.raises(BrokerError) as exc:
        broker.cancel_order(99, 1)
    assert exc.value.code == 10147
    broker.place_order(tk(2, "BUY", 1, symbol=sym))
    broker.process()
    with pytest.raises(BrokerError) as exc:
        broker.cancel_order(2, 1)
    assert exc.value.code == 161
    assert exc.value.message.startswith("Cancel attempted when order is not in a cancellable state")
    broker.place_order(tk(3, "BUY", 10, "LMT", sym, lmt_price=90.0))
    broker.place_order(tk(4, "SELL", 1, "LMT", sym, lmt_price=120.0, client=5))
    ev = broker.global_cancel()
    assert [(e.ticket.order_id, e.ticket.status) for e in ev] == [
        (3, "Cancelled"),
        (4, "Cancelled"),
    ]
    assert broker.open_orders() == []
    assert [t.status for t in broker.completed_orders()] == [
        "Cancelled", "Filled", "Cancelled", "Cancelled"
    ]  # fmt: skip


# ---- rejections ------------------------------------------------------------------------------


def test_price_off_the_tick_grid_is_110(broker):
    with pytest.raises(OrderRejected) as exc:
        broker.place_order(tk(1, "BUY", 10, "LMT", lmt_price=100.005))
    assert exc.value.code == 110
    assert exc.value.message == (
        "The price does not conform to the minimum price variation for this contract."
    )
    with pytest.raises(OrderRejected) as exc:
        broker.place_order(tk(2, "SELL", 10, "STP", aux_price=99.999))
    assert exc.value.code == 110
    assert broker.order(1, 1) is None and broker.completed_orders() == []


@pytest.mark.parametrize(
    "ticket,needle",
    [
        (tk(1, "BUY", 10, "MOC"), "Unsupported order type"),
        (tk(1, "BUY", 10, "LMT"), "limit price"),
        (tk(1, "HOLD", 10), "action"),
        (tk(1, "BUY", 10, tif="IOC"), "time in force"),
    ],
)
def test_bad_orders_are_201(broker, ticket, needle):
    with pytest.raises(OrderRejected) as exc:
        broker.place_order(ticket)
    assert exc.value.code == 201 and exc.value.message.startswith("Order rejected - reason:")
    assert needle in exc.value.message
    (done,) = broker.completed_orders()
    assert done.status == "Inactive"
    with pytest.raises(OrderRejected) as exc:  # the id is used now
        broker.place_order(tk(1, "BUY", 1))
    assert exc.value.code == 103


@pytest.mark.parametrize(
    "ticket,code,needle",
    [
        (tk(1, "BUY", 0), 201, "quantity"),
        (tk(1, "BUY", -5), 201, "quantity"),
        (tk(1, "BUY", float("nan")), 201, "quantity"),
        (tk(1, "BUY", float("inf")), 201, "quantity"),
        (tk(1, "BUY", 1e308), 383, "Size Limit"),
        (tk(1, "BUY", 2_000_000), 383, "Size Limit"),
        (tk(1, "BUY", 0.5), 201, "Fractional"),
        (tk(1, "BUY", 1e-9), 201, "Fractional"),
        (tk(-5), 201, "out of range"),
        (tk(0), 201, "out of range"),
        (tk(2**31), 201, "out of range"),
        (tk(10**40), 201, "out of range"),
        (tk(1, "BUY", 10, "LMT", lmt_price=1e200), 201, "beyond"),
        (tk(1, order_ref="x" * 1_000_000), 201, "order_ref"),
        (tk(1, raw={"algoStrategy": "y" * 10_000}), 201, "algoStrategy"),
    ],
)
def test_impossible_values_are_refused_and_leave_no_trace(broker, ticket, code, needle):
    before = (broker.account_values(), broker.next_order_id)
    with pytest.raises(OrderRejected) as exc:
        broker.place_order(ticket)
    assert exc.value.code == code and needle in exc.value.message
    assert broker.completed_orders() == [] and broker.open_orders() == []
    assert (broker.account_values(), broker.next_order_id) == before
    broker.place_order(tk(1))  # the id was not used up
    assert broker.order(1, 1).status == "Submitted"


def test_unknown_contract_is_200(broker):
    with pytest.raises(OrderRejected) as exc:
        broker.place_order(tk(1, symbol="NOPE"))
    assert exc.value.code == 200


def test_insufficient_buying_power_is_201_with_ibkr_wording(broker, market):
    nav = broker.account_values()["NetLiquidation"]
    price = market.quote("NFLX").ask
    qty = int(3 * nav / price)
    with pytest.raises(OrderRejected) as exc:
        broker.place_order(tk(1, "BUY", qty, symbol="NFLX"))
    msg = exc.value.message
    assert exc.value.code == 201
    assert re.fullmatch(
        r"Order rejected - reason:YOUR ORDER IS NOT ACCEPTED\. IN ORDER TO OBTAIN THE DESIRED "
        r"POSITION YOUR EQUITY WITH LOAN VALUE \[-?\d+\.\d\d USD\] MUST EXCEED THE INITIAL "
        r"MARGIN \[\d+\.\d\d USD\]",
        msg,
    ), msg
    with pytest.raises(OrderRejected):  # short side too
        broker.place_order(tk(2, "SELL", qty, symbol="NFLX"))
    # a position inside the limit is fine (Reg T: 2x equity)
    broker.place_order(tk(3, "BUY", int(0.9 * nav / price), symbol="NFLX"))
    assert broker.order(3, 1).status == "Submitted"


def test_reject_next_order(broker):
    broker.reject_next_order("Simulated outage")
    with pytest.raises(OrderRejected) as exc:
        broker.place_order(tk(1))
    assert (exc.value.code, exc.value.message) == (201, "Order rejected - reason:Simulated outage")
    assert exc.value.ticket.status == "Inactive"
    broker.place_order(tk(2))
    assert broker.order(2, 1).status == "Submitted"


# ---- what-if ---------------------------------------------------------------------------------


def test_what_if_reports_margin_and_commission_and_changes_nothing(broker, market):
    before = (broker.account_values(), broker.positions(), broker.next_order_id)
    (ev,) = broker.place_order(tk(7, "BUY", 100, symbol="IBM", what_if=True))
    assert isinstance(ev, WhatIf)
    s = ev.state
    price = market.quote("IBM").ask
    assert s.commission == commission(100, price) and s.min_commission <= s.max_commission
    assert s.init_margin_before == pytest.approx(before[0]["InitMarginReq"], abs=0.02)
    assert s.init_margin_change == pytest.approx(0.5 * 100 * market.quote("IBM").last, abs=0.05)
    assert s.maint_margin_after == pytest.approx(
        s.maint_margin_before + s.maint_margin_change, abs=0.02
    )
    assert s.equity_with_loan_after < s.equity_with_loan_before  # spread + commission
    assert s.warning_text == ""
    assert (broker.account_values(), broker.positions(), broker.next_order_id) == before
    assert broker.open_orders() == [] and broker.process() == [] and broker.executions() == []
    # the id is still free
    broker.place_order(tk(7, "BUY", 100, symbol="IBM"))


# ---- P&L through the broker ------------------------------------------------------------------


def test_pnl_after_buys_sells_shorts_and_flips(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    cash0 = broker.cash

    def trade(oid, action, qty):
        broker.place_order(tk(oid, action, qty, symbol=sym))
        (f,) = fills(broker.process())
        return f

    b1 = trade(1, "BUY", 300)
    b2 = trade(2, "BUY", 100)
    pos = {r.symbol: r for r in broker.positions()}[sym]
    cost = 300 * b1.execution.price + 100 * b2.execution.price + 1.5 + 1.0
    assert pos.quantity == 400 and pos.average_cost == pytest.approx(cost / 400)
    market.set_price(sym, 110.0)
    s1 = trade(3, "SELL", 600)  # close 400, open 200 short
    fee = commission(600, s1.execution.price)
    expect = (s1.execution.price - cost / 400) * 400 - fee * 400 / 600
    assert s1.commission.realized_pnl == pytest.approx(expect)
    pos = {r.symbol: r for r in broker.positions()}[sym]
    assert pos.quantity == -200
    assert pos.average_cost == pytest.approx(s1.execution.price - fee * 200 / 600 / 200)
    market.set_price(sym, 105.0)
    c1 = trade(4, "BUY", 200)
    assert c1.commission.realized_pnl == pytest.approx(
        (pos.average_cost - c1.execution.price) * 200 - 1.0
    )
    assert sym not in {r.symbol for r in broker.positions()}
    realized = sum(c.commission.realized_pnl or 0 for c in (b1, b2, s1, c1))
    assert broker.cash - cash0 == pytest.approx(realized)  # flat again: all P&L is cash
    row = {r.symbol: r for r in broker.portfolio()}[sym]
    assert row.quantity == 0 and row.realized_pnl == pytest.approx(realized)
    assert broker.account_values()["RealizedPnL"] == pytest.approx(realized, abs=0.01)
    # executions and trade history carry the fills
    assert [t.quantity for t in broker.trade_history() if t.source == "fill"] == [
        300, 100, -600, 200
    ]  # fmt: skip
    for e, _ in broker.executions():
        assert re.fullmatch(r"[0-9a-f]{8}\.[0-9a-f]{8}\.01\.01", e.exec_id)
        assert e.account == broker.account_id and e.time == START


def test_unrealized_pnl_and_market_value(broker, market):
    sym = free_symbol(broker)
    market.set_price(sym, 50.0)
    broker.place_order(tk(1, "SELL", 100, symbol=sym))
    broker.process()
    market.set_price(sym, 45.0)
    row = {r.symbol: r for r in broker.portfolio()}[sym]
    assert row.market_price == 45.0 and row.market_value == pytest.approx(-4500)
    assert row.unrealized_pnl == pytest.approx((45.0 - row.average_cost) * -100)
    assert row.unrealized_pnl > 0
    v = broker.account_values()
    short_v = 4500.0
    assert v["GrossPositionValue"] >= short_v
    assert v["MaintMarginReq"] == pytest.approx(
        0.25 * (v["GrossPositionValue"] - short_v) + 0.30 * short_v, abs=0.02
    )


# ---- time in force and hours -----------------------------------------------------------------


def test_day_orders_expire_at_the_close_gtc_stays(broker, market, clock):
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    broker.place_order(tk(1, "BUY", 10, "LMT", sym, lmt_price=90.0, tif="DAY"))
    broker.place_order(tk(2, "BUY", 10, "LMT", sym, lmt_price=90.0, tif="GTC"))
    clock.set(datetime(2024, 6, 12, 15, 59, 59, tzinfo=ET))
    assert broker.process() == []
    clock.set(datetime(2024, 6, 12, 16, 0, 0, tzinfo=ET))
    ev = broker.process()
    assert [(e.ticket.order_id, e.ticket.status, e.reason) for e in ev] == [
        (1, "Cancelled", "DAY order expired")
    ]
    assert [t.order_id for t in broker.open_orders()] == [2]


def test_orders_outside_regular_hours_wait_for_the_open(broker, market, clock):
    sym = free_symbol(broker)
    clock.set(datetime(2024, 6, 12, 20, 0, tzinfo=ET))
    ev = broker.place_order(tk(1, "BUY", 10, symbol=sym))
    assert statuses(ev) == ["PreSubmitted"]
    assert broker.process() == []
    clock.set(datetime(2024, 6, 13, 9, 30, 5, tzinfo=ET))
    ev = broker.process()
    assert statuses(ev) == ["Submitted", "Filled"]
    assert fills(ev)[0].execution.price == market.quote(sym).ask
    # extended hours (16:00-20:00): a limit order with outside_rth trades on the flat quote,
    # a market order waits for the open as in TWS
    clock.set(datetime(2024, 6, 13, 19, 0, tzinfo=ET))
    ask = market.quote(sym).ask
    broker.place_order(tk(2, "BUY", 10, symbol=sym, outside_rth=True, tif="GTC"))
    broker.place_order(tk(3, "BUY", 10, "LMT", sym, lmt_price=ask, outside_rth=True))
    assert [f.execution.order_id for f in fills(broker.process())] == [3]
    assert broker.order(2, 1).status == "PreSubmitted"
    clock.set(datetime(2024, 6, 13, 20, 30, tzinfo=ET))  # after 20:00 nothing trades
    broker.place_order(tk(4, "BUY", 10, "LMT", sym, lmt_price=ask, outside_rth=True, tif="GTC"))
    assert fills(broker.process()) == []
    clock.set(datetime(2024, 7, 4, 11, 0, tzinfo=ET))  # Independence Day: closed
    assert fills(broker.process()) == [] and broker.order(2, 1).status == "PreSubmitted"
    clock.set(datetime(2024, 7, 5, 9, 30, 1, tzinfo=ET))
    assert 2 in {f.execution.order_id for f in fills(broker.process())}  # the open
    anytime = Broker(market, 9, rth_only=False)
    anytime.place_order(tk(1, "BUY", 10, symbol=sym))
    assert len(fills(anytime.process())) == 1


# ---- events and determinism -----------------------------------------------------------------


def test_subscribers_get_the_same_events(broker):
    got = []
    unsubscribe = broker.subscribe(got.append)
    returned = broker.place_order(tk(1)) + broker.process()
    assert got == returned and len(got) >= 3
    unsubscribe()
    broker.place_order(tk(2))
    assert len(got) == len(returned)


def run_script(seed: int):
    clock = Clock(START, fixed=True)
    market = Market(seed, clock)
    broker = Broker(market, seed)
    sym = free_symbol(broker)
    broker.place_order(tk(1, "BUY", 5000, symbol=sym))
    broker.place_order(tk(2, "SELL", 50, "LMT", "KO", lmt_price=round(market.quote("KO").bid, 2)))
    for _ in range(8):
        broker.process()
        clock.advance(13)
    broker.place_order(tk(3, "SELL", 100, "TRAIL", sym, trailing_percent=0.5))
    for _ in range(50):
        broker.process()
        clock.advance(29)
    return broker


def test_same_seed_same_everything_different_seed_differs():
    a, b, c = run_script(5), run_script(5), run_script(6)
    assert a.executions() == b.executions() and len(a.executions()) >= 3
    assert a.trade_history() == b.trade_history()
    assert a.completed_orders() == b.completed_orders()
    assert a.open_orders() == b.open_orders()
    assert a.account_values() == b.account_values()
    assert [e.exec_id for e, _ in a.executions()] != [e.exec_id for e, _ in c.executions()]
    assert a.account_id != c.account_id


# ---- persistence -----------------------------------------------------------------------------


def test_state_file_round_trip(tmp_path, market, clock):
    path = tmp_path / "state" / "account.json"
    a = Broker(market, 7, state_file=path)
    assert path.exists()
    sym = free_symbol(a)
    market.set_price(sym, 100.0)
    a.place_order(tk(1, "BUY", 20, symbol=sym, order_ref="keep"))
    a.place_order(tk(2, "SELL", 10, "LMT", sym, lmt_price=120.0, tif="GTC"))
    a.place_order(tk(3, "BUY", 5, "LMT", sym, lmt_price=50.0, transmit=False))
    a.process()
    a.reject_next_order("later")
    with pytest.raises(StateFileError, match="in use by pid"):  # one writer at a time
        Broker(market, 7, state_file=path)
    a.close()
    b = Broker(market, 999, state_file=path)  # the file wins over the seed
    assert b.account_id == a.account_id
    assert b.account_values() == a.account_values()
    assert b.positions() == a.positions()
    assert b.executions() == a.executions() and b.trade_history() == a.trade_history()
    assert b.open_orders() == a.open_orders() and b.completed_orders() == a.completed_orders()
    assert b.order(3, 1) == a.order(3, 1) and b.next_order_id == a.next_order_id == 4
    with pytest.raises(OrderRejected):  # the pending control survived
        b.place_order(tk(4))
    market.set_price(sym, 121.0)
    ev = b.process()
    assert [f.execution.order_id for f in fills(ev)] == [2]
    assert fills(ev)[0].execution.exec_id not in {e.exec_id for e, _ in a.executions()}
    # no temp files
    assert sorted(p.name for p in path.parent.iterdir()) == ["account.json", "account.json.lock"]
    b.close()
    c = Broker(market, 7, state_file=path)
    assert c.executions() == b.executions()


def test_corrupt_state_file_names_the_file(tmp_path, market):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(StateFileError, match=re.escape(str(path))):
        Broker(market, 7, state_file=path)
    path.write_text(json.dumps({"version": 1, "account_id": "U123"}))
    with pytest.raises(StateFileError, match="paper"):
        Broker(market, 7, state_file=path)
    path.write_text(json.dumps({"version": 1, "account_id": "DU1234567"}))
    with pytest.raises(StateFileError, match="broken.json"):
        Broker(market, 7, state_file=path)


def test_clock_moves_do_not_break_day_expiry_across_days(broker, clock):
    broker.place_order(tk(1, "BUY", 10, "LMT", lmt_price=1.0))
    clock.advance(timedelta(days=3).total_seconds())
    ev = broker.process()
    assert statuses(ev) == ["Cancelled"]


def test_child_of_a_missing_or_cancelled_parent_is_rejected(broker, market):
    with pytest.raises(OrderRejected) as exc:
        broker.place_order(tk(5, "SELL", 10, "LMT", lmt_price=500.0, parent_id=4))
    assert exc.value.code == 135
    broker.place_order(tk(1, "BUY", 10, "LMT", lmt_price=1.0))
    broker.cancel_order(1, 1)
    with pytest.raises(OrderRejected) as exc:
        broker.place_order(tk(2, "SELL", 10, "LMT", lmt_price=500.0, parent_id=1))
    assert exc.value.code == 201 and "Parent order" in exc.value.message


def test_tws_unset_values_mean_absent(broker, market):
    unset = 1.7976931348623157e308
    sym = free_symbol(broker)
    market.set_price(sym, 100.0)
    ticket = tk(1, "sell", 10, "TRAIL", sym, aux_price=unset, trailing_percent=2.0,
                trail_stop_price=unset, lmt_price=unset, transmit=None)  # fmt: skip
    (u,) = broker.place_order(ticket)
    assert u.ticket.action == "SELL" and u.ticket.trail_stop_price == 98.0
    assert u.ticket.aux_price is None and u.ticket.lmt_price is None
    broker.place_order(tk(2, "BUY", 1, "MKT", sym, lmt_price=unset, aux_price=unset))
    assert len(fills(broker.process())) == 1


def test_cancel_errors_are_order_rejections_without_ticket(broker):
    with pytest.raises(OrderRejected) as exc:
        broker.cancel_order(42, 1)
    assert (exc.value.code, exc.value.order_id, exc.value.ticket) == (10147, 42, None)


@pytest.mark.parametrize("start", [datetime(2025, 7, 7, 15, 0, tzinfo=UTC), START])
def test_the_seeded_account_depends_only_on_seed_and_clock_and_trades_in_sessions(start):
    from ibkr_nb.gateway.market import is_open

    def seeded() -> list:
        return Broker(Market(7, Clock(start, fixed=True)), 7).trade_history()

    first = seeded()
    assert seeded() == first and len(first) >= 10
    assert all(is_open(t.time) for t in first)  # no holidays, weekends or after-hours lots
    assert date(2025, 7, 4) not in {t.time.astimezone(ET).date() for t in first}
