"""Widgets driven as a person would (set values, click) against the paper gateway, and the
display helpers they render with."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support import last_price

import ibkr_nb
from ibkr_nb import widgets
from ibkr_nb.tax import load_trades

SAMPLE_STATEMENT = (
    Path(__file__).resolve().parents[1] / "data" / "samples" / "activity_statement.csv"
)


@pytest.fixture
def session(gateway):
    s = ibkr_nb.connect(port=gateway.port, client_id=5)
    yield s
    s.disconnect()


def test_ticket_submits_only_after_a_passing_preview_and_reaches_gateway_and_ledger(session):
    ticket = widgets.OrderTicket(
        session, symbol="AAPL", quantity=10, limit_price=round(last_price("AAPL") * 1.002, 2)
    )
    assert ticket.submit_button.disabled  # nothing previewed yet
    ticket.submit_button.click()
    assert ticket.result is None
    ticket.preview_button.click()
    assert ticket.preview.passed and not ticket.submit_button.disabled
    gates = ticket.preview.gates
    assert list(gates["gate"]) == [
        "session",
        "order values",
        "risk limits",
        "what-if",
        "idempotency",
    ]
    assert ticket.preview.summary["commission"].iloc[0] > 0
    ticket.quantity.value = 12  # a change disables Submit until the next preview
    assert ticket.submit_button.disabled and ticket.preview is None
    ticket.preview_button.click()
    ref = ticket.preview.order_ref
    ticket.submit_button.click()
    assert ticket.submit_button.disabled  # a second click cannot send again
    assert ticket.result["status"].iloc[0] == "Filled"
    assert ticket.result["quantity"].iloc[0] == 12
    executions = session.executions()
    assert list(executions.loc[executions["order_ref"] == ref, "quantity"]) == [12.0]
    fills = session.ledger.fills()
    assert list(fills.loc[fills["order_ref"] == ref, "quantity"]) == [12.0]
    assert "Sent as order_ref" in ticket.output.value
    # the same preview submitted again (a script re-running a cell) sends nothing new
    widgets.submit_ticket(session, ticket.preview)
    assert (session.executions()["order_ref"] == ref).sum() == 1


def test_ticket_over_a_limit_shows_the_rule_and_cannot_be_submitted(session):
    ticket = widgets.OrderTicket(
        session, symbol="AAPL", quantity=1000, limit_price=round(last_price("AAPL") * 1.002, 2)
    )
    ticket.preview_button.click()
    gates = ticket.preview.gates.set_index("gate")
    assert gates.loc["risk limits", "verdict"] == "deny"
    assert "MAX_POSITION_PCT" in gates.loc["risk limits", "detail"]  # 1000 AAPL is 20% of NAV
    assert ticket.submit_button.disabled
    assert "MAX_POSITION_PCT" in ticket.output.value
    with pytest.raises(ibkr_nb.OrderRejected) as err:
        widgets.submit_ticket(session, ticket.preview)
    assert err.value.rule == "PREVIEW"
    assert len(session.executions()) == 0


def test_ticket_bad_values_and_unknown_symbol_are_refused_before_anything_else(session):
    zero = widgets.preview_ticket(session, "AAPL", "BUY", 0, "MKT").gates.set_index("gate")
    assert zero.loc["order values", "verdict"] == "deny"
    assert "QUANTITY" in zero.loc["order values", "detail"]
    assert set(zero.loc[["risk limits", "what-if", "idempotency"], "verdict"]) == {"not checked"}
    negative = widgets.preview_ticket(session, "AAPL", "BUY", 5, "LMT", -3.0)
    assert "PRICE" in negative.gates.set_index("gate").loc["order values", "detail"]
    unknown = widgets.preview_ticket(session, "NOSUCH", "BUY", 5, "MKT")
    assert "no contract" in unknown.gates.set_index("gate").loc["order values", "detail"]
    side = widgets.preview_ticket(session, "AAPL", "HOLD", 5, "MKT")
    assert "SIDE" in side.gates.set_index("gate").loc["order values", "detail"]


def test_ticket_kill_switch_denies_at_preview_and_at_submit(session, private_ledger):
    ticket = widgets.OrderTicket(session, symbol="AAPL", quantity=5, order_type="MKT")
    Path(session.settings.ibkr_kill_switch).write_text("stop")
    ticket.preview_button.click()
    assert ticket.preview.gates.set_index("gate").loc["session", "verdict"] == "deny"
    assert ticket.submit_button.disabled
    Path(session.settings.ibkr_kill_switch).unlink()
    ticket.preview_button.click()
    assert not ticket.submit_button.disabled
    Path(session.settings.ibkr_kill_switch).write_text("stop")  # switched on after the preview
    ticket.submit_button.click()
    assert "KILL_SWITCH" in ticket.output.value
    assert len(session.executions()) == 0


def test_ticket_used_order_ref_is_denied_by_idempotency(session):
    session.place_order("AAPL", 3, order_ref="manual-1")
    preview = widgets.preview_ticket(session, "AAPL", "BUY", 3, "MKT", order_ref="manual-1")
    assert preview.gates.set_index("gate").loc["idempotency", "verdict"] == "deny"
    assert not preview.passed


def _plan(session):
    bars = session.daily_bars(["AAPL", "MSFT", "KO", "IBM", "XOM"], "3 M")
    valid, _ = ibkr_nb.decide(["AAPL", "MSFT", "KO", "IBM", "XOM"], ibkr_nb.momentum_engine(bars))
    return session.plan(valid)


def test_review_places_only_approved_rows_once(session):
    plan = _plan(session)
    review = widgets.DecisionReview(session, plan)
    refs = list(review.choices)
    assert len(refs) == (plan["status"] == "planned").sum() >= 2
    review.choices[refs[0]].value = "approve"
    review.choices[refs[1]].value = "reject"
    review.place_button.click()
    result = review.result.set_index("order_ref")
    assert result.loc[refs[0], "status"] == "Filled"
    for ref in refs[1:]:
        assert result.loc[ref, "status"] == "rejected"
        assert result.loc[ref, "reason"].startswith("REVIEW")
    assert set(session.executions()["order_ref"]) == {refs[0]}
    review.place_button.click()  # clicked again: the approved order is not sent twice
    assert review.result.set_index("order_ref").loc[refs[0], "status"] == "duplicate"
    assert (session.executions()["order_ref"] == refs[0]).sum() == 1


def test_review_plan_is_pure_and_keeps_non_planned_rows():
    plan = pd.DataFrame(
        {
            "order_ref": ["a", "b", "c"],
            "status": ["planned", "planned", "hold"],
            "reason": ["", "", ""],
        }
    )
    out = widgets.review_plan(plan, ["b"])
    assert list(out["status"]) == ["rejected", "planned", "hold"]
    assert list(plan["status"]) == ["planned", "planned", "hold"]


def test_connection_badge_shows_masked_paper_account_and_exchange_time(session):
    badge = widgets.ConnectionBadge(session)
    assert "connected · DU****" in badge.label.value
    assert "paper" in badge.label.value and "2026-11-24 10:30:00 EST" in badge.label.value
    assert session.account not in badge.label.value
    status = widgets.connection_status(session).iloc[0]
    assert status["connected"] and status["account"] == session.account
    session.disconnect()
    badge.refresh_button.click()
    assert "disconnected" in badge.label.value


def test_tax_picker_redraws_for_year_and_method():
    trades = load_trades(SAMPLE_STATEMENT).trades
    picker = widgets.TaxPicker(trades)
    assert picker.year.options == (2024, 2023)
    assert picker.report.year == 2024 and "Schedule D" in picker.tables.value
    assert len(picker.charts.outputs) == 2
    fifo = picker.report.by_term.set_index("term")["gain_loss"]
    picker.method.value = "lifo"
    assert picker.report.method == "lifo"
    assert not picker.report.by_term.set_index("term")["gain_loss"].equals(fifo)
    picker.year.value = 2023
    assert picker.report.year == 2023
    assert set(pd.to_datetime(picker.report.result.realized["date_sold"]).dt.year) == {2023}
    assert "specific" not in picker.method.options  # it needs a lot selection per sale


def test_tax_report_wash_sales_and_schedule_d_from_a_statement():
    trades = load_trades(SAMPLE_STATEMENT).trades
    report = widgets.tax_report(trades, 2024)
    assert (report.wash_sales["adjustment_amount"] > 0).all() and len(report.wash_sales)
    totals = report.schedule_d.set_index(["term", "box"])["gain_loss"]
    assert totals[("short", "all")] + totals[("long", "all")] == pytest.approx(
        report.by_term["gain_loss"].sum(), abs=0.01
    )
