"""IB algo orders through real ib_async: Twap / Vwap / ArrivalPx fill in children spread over
their window on simulated time (frozen clock), Adaptive fills at once between the bid and the
ask by priority; each child is an execution with its commission, orderStatus carries filled /
remaining, and the order ends Filled, or Cancelled with its fills kept when the window is over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ib_async import LimitOrder, MarketOrder, Stock, TagValue
from support import CLOCK, SEED, connect_ib, wait_until

from ibkr_nb.gateway.server import PaperGateway


def place(ib, action, quantity, strategy, params, limit=None):
    [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    tags = [TagValue(k, v) for k, v in params.items()]
    order = MarketOrder(action, quantity) if limit is None else LimitOrder(action, quantity, limit)
    order.algoStrategy, order.algoParams = strategy, tags
    trade = ib.placeOrder(aapl, order)
    statuses: list[tuple[str, float, float]] = []
    trade.statusEvent += lambda t: statuses.append(
        (t.orderStatus.status, t.orderStatus.filled, t.orderStatus.remaining)
    )
    return trade, statuses


def test_twap_fills_in_equal_children_across_its_window_at_the_ask(ib, gateway):
    trade, statuses = place(
        ib, "BUY", 1000, "Twap", {"strategyType": "Marketable", "endTime": "12:30:00 US/Eastern"}
    )
    wait_until(ib, trade.isDone, timeout=10)
    fills = trade.fills
    assert trade.orderStatus.status == "Filled" and len(fills) == 10
    times = [f.execution.time for f in fills]
    end = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)
    assert times[0] == CLOCK and times[-1] == end - timedelta(seconds=720)  # a slice's start
    assert {(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)} == {720.0}
    assert [f.execution.shares for f in fills] == [100.0] * 10
    for f in fills:
        assert f.execution.price == gateway.market.quote_at("AAPL", f.execution.time).ask
    # the order pays the schedule on its whole size: 0.005 x 1000 (the 1.00 minimum once)
    assert sum(f.commissionReport.commission for f in fills) == pytest.approx(5.0)
    average = sum(f.execution.price * f.execution.shares for f in fills) / 1000
    assert trade.orderStatus.avgFillPrice == pytest.approx(average)
    filled = [s[1] for s in statuses if s[0] == "Submitted"]
    assert filled == sorted(filled) and len(set(filled)) >= 9  # a status per child
    assert statuses[-1] == ("Filled", 1000.0, 0.0)


def test_twap_matching_midpoint_adds_liquidity_at_the_mid(ib, gateway):
    trade, _ = place(
        ib, "SELL", 300, "Twap", {"strategyType": "Matching Midpoint", "endTime": "11:00:00"}
    )
    wait_until(ib, trade.isDone, timeout=10)
    assert len(trade.fills) == 10 and trade.orderStatus.status == "Filled"
    for f in trade.fills:
        q = gateway.market.quote_at("AAPL", f.execution.time)
        assert f.execution.price == pytest.approx((q.bid + q.ask) / 2)
        assert f.execution.lastLiquidity == 1


def test_vwap_sizes_children_by_the_market_volume_of_each_slice(ib, gateway):
    trade, _ = place(ib, "BUY", 2000, "Vwap", {})
    wait_until(ib, trade.isDone, timeout=10)
    fills = trade.fills
    assert trade.orderStatus.status == "Filled" and len(fills) == 10
    assert sum(f.execution.shares for f in fills) == 2000
    last_slice = datetime(2026, 11, 24, 21, tzinfo=UTC) - timedelta(seconds=1980)
    assert fills[-1].execution.time == last_slice  # its interval runs to the close
    sizes = [f.execution.shares for f in fills]
    assert len(set(sizes)) > 2 and sizes[-1] == max(sizes)  # the closing minutes trade most
    for f in fills:
        assert f.execution.price == gateway.market.quote_at("AAPL", f.execution.time).last


def test_a_vwap_capped_by_max_pct_vol_is_cancelled_at_its_end_with_its_fills(ib):
    reasons: list[str] = []
    ib.errorEvent += lambda req_id, code, text, contract: reasons.append(f"{code} {text}")
    trade, _ = place(ib, "BUY", 5000, "Vwap", {"maxPctVol": "0.0005", "endTime": "11:30:00"})
    wait_until(ib, trade.isDone, timeout=10)
    filled = sum(f.execution.shares for f in trade.fills)
    assert trade.orderStatus.status == "Cancelled" and 0 < filled < 5000
    assert trade.orderStatus.filled == filled and trade.orderStatus.remaining == 5000 - filled
    wait_until(ib, lambda: any("202 " in r and "window ended at 11:30:00" in r for r in reasons))


def test_a_limit_twap_that_cannot_fill_ends_cancelled_or_works_past_its_end(ib):
    trade, _ = place(ib, "BUY", 100, "Twap", {"endTime": "11:00:00"}, limit=150.0)
    wait_until(ib, trade.isDone, timeout=10)
    assert trade.orderStatus.status == "Cancelled" and not trade.fills
    past, _ = place(
        ib, "BUY", 100, "Twap", {"endTime": "11:00:00", "allowPastEndTime": "1"}, limit=150.0
    )
    ib.sleep(4)  # 16 steps: past the 10 slices, still working
    assert past.orderStatus.status == "Submitted" and not past.isDone()
    ib.cancelOrder(past.order)
    wait_until(ib, past.isDone)


@pytest.mark.parametrize(
    ("priority", "action", "at"),
    [("Urgent", "BUY", "ask"), ("Normal", "BUY", "mid"), ("Patient", "SELL", "mid")],
)
def test_adaptive_fills_at_once_between_bid_and_ask_by_priority(ib, gateway, priority, action, at):
    trade, _ = place(ib, action, 100, "Adaptive", {"adaptivePriority": priority})
    wait_until(ib, trade.isDone)
    [fill] = trade.fills
    q = gateway.market.quote_at("AAPL", fill.execution.time)
    assert q.bid <= fill.execution.price <= q.ask  # the book has a one-cent spread
    expected = q.ask if at == "ask" else (q.bid + q.ask) / 2
    assert fill.execution.price == pytest.approx(expected)
    assert fill.execution.time == CLOCK


def test_an_adaptive_limit_order_out_of_reach_rests(ib):
    trade, _ = place(ib, "BUY", 100, "Adaptive", {"adaptivePriority": "Urgent"}, limit=150.0)
    ib.sleep(1)
    assert trade.orderStatus.status == "Submitted" and not trade.fills


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"startTime": "soon"}, "Twap time"),
        ({"endTime": "25:00:00"}, "not a time of day"),
        ({"startTime": "12:00:00", "endTime": "11:00:00"}, "is not after its startTime"),
        ({"endTime": "11:00:00 Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_bad_algo_times_are_refused_by_name(ib, params, reason):
    trade, _ = place(ib, "BUY", 100, "Twap", params)
    wait_until(ib, trade.isDone)
    assert not trade.fills and any(reason in e.message for e in trade.log)


def test_algo_fills_are_the_same_twice_under_a_frozen_clock():
    runs = []
    for _ in range(2):
        with PaperGateway(port=0, seed=SEED, clock_start=CLOCK, fixed_clock=True) as gw:
            ib = connect_ib(gw)
            trade, _ = place(ib, "BUY", 1500, "Vwap", {"endTime": "13:00:00"})
            wait_until(ib, trade.isDone, timeout=10)
            runs.append(
                [
                    (f.execution.execId, f.execution.time, f.execution.shares, f.execution.price)
                    for f in trade.fills
                ]
            )
            ib.disconnect()
    assert runs[0] == runs[1] and len(runs[0]) == 10


def test_with_a_running_clock_children_wait_for_their_slice_time(live_clock_gateway):
    ib = connect_ib(live_clock_gateway)
    end = ib.reqCurrentTime() + timedelta(seconds=5)  # the gateway's clock, running
    trade, _ = place(ib, "BUY", 500, "Twap", {"endTime": end.strftime("%Y%m%d-%H:%M:%S")})
    ib.sleep(0.5)
    assert len(trade.fills) == 1  # the first child, at arrival; the next ~1.2 s later
    wait_until(ib, trade.isDone, timeout=8)
    times = [f.execution.time for f in trade.fills]
    assert trade.orderStatus.status == "Filled" and len(times) == 4  # 4.x s: one a second
    assert times == sorted(times) and times[-1] < end
    assert sum(f.execution.shares for f in trade.fills) == 500
    ib.disconnect()
