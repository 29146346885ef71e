"""Execution against the paper gateway (real ib_async, a real DuckDB file): dry runs, idempotency,
brackets, rejections, manual-order limits, and faults (dropped connections, a SIGKILLed kernel,
two processes on one ledger). In each: no fill lost, no order duplicated."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from support import CLOCK, SEED, connect_ib, last_price

import ibkr_nb
from ibkr_nb import ClientIdInUse, OrderRejected
from ibkr_nb.execution import RESULT_COLUMNS
from ibkr_nb.gateway.server import PaperGateway

CRASH_CLIENT = Path(__file__).with_name("crash_client.py")
# prices at the frozen clock (support.CLOCK, SEED 7)
AAPL, KO, MSFT, XOM = (last_price(s) for s in ("AAPL", "KO", "MSFT", "XOM"))
DECISIONS = [
    {
        "decision_id": "ai-aapl",
        "ticker": "AAPL",
        "decision": "BUY",
        "confidence": 80,
        "current_price": AAPL,
        "stop_loss": round(AAPL * 0.96, 2),
        "take_profit": round(AAPL * 1.08, 2),
        "reasoning": "bracket",
    },
    {
        "decision_id": "ai-ko",
        "ticker": "KO",
        "decision": "BUY",
        "confidence": 60,
        "current_price": KO,
        "reasoning": "plain buy",
    },
    {
        "decision_id": "ai-msft",
        "ticker": "MSFT",
        "decision": "SELL",
        "confidence": 70,
        "current_price": MSFT,
        "reasoning": "sell the long",
    },
    {
        "decision_id": "ai-xom",
        "ticker": "XOM",
        "decision": "BUY",
        "confidence": 90,
        "current_price": XOM,
        "reasoning": "plain buy",
    },
]
PARENT_REFS = [d["decision_id"] for d in DECISIONS]


@pytest.fixture
def session(gateway):
    with ibkr_nb.connect(port=gateway.port, client_id=31, timeout=15) as s:
        yield s


class Broker:
    """What the gateway holds, asked through a separate ib_async client (never the session's)."""

    def __init__(self, gateway):
        self.ib = connect_ib(gateway)

    def orders(self) -> Counter:
        """Transmitted orders per orderRef: working plus completed, one per permId."""
        trades = self.ib.reqAllOpenOrders() + self.ib.reqCompletedOrders(apiOnly=False)
        return Counter(dict((t.order.permId, t.order.orderRef) for t in trades).values())

    def executions(self) -> pd.DataFrame:
        fills = self.ib.reqExecutions()
        return pd.DataFrame(
            {
                "exec_id": [f.execution.execId for f in fills],
                "order_ref": [f.execution.orderRef for f in fills],
                "quantity": [
                    f.execution.shares * (1 if f.execution.side == "BOT" else -1) for f in fills
                ],
            }
        )

    def close(self) -> None:
        self.ib.disconnect()


@pytest.fixture
def broker(gateway):
    b = Broker(gateway)
    yield b
    b.close()


def decisions() -> pd.DataFrame:
    valid, rejects = ibkr_nb.load_decisions(DECISIONS)
    assert rejects.empty
    return valid


def assert_each_order_once(broker: Broker, refs) -> None:
    orders = broker.orders()
    for ref in refs:
        assert orders[ref] == 1, (ref, orders)


def assert_every_fill_once_in_the_ledger(broker: Broker, ledger) -> None:
    at_broker = broker.executions()
    at_broker = at_broker[at_broker["order_ref"] != ""]
    fills = ledger.fills()
    assert fills["exec_id"].is_unique
    booked = fills[fills["source"] != "opening"]
    assert set(at_broker["exec_id"]) <= set(booked["exec_id"])
    mine = booked[booked["order_ref"].isin(PARENT_REFS)]
    assert (mine["decision_id"] == mine["order_ref"]).all()
    assert mine["confidence"].notna().all() and (mine["reasoning"] != "").all()


def test_dry_run_sends_nothing(gateway, session, broker):
    before = broker.orders()
    plan = session.plan(decisions())
    result = session.execute(plan)
    assert list(result.columns) == RESULT_COLUMNS
    assert list(result["order_ref"]) == PARENT_REFS
    assert (result["status"] == "dry_run").all()
    assert (result["commission"] > 0).all()  # the what-if came back
    assert broker.orders() == before and broker.executions().empty
    assert session.ledger.intents().empty and session.ledger.fills().empty


def test_the_same_plan_three_times_places_each_order_once(gateway, session, broker):
    plan = session.plan(decisions())
    assert (plan["status"] == "planned").all(), plan[["symbol", "reason"]]
    first = session.execute(plan, dry_run=False)
    assert (first["status"] == "Filled").all(), first[["order_ref", "status", "reason"]]
    assert (first["filled"] == plan["quantity"]).all()
    for _ in range(2):
        again = session.execute(plan, dry_run=False)
        assert (again["status"] == "duplicate").all()
        assert again["reason"].str.contains("not sent again").all()
    with ibkr_nb.connect(port=gateway.port, client_id=32) as rerun:  # the notebook re-run
        result = rerun.execute(rerun.plan(decisions()), dry_run=False)
        assert (result["status"] == "duplicate").all()
    assert_each_order_once(broker, [*PARENT_REFS, "ai-aapl:stop", "ai-aapl:target"])
    executed = broker.executions().groupby("order_ref")["quantity"].sum()
    assert executed.loc[PARENT_REFS].tolist() == plan["quantity"].tolist()
    assert_every_fill_once_in_the_ledger(broker, session.ledger)


def test_a_plan_with_a_repeated_order_ref_sends_nothing(gateway, session, broker):
    plan = session.plan(decisions().iloc[[1, 3]])
    doubled = pd.concat([plan, plan], ignore_index=True)
    with pytest.raises(OrderRejected) as info:
        session.execute(doubled, dry_run=False)
    assert info.value.rule == "ORDER_REF" and "ai-ko, ai-xom" in str(info.value)
    assert broker.executions().empty and session.ledger.intents().empty
    assert (session.execute(plan, dry_run=False)["status"] == "Filled").all()


def test_a_lost_ledger_still_never_sends_twice(gateway, session, broker, private_ledger):
    plan = session.plan(decisions())
    session.execute(plan, dry_run=False)
    session.ledger.path.unlink()
    session._ledger = None  # a fresh file: only the broker remembers
    again = session.execute(plan, dry_run=False)
    assert (again["status"] == "duplicate").all()
    assert again["reason"].str.contains("broker").all()
    assert_each_order_once(broker, PARENT_REFS)


def test_place_order_with_the_same_ref_three_times_places_one(gateway, session, broker):
    for _ in range(3):
        rows = session.place_order("KO", 5, order_ref="manual-ko")
        assert rows["order_ref"].tolist() == ["manual-ko"]
        assert rows["status"].iloc[0] == "Filled"
    with ibkr_nb.connect(port=gateway.port, client_id=33) as other:
        other.place_order("KO", 5, order_ref="manual-ko")
    assert_each_order_once(broker, ["manual-ko"])
    assert broker.executions()["quantity"].sum() == 5
    fills = session.ledger.fills()
    assert fills["order_ref"].tolist() == ["manual-ko"] and fills["quantity"].tolist() == [5]


def test_bracket_parent_stop_and_target_reach_the_gateway(gateway, session, broker):
    rows = session.place_order(
        "AAPL",
        10,
        round(AAPL * 1.002, 2),
        stop_loss=round(AAPL * 0.96, 2),
        take_profit=round(AAPL * 1.08, 2),
        order_ref="br",
    )
    assert rows["order_ref"].tolist() == ["br", "br:stop", "br:target"]
    broker.ib.reqAllOpenOrders()
    legs = {t.order.orderRef: t for t in broker.ib.openTrades()}
    parent_id = int(rows["order_id"].iloc[0])
    stop, target = legs["br:stop"], legs["br:target"]
    assert (stop.order.orderType, stop.order.auxPrice, stop.order.action) == (
        "STP",
        round(AAPL * 0.96, 2),
        "SELL",
    )
    assert (target.order.orderType, target.order.lmtPrice) == ("LMT", round(AAPL * 1.08, 2))
    assert stop.order.parentId == target.order.parentId == parent_id
    assert stop.order.totalQuantity == target.order.totalQuantity == 10
    history = session.ledger.intents().set_index("order_ref")
    assert history.loc["br:stop", "parent_ref"] == "br"
    plan = session.plan(decisions().iloc[[0]])
    session.execute(plan, dry_run=False)
    assert_each_order_once(broker, ["ai-aapl", "ai-aapl:stop", "ai-aapl:target"])
    gateway.set_price("AAPL", 189.0)  # through the stop: both stops fill, targets cancelled
    broker.ib.sleep(0.3)
    session.reconcile()
    fills = session.ledger.fills().set_index("order_ref")
    assert fills.loc["br:stop", "quantity"] == -10
    assert fills.loc["ai-aapl:stop", "quantity"] == -plan["quantity"].iloc[0]
    assert broker.orders()["br:target"] == 1


def test_a_ticker_the_broker_does_not_know_is_a_rejected_row(gateway, private_ledger):
    unknown = {**DECISIONS[1], "decision_id": "ai-zzzz", "ticker": "ZZZZ", "confidence": 99}
    bad = {**DECISIONS[0], "decision_id": "ai-bad", "confidence": 500}
    raw = pd.DataFrame([unknown, bad, DECISIONS[1], DECISIONS[3]])
    with ibkr_nb.connect(port=gateway.port, client_id=37, max_orders_per_batch=2) as s:
        plan = s.plan(raw).set_index("decision_id")
        assert plan.loc["ai-bad", "reason"] == "DECISION: confidence outside 0-100"
        assert plan.loc["ai-zzzz", "status"] == "rejected"
        assert plan.loc["ai-zzzz", "reason"].startswith("UNKNOWN_SYMBOL")
        assert list(plan.loc[["ai-ko", "ai-xom"], "status"]) == ["planned", "planned"]
        result = s.execute(plan.reset_index(), dry_run=False).set_index("order_ref")
        assert result.loc["ai-zzzz", "status"] == result.loc["ai-bad", "status"] == "rejected"
        assert set(s.ledger.decisions()["decision_id"]) == {"ai-zzzz", "ai-ko", "ai-xom"}
        assert list(result.loc[["ai-ko", "ai-xom"], "status"]) == ["Filled", "Filled"]


def test_trailing_stop_legs_reach_the_gateway(gateway, session, broker):
    rows = session.place_order(
        "KO", 10, round(KO * 1.003, 2), stop_loss=round(KO * 0.97, 2), trail="2%", order_ref="tr"
    )
    assert rows["order_ref"].tolist() == ["tr", "tr:stop"]
    plan = session.plan(decisions().iloc[[0]], trail_percent=3.0)
    assert plan["trail_percent"].iloc[0] == 3.0
    session.execute(plan, dry_run=False)
    trades = broker.ib.reqAllOpenOrders()
    legs = {t.order.orderRef: t.order for t in trades}
    assert (legs["tr:stop"].orderType, legs["tr:stop"].trailingPercent) == ("TRAIL", 2.0)
    assert (legs["ai-aapl:stop"].orderType, legs["ai-aapl:stop"].trailingPercent) == ("TRAIL", 3.0)
    assert legs["ai-aapl:target"].orderType == "LMT"
    assert_each_order_once(broker, ["tr", "tr:stop", "ai-aapl", "ai-aapl:stop", "ai-aapl:target"])


def test_results_say_when_an_order_waits_for_the_open_or_keeps_working(private_ledger):
    night = CLOCK.replace(hour=3)  # 22:00 in New York the evening before: market closed
    with (
        PaperGateway(port=0, seed=SEED, clock_start=night, fixed_clock=True) as gw,
        ibkr_nb.connect(port=gw.port, client_id=40) as s,
    ):
        plan = s.plan(decisions().iloc[[1]])
        result = s.execute(plan, dry_run=False, wait=0.5)
        assert result["status"].iloc[0] == "PreSubmitted"
        assert result["reason"].iloc[0] == "waiting for the market to open"
    with (
        PaperGateway(port=0, seed=SEED, clock_start=CLOCK, fixed_clock=True) as gw,
        ibkr_nb.connect(port=gw.port, client_id=40) as s,
    ):
        plan = s.plan(decisions().iloc[[3]])  # the same ledger: ai-ko was sent above
        plan.loc[0, "limit_price"] = round(plan.loc[0, "reference_price"] * 0.99, 2)  # rests
        result = s.execute(plan, dry_run=False, wait=0.5)
        assert result["status"].iloc[0] == "Submitted"
        assert result["reason"].iloc[0] == "working after 0.5 s"
        assert result["filled"].iloc[0] == 0 and result["remaining"].iloc[0] == plan["quantity"][0]


def test_partial_fills_are_reported_and_reconcile_books_the_rest(gateway, private_ledger, broker):
    big = {**DECISIONS[1], "confidence": 100}
    limits = {
        "max_position_size": 5e5,
        "max_position_pct": 1.0,
        "max_order_notional": 1e6,
        "max_batch_notional": 1e6,
    }
    with ibkr_nb.connect(port=gateway.port, client_id=42, **limits) as s:
        plan = s.plan(pd.DataFrame([big]))
        quantity = plan["quantity"].iloc[0]
        result = s.execute(plan, dry_run=False, wait=0.5).iloc[0]
        assert 0 < result["filled"] < quantity, result
        assert result["remaining"] == quantity - result["filled"]
        assert result["status"] == "Submitted" and result["reason"] == "working after 0.5 s"
        for _ in range(200):
            gateway.advance_clock(5)
            if broker.executions()["quantity"].sum() >= quantity:
                break
        assert broker.executions()["quantity"].sum() == quantity
        s.reconcile()
        fills = s.ledger.fills()
        mine = fills[fills["order_ref"] == "ai-ko"]
        assert mine["quantity"].sum() == quantity and len(mine) > 1
        assert (mine["decision_id"] == "ai-ko").all() and mine["commission"].notna().all()
        assert_every_fill_once_in_the_ledger(broker, s.ledger)
        s.reconcile()
        assert len(s.ledger.fills()) == len(fills)


def test_estimated_gain_of_a_sale_uses_this_accounts_lots(gateway, session):
    session.reconcile()  # the paper account's MSFT gets an opening lot at IBKR's average cost
    other = pd.DataFrame(
        {
            "exec_id": ["other-1"],
            "account": ["U999"],
            "symbol": ["MSFT"],
            "quantity": [1000.0],
            "price": [1.0],
            "currency": ["USD"],
            "time": [pd.Timestamp("2020-01-02 15:00", tz="UTC")],
        }
    )
    session.ledger.record_fills(other)  # another account's old, cheap MSFT
    row = session.plan(decisions().iloc[[2]]).iloc[0]
    average = session.positions().set_index("symbol").loc["MSFT", "average_cost"]
    sold = -row["quantity"]
    assert row["est_realized_lt"] == 0
    assert row["est_realized_st"] == pytest.approx(sold * (row["reference_price"] - average), 0.01)


def test_gateway_rejection_is_a_rejected_row_and_an_error(gateway, session):
    gateway.reject_next_order("Simulated margin call")
    plan = session.plan(decisions().iloc[[1, 3]])
    result = session.execute(plan, dry_run=False).set_index("order_ref")
    assert result.loc["ai-ko", "status"] == "rejected"
    assert "margin call" in result.loc["ai-ko", "reason"]
    assert result.loc["ai-xom", "status"] == "Filled"
    gateway.reject_next_order("Simulated margin call")
    with pytest.raises(OrderRejected, match="margin call") as info:
        session.place_order("KO", 1, order_ref="rej")
    assert info.value.rule == "BROKER"


def test_manual_orders_are_held_to_the_risk_limits(gateway, private_ledger):
    # NetLiquidation is about 1,010,000: 1,000 AAPL at 198 is about 20% of it
    with ibkr_nb.connect(port=gateway.port, client_id=34, max_order_notional=1e6) as s:
        with pytest.raises(OrderRejected) as info:
            s.place_order("AAPL", 1000)
        assert info.value.rule == "MAX_POSITION_PCT" and "10.00%" in str(info.value)
        assert s.ledger.intents().empty and s.executions().empty
        assert s.place_order("AAPL", 400)["status"].iloc[0] == "Filled"  # 8%: allowed
        with pytest.raises(OrderRejected) as info:  # 8% + 4% would exceed 10%
            s.place_order("AAPL", 200)
        assert info.value.rule == "MAX_POSITION_PCT"
        assert s.place_order("AAPL", -400)["status"].iloc[0] == "Filled"  # shrinking is fine
    with ibkr_nb.connect(port=gateway.port, client_id=35) as s:  # default limits
        with pytest.raises(OrderRejected) as info:
            s.place_order("AAPL", 1000)
        assert info.value.rule == "MAX_POSITION_PCT"
    bad = [
        (float("nan"), "QUANTITY"),
        (float("inf"), "QUANTITY"),
        (0, "QUANTITY"),
        (1.5, "QUANTITY"),
        (10**9, "QUANTITY"),
    ]
    with ibkr_nb.connect(port=gateway.port, client_id=36) as s:
        intents, executions = len(s.ledger.intents()), len(s.executions())
        for quantity, rule in bad:
            with pytest.raises(OrderRejected) as info:
                s.place_order("AAPL", quantity)
            assert info.value.rule == rule, quantity
        for price in (float("nan"), float("inf"), 0.0, -5.0):
            with pytest.raises(OrderRejected) as info:
                s.place_order("AAPL", 1, price)
            assert info.value.rule == "PRICE", price
        with pytest.raises(OrderRejected) as info:
            s.place_order("AAPL", 1, 250.0)
        assert info.value.rule == "MAX_SLIPPAGE_PCT"
        for legs, rule in [
            ({"stop_loss": round(AAPL * 1.2, 2)}, "STOP_LOSS"),  # a market buy stopped out at once
            ({"take_profit": round(AAPL * 0.7, 2)}, "TAKE_PROFIT"),
        ]:
            with pytest.raises(OrderRejected) as info:
                s.place_order("AAPL", 10, **legs)
            assert info.value.rule == rule
        assert len(s.ledger.intents()) == intents and len(s.executions()) == executions


def test_the_ledger_keeps_each_order_and_its_status_history(gateway, session):
    plan = session.plan(decisions().iloc[[0, 1]])
    session.execute(plan, dry_run=False)
    orders = session.ledger.orders().set_index("order_ref")
    assert orders.index.is_unique
    assert set(orders.index) == {"ai-aapl", "ai-aapl:stop", "ai-aapl:target", "ai-ko"}
    assert orders.loc["ai-ko", "status"] == "Filled" and orders.loc["ai-ko", "filled"] > 0
    assert orders.loc["ai-aapl:stop", "status"] in ("PreSubmitted", "Submitted")
    history = session.ledger.order_history("ai-ko")["status"].tolist()
    assert history[0] == "PendingSubmit" and history[-1] == "Filled"
    fills = session.ledger.fills().set_index("order_ref")
    assert fills.loc["ai-ko", "commission"] > 0


def test_daily_notional_counts_what_was_sent_earlier_today(gateway, private_ledger):
    first = decisions().iloc[[1]]  # KO: 60% of 10,000 -> 97 shares, about 6,000
    with ibkr_nb.connect(port=gateway.port, client_id=38, max_daily_notional=8_000) as s:
        sent = s.execute(s.plan(first), dry_run=False)
        assert sent["status"].iloc[0] == "Filled"
        later = s.plan(decisions().iloc[[3]])  # XOM: about 6,200 more
        assert later["status"].iloc[0] == "rejected"
        assert later["reason"].iloc[0].startswith("MAX_DAILY_NOTIONAL")


def test_reducing_state_through_a_session(gateway, private_ledger):
    with ibkr_nb.connect(port=gateway.port, client_id=39, trading_state="reducing") as s:
        with pytest.raises(OrderRejected) as info:
            s.place_order("AAPL", 1)
        assert info.value.rule == "TRADING_STATE"
        assert s.place_order("MSFT", -10)["status"].iloc[0] == "Filled"  # shrinks the long
        plan = s.plan(decisions()).set_index("decision_id")
        assert plan.loc["ai-msft", "status"] == "planned"
        assert plan.drop(index="ai-msft")["reason"].str.startswith("TRADING_STATE").all()


# -- faults ---------------------------------------------------------------------------------


def test_gateway_drops_every_connection_halfway_through_a_batch(gateway, session):
    plan = session.plan(decisions())
    dropped = []

    def progress(line: str) -> None:
        if line.startswith("[3/") and not dropped:
            dropped.append(line)
            gateway.drop_connections()

    result = session.execute(plan, dry_run=False, progress=progress)
    assert (result["status"] == "Filled").all(), result[["order_ref", "status", "reason"]]
    assert session.notices and "restored" in session.notices[-1]
    assert session.execute(plan, dry_run=False)["status"].eq("duplicate").all()
    broker = Broker(gateway)  # connected after the drop
    assert_each_order_once(broker, [*PARENT_REFS, "ai-aapl:stop", "ai-aapl:target"])
    executed = broker.executions().groupby("order_ref")["quantity"].sum()
    assert executed.loc[PARENT_REFS].tolist() == plan["quantity"].tolist()
    assert_every_fill_once_in_the_ledger(broker, session.ledger)
    broker.close()


def test_dropped_again_while_resending_then_run_again(gateway, session):
    """The re-send after a drop is dropped too: what never reached the broker says so, and the
    next execute sends exactly that."""
    plan = session.plan(decisions())

    def progress(line: str) -> None:
        if line.startswith("[3/"):
            gateway.drop_connections()

    first = session.execute(plan, dry_run=False, progress=progress).set_index("order_ref")
    unconfirmed = first[first["status"] == "PendingSubmit"]
    assert first["status"].isin(["Filled", "PendingSubmit"]).all()
    assert unconfirmed["reason"].str.contains("Run execute again").all()
    assert (unconfirmed["filled"] == 0).all()
    again = session.execute(plan, dry_run=False).set_index("order_ref")
    assert (again.loc[unconfirmed.index, "status"] == "Filled").all()
    assert (again.drop(unconfirmed.index)["status"] == "duplicate").all()
    broker = Broker(gateway)
    assert_each_order_once(broker, [*PARENT_REFS, "ai-aapl:stop", "ai-aapl:target"])
    executed = broker.executions().groupby("order_ref")["quantity"].sum()
    assert executed.loc[PARENT_REFS].tolist() == plan["quantity"].tolist()
    assert_every_fill_once_in_the_ledger(broker, session.ledger)
    broker.close()


def start_client(port: int, client_id: int, decisions_file: Path, moment: str = "none"):
    """A kernel in a subprocess (tests/crash_client.py) on this test's ledger."""
    return subprocess.Popen(
        [sys.executable, str(CRASH_CLIENT), str(port), str(client_id), str(decisions_file), moment],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode in (0, -9), err[-2000:]
    return out


@pytest.fixture
def own_gateway():
    """A gateway in this process: it outlives the killed client."""
    with PaperGateway(port=0, seed=SEED, clock_start=CLOCK, fixed_clock=True) as gw:
        yield gw


# placeOrder calls: 1-3 the AAPL bracket (parent, stop, target), 4 KO, 5 MSFT, 6 XOM
MOMENTS = [
    "intent",
    "transmit-1",
    "transmit-2",
    "transmit-3",
    "transmit-4",
    "transmit-6",
    "acknowledged",
    "record",
]


def connect_when_free(port: int, client_id: int):
    """The restarted kernel's connect: the gateway (like TWS) frees a killed client's id only
    once it has seen the socket close, so retry briefly while the id is still in use."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return ibkr_nb.connect(port=port, client_id=client_id, timeout=15)
        except ClientIdInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_killed_kernel_then_reconcile_and_rerun(own_gateway, tmp_path, moment):
    decisions_file = tmp_path / "decisions.json"
    decisions_file.write_text(json.dumps(DECISIONS))
    crashed = start_client(own_gateway.port, 41, decisions_file, moment)
    finish(crashed)
    assert crashed.returncode == -9
    broker = Broker(own_gateway)
    try:
        with connect_when_free(own_gateway.port, 41) as s:
            s.reconcile()
            result = s.execute(s.plan(decisions()), dry_run=False)
            assert result["status"].isin(["Filled", "duplicate"]).all(), result
            assert s.execute(s.plan(decisions()), dry_run=False)["status"].eq("duplicate").all()
            s.reconcile()
            assert_each_order_once(broker, [*PARENT_REFS, "ai-aapl:stop", "ai-aapl:target"])
            executed = broker.executions().groupby("order_ref")["quantity"].sum()
            assert set(PARENT_REFS) <= set(executed.index)
            assert_every_fill_once_in_the_ledger(broker, s.ledger)
            intents = s.ledger.intents().set_index("order_ref")
            assert (intents.loc[PARENT_REFS, "status"] == "acknowledged").all()
            fills = s.ledger.fills()
            assert fills.groupby("order_ref")["quantity"].sum().loc[PARENT_REFS].tolist() == (
                executed.loc[PARENT_REFS].tolist()
            )
    finally:
        broker.close()


def test_two_processes_on_one_ledger_both_succeed(own_gateway, tmp_path):
    paths = [tmp_path / "d0.json", tmp_path / "d1.json"]
    for path, half in zip(paths, [DECISIONS[:2], DECISIONS[2:]], strict=True):
        path.write_text(json.dumps(half))
    procs = [start_client(own_gateway.port, 51 + n, path) for n, path in enumerate(paths)]
    for p in procs:
        finish(p)
        assert p.returncode == 0
    broker = Broker(own_gateway)
    try:
        ledger = ibkr_nb.Ledger()
        assert_each_order_once(broker, PARENT_REFS)
        assert_every_fill_once_in_the_ledger(broker, ledger)
        assert set(ledger.decisions()["decision_id"]) == set(PARENT_REFS)
        assert set(PARENT_REFS) <= set(ledger.intents()["order_ref"])
    finally:
        broker.close()


def test_two_processes_running_the_same_decisions_at_once_send_each_order_once(
    own_gateway, tmp_path
):
    path = tmp_path / "decisions.json"
    path.write_text(json.dumps(DECISIONS))
    procs = [start_client(own_gateway.port, 61 + n, path) for n in range(2)]
    outputs = [finish(p) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    broker = Broker(own_gateway)
    try:
        assert_each_order_once(broker, [*PARENT_REFS, "ai-aapl:stop", "ai-aapl:target"])
        assert_every_fill_once_in_the_ledger(broker, ibkr_nb.Ledger())
        for ref in PARENT_REFS:  # one process filled it, the other left it alone
            lines = [line for out in outputs for line in out.splitlines() if f" {ref} " in line]
            assert sum("Filled" in line for line in lines) == 1, lines
    finally:
        broker.close()
