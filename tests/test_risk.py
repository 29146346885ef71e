"""The plan's rules as readable tables: position logic, size, each cap, batch limits, states.

Every case: NetLiquidation 100,000, AvailableFunds 100,000, price 100, confidence 50, so the
base size is floor(10,000 / 100 x 50/100) = 50 shares, MAX_POSITION_PCT 10% allows 100 shares,
MAX_PORTFOLIO_RISK 2% allows a loss of 2,000 to the stop.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibkr_nb import TradingState, check_orders, plan_orders
from ibkr_nb.risk import PLAN_COLUMNS, RiskLimits

TODAY = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
ACCOUNT = {"NetLiquidation": 100_000.0, "AvailableFunds": 100_000.0}
LIMITS = RiskLimits()


def decision(action="BUY", price=100.0, confidence=50.0, ticker="XYZ", **extra) -> dict:
    return {
        "decision_id": extra.pop("decision_id", f"{ticker}-{action}"),
        "ticker": ticker,
        "decision": action,
        "confidence": confidence,
        "current_price": price,
        "stop_loss": extra.pop("stop_loss", np.nan),
        "take_profit": extra.pop("take_profit", np.nan),
        "created_at": extra.pop("created_at", pd.Timestamp(TODAY)),
    }


def plan(decisions, held=0.0, limits=LIMITS, account=ACCOUNT, **kwargs) -> pd.DataFrame:
    decisions = [decisions] if isinstance(decisions, dict) else decisions
    positions = pd.DataFrame({"symbol": ["XYZ"], "quantity": [float(held)]})
    return plan_orders(pd.DataFrame(decisions), positions, account, limits, today=TODAY, **kwargs)


# action, position before, -> status, signed quantity, position after, reason contains
POSITION_LOGIC = [
    ("BUY", 0, "planned", 50, 50, ""),  # flat: buy the size
    ("BUY", 30, "planned", 50, 80, ""),  # long: add the size
    ("BUY", -20, "planned", 70, 50, ""),  # short: cover 20 and buy 50
    ("SELL", 40, "planned", -40, 0, ""),  # long: sell the position
    ("SELL", 0, "planned", -50, -50, ""),  # flat: short the size
    ("SELL", -10, "planned", -50, -60, ""),  # short: short the size more
    ("HOLD", 40, "hold", 0, 40, ""),  # nothing
]


@pytest.mark.parametrize(("action", "held", "status", "quantity", "after", "words"), POSITION_LOGIC)
def test_position_logic(action, held, status, quantity, after, words):
    row = plan(decision(action), held).iloc[0]
    assert (row.status, row.quantity, row.position_after) == (status, quantity, after)
    assert words in row.reason
    if status == "planned":
        assert row.order_type == "LMT" and row.action == action and row.order_ref == row.decision_id
        assert row.notional == pytest.approx(abs(quantity) * 100)
        assert row.pct_nav == pytest.approx(abs(quantity) * 100 / 100_000)
        assert row.limit_price == (100.2 if action == "BUY" else 99.8)  # marketable, 0.2% collar


# shorting switched off: SELL flat or short is refused, SELL long still sells
@pytest.mark.parametrize(
    ("held", "status", "quantity"), [(0, "rejected", 0), (-10, "rejected", 0), (40, "planned", -40)]
)
def test_shorting_off(held, status, quantity):
    row = plan(decision("SELL"), held, replace(LIMITS, allow_short=False)).iloc[0]
    assert (row.status, row.quantity) == (status, quantity)
    if status == "rejected":
        assert row.reason.startswith("ALLOW_SHORT")


# price, confidence, NAV -> shares: floor(MAX_POSITION_SIZE / price x confidence/100), at least 1
SIZES = [
    (100.0, 50.0, 100_000, 50),
    (33.0, 77.0, 100_000, 233),  # 10,000 / 33 x 0.77 = 233.3
    (250.0, 100.0, 1_000_000, 40),
    (20_000.0, 10.0, 1_000_000, 1),  # 0.05 shares -> at least 1
    (100.0, 0.0, 100_000, 1),  # confidence 0 -> still 1
]


@pytest.mark.parametrize(("price", "confidence", "nav", "shares"), SIZES)
def test_size_formula(price, confidence, nav, shares):
    account = {"NetLiquidation": nav, "AvailableFunds": nav}
    row = plan(decision(price=price, confidence=confidence), account=account).iloc[0]
    assert (row.status, row.quantity) == ("planned", shares)


# what binds, the decision and position, -> shares, the rule named in reason
CAPS = [
    ("MAX_POSITION_PCT", {}, 90, LIMITS, 10),  # 100 allowed, 90 held
    ("MAX_PORTFOLIO_RISK", {"stop_loss": 50.0}, 0, LIMITS, 40),  # 2,000 / 50 a share
    ("AVAILABLE_FUNDS", {}, 0, LIMITS, 19),  # (2,000 - 1.00 commission) / 100
    ("MAX_ORDER_NOTIONAL", {}, 0, replace(LIMITS, max_order_notional=3_000), 30),
    ("MAX_ORDER_QUANTITY", {}, 0, replace(LIMITS, max_order_quantity=20), 20),
]


@pytest.mark.parametrize(
    ("rule", "extra", "held", "limits", "shares"), CAPS, ids=[c[0] for c in CAPS]
)
def test_each_cap_binds_and_is_named(rule, extra, held, limits, shares):
    account = {**ACCOUNT, "AvailableFunds": 2_000.0} if rule == "AVAILABLE_FUNDS" else ACCOUNT
    row = plan(decision(**extra), held, limits, account).iloc[0]
    assert (row.status, row.quantity) == ("planned", shares)
    assert row.reason == f"capped from 50 to {shares} shares: " + row.reason.split(": ", 1)[1]
    assert rule in row.reason


@pytest.mark.parametrize(
    ("rule", "held", "limits", "account", "extra"),
    [
        ("MAX_POSITION_PCT", 100, LIMITS, ACCOUNT, {}),
        (
            "MAX_PORTFOLIO_RISK",
            0,
            replace(LIMITS, max_portfolio_risk=0.0001),
            ACCOUNT,
            {"stop_loss": 50.0},
        ),
        ("AVAILABLE_FUNDS", 0, LIMITS, {**ACCOUNT, "AvailableFunds": 50.0}, {}),
        ("MAX_ORDER_NOTIONAL", 0, replace(LIMITS, max_order_notional=99), ACCOUNT, {}),
    ],
)
def test_a_size_capped_to_zero_is_rejected_naming_the_limit(rule, held, limits, account, extra):
    row = plan(decision(**extra), held, limits, account).iloc[0]
    assert (row.status, row.quantity) == ("rejected", 0)
    assert row.reason.startswith(rule + ":")


def test_bracket_risk_to_stop_and_trailing_option():
    d = decision(stop_loss=80.0, take_profit=140.0)
    row = plan(d).iloc[0]
    assert (row.quantity, row.stop_loss, row.take_profit) == (50, 80.0, 140.0)
    assert row.risk_to_stop == 50 * 20 and row.pct_nav_at_risk == pytest.approx(0.01)
    trailing = plan(d, trail_percent=3.0).iloc[0]
    assert np.isnan(trailing.stop_loss) and trailing.trail_percent == 3.0
    assert trailing.take_profit == 140.0
    short = plan(decision("SELL", stop_loss=110.0, take_profit=80.0)).iloc[0]
    assert (short.quantity, short.stop_loss, short.risk_to_stop) == (-50, 110.0, 500.0)
    assert list(plan(d).columns) == PLAN_COLUMNS


def test_stop_already_passed_is_rejected():
    quotes = pd.DataFrame({"symbol": ["XYZ"], "last": [99.0]})
    row = plan(decision(stop_loss=99.5), quotes=quotes).iloc[0]
    assert row.status == "rejected" and row.reason.startswith("STOP_LOSS")


# batch limits apply highest confidence first; a smaller later row may still fit
def test_max_orders_per_batch_keeps_the_most_confident():
    rows = [decision(ticker=t, confidence=c) for t, c in [("AAA", 60), ("BBB", 90), ("CCC", 70)]]
    out = plan(rows, limits=replace(LIMITS, max_orders_per_batch=2)).set_index("symbol")
    assert out.loc["AAA", "status"] == "rejected"
    assert out.loc["AAA", "reason"].startswith("MAX_ORDERS_PER_BATCH")
    assert list(out.loc[["BBB", "CCC"], "status"]) == ["planned", "planned"]


def test_max_batch_and_daily_notional():
    rows = [decision(ticker="AAA", confidence=90), decision(ticker="BBB", confidence=40)]
    # AAA: 90 shares = 9,000; BBB: 40 shares = 4,000
    out = plan(rows, limits=replace(LIMITS, max_batch_notional=10_000)).set_index("symbol")
    assert out.loc["AAA", "status"] == "planned"
    assert out.loc["BBB", "reason"].startswith("MAX_BATCH_NOTIONAL")
    out = plan(rows, limits=replace(LIMITS, max_daily_notional=20_000), traded_today=12_000)
    out = out.set_index("symbol")
    assert out.loc["AAA", "reason"].startswith("MAX_DAILY_NOTIONAL")
    assert out.loc["BBB", "status"] == "planned"  # 12,000 + 4,000 still fits


def test_available_funds_are_spent_across_the_batch():
    rows = [decision(ticker="AAA", confidence=90), decision(ticker="BBB", confidence=80)]
    out = plan(rows, account={**ACCOUNT, "AvailableFunds": 12_000.0}).set_index("symbol")
    assert out.loc["AAA", "status"] == "planned"
    assert out.loc["BBB", "reason"].startswith("AVAILABLE_FUNDS")


def test_a_later_decision_supersedes_an_earlier_one_for_the_symbol():
    early = decision(decision_id="old", created_at=pd.Timestamp("2026-11-23", tz="UTC"))
    late = decision("SELL", decision_id="new")
    out = plan([early, late], held=40).set_index("decision_id")
    assert out.loc["old", "reason"].startswith("SUPERSEDED")
    assert out.loc["new", "quantity"] == -40


# trading state, action, position -> status, quantity, reason starts with
STATES = [
    (TradingState.HALTED, "BUY", 0, "rejected", 0, "TRADING_STATE"),
    (TradingState.HALTED, "SELL", 40, "rejected", 0, "TRADING_STATE"),
    (TradingState.HALTED, "HOLD", 40, "hold", 0, ""),
    (TradingState.REDUCING, "BUY", 0, "rejected", 0, "TRADING_STATE"),
    (TradingState.REDUCING, "SELL", 0, "rejected", 0, "TRADING_STATE"),
    (TradingState.REDUCING, "SELL", 40, "planned", -40, ""),
    (TradingState.REDUCING, "BUY", -20, "planned", 20, ""),  # covers, opens nothing
]


@pytest.mark.parametrize(("state", "action", "held", "status", "quantity", "words"), STATES)
def test_trading_states(state, action, held, status, quantity, words):
    row = plan(decision(action), held, replace(LIMITS, trading_state=state)).iloc[0]
    assert (row.status, row.quantity) == (status, quantity)
    assert row.reason.startswith(words)


@pytest.mark.parametrize(
    ("last", "status", "reference"),
    [(101.0, "planned", 101.0), (97.0, "rejected", 97.0), (103.0, "rejected", 103.0)],
)
def test_slippage_between_decision_and_quote(last, status, reference):
    quotes = pd.DataFrame({"symbol": ["XYZ"], "bid": [np.nan], "ask": [np.nan], "last": [last]})
    row = plan(decision(), quotes=quotes).iloc[0]
    assert (row.status, row.reference_price) == (status, reference)
    if status == "rejected":
        assert row.reason.startswith("MAX_SLIPPAGE_PCT")


def test_missing_quote_falls_back_to_mid_then_decision_price():
    quotes = pd.DataFrame({"symbol": ["XYZ"], "bid": [100.5], "ask": [101.5], "last": [np.nan]})
    assert plan(decision(), quotes=quotes).iloc[0].reference_price == 101.0
    other = pd.DataFrame({"symbol": ["ABC"], "last": [5.0]})
    assert plan(decision(), quotes=other).iloc[0].reference_price == 100.0


def lots(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["symbol", "quantity", "cost_basis", "date_acquired"])
    frame["holding_period_start"] = pd.to_datetime(frame["date_acquired"])
    return frame


def test_estimated_short_and_long_term_gain_of_a_sale():
    # FIFO: 10 shares from 2024 (long term, basis 50 each), then 30 from October (short term)
    held = lots(
        ("XYZ", 10, 500.0, "2024-01-02"),
        ("XYZ", 30, 2_700.0, "2026-10-01"),
        ("ABC", 5, 100.0, "2020-01-01"),
    )
    row = plan(decision("SELL"), 40, lots=held).iloc[0]
    assert row.est_realized_lt == pytest.approx(10 * (100 - 50))
    assert row.est_realized_st == pytest.approx(30 * (100 - 90))
    partial = plan(decision("SELL"), 40, replace(LIMITS, max_order_quantity=25), lots=held).iloc[0]
    assert partial.quantity == -25
    assert (partial.est_realized_lt, partial.est_realized_st) == (500.0, 150.0)
    buy = plan(decision("BUY"), 40, lots=held).iloc[0]
    assert np.isnan(buy.est_realized_st) and np.isnan(buy.est_realized_lt)


def test_wash_sale_warning_on_a_buy_after_a_loss_sale():
    realized = pd.DataFrame(
        {
            "symbol": ["XYZ", "ABC", "DEF"],
            "date_sold": ["2026-11-10", "2026-11-20", "2026-10-01"],
            "gain_loss": [-300.0, 200.0, -50.0],
        }
    )
    rows = [decision(ticker=t, decision_id=t) for t in ("XYZ", "ABC", "DEF")]
    out = plan(rows, realized=realized).set_index("symbol")["wash_sale_warning"]
    assert "wash sale" in out["XYZ"] and "300.00" in out["XYZ"]
    assert out["ABC"] == "" and out["DEF"] == ""  # a gain; a loss more than 30 days back
    sell = plan(decision("SELL"), 40, realized=realized).iloc[0]
    assert sell.wash_sale_warning == ""


# -- manual orders (the same limits) -------------------------------------------------------

QUOTE = pd.DataFrame({"symbol": ["XYZ"], "last": [100.0]})


@pytest.mark.parametrize(
    ("quantity", "limit", "held", "limits", "rule", "legs"),
    [
        (200, np.nan, 0, replace(LIMITS, max_order_notional=1e6), "MAX_POSITION_PCT", {}),
        (50, np.nan, 0, LIMITS, "", {}),
        (-200, np.nan, 200, LIMITS, "", {}),  # shrinks a position: the exposure caps do not apply
        (600, np.nan, 0, replace(LIMITS, max_position_pct=1.0), "MAX_ORDER_NOTIONAL", {}),
        (-600, np.nan, 600, LIMITS, "MAX_ORDER_NOTIONAL", {}),  # a sale too is one order
        (10, 105.0, 0, LIMITS, "MAX_SLIPPAGE_PCT", {}),
        (-10, np.nan, 0, replace(LIMITS, allow_short=False), "ALLOW_SHORT", {}),
        (10, np.nan, 0, replace(LIMITS, trading_state=TradingState.HALTED), "TRADING_STATE", {}),
        (10, np.nan, 0, replace(LIMITS, trading_state=TradingState.REDUCING), "TRADING_STATE", {}),
        (-10, np.nan, 40, replace(LIMITS, trading_state=TradingState.REDUCING), "", {}),
        (10, np.nan, 0, LIMITS, "STOP_LOSS", {"stop_loss": 101.0}),  # a market buy: the quote
        (-10, np.nan, 40, LIMITS, "STOP_LOSS", {"stop_loss": 99.0}),
        (10, 100.5, 0, LIMITS, "TAKE_PROFIT", {"take_profit": 100.0}),
        (-10, np.nan, 40, LIMITS, "TAKE_PROFIT", {"take_profit": 101.0}),
        (10, np.nan, 0, LIMITS, "", {"stop_loss": 95.0, "take_profit": 110.0}),
    ],
)
def test_check_orders_applies_the_limits_to_manual_orders(
    quantity, limit, held, limits, rule, legs
):
    orders = pd.DataFrame(
        {"symbol": ["XYZ"], "quantity": [quantity], "limit_price": [limit], **legs}
    )
    positions = pd.DataFrame({"symbol": ["XYZ"], "quantity": [float(held)]})
    row = check_orders(orders, positions, ACCOUNT, limits, quotes=QUOTE).iloc[0]
    assert row["rule"] == rule
    assert row["reason"].startswith(rule)


def test_an_unknown_symbol_is_rejected_before_it_takes_a_place_in_the_batch():
    rows = [decision(ticker=t, confidence=c) for t, c in [("ZZZZ", 90), ("AAA", 60), ("BBB", 50)]]
    limits = replace(LIMITS, max_orders_per_batch=2)
    out = plan(rows, limits=limits, tradable=["AAA", "BBB"]).set_index("symbol")
    assert (
        out.loc["ZZZZ", "reason"].startswith("UNKNOWN_SYMBOL") and out.loc["ZZZZ", "quantity"] == 0
    )
    assert list(out.loc[["AAA", "BBB"], "status"]) == ["planned", "planned"]


def test_raw_bad_rows_are_rejected_rows_in_place():
    rows = [
        decision(ticker="AAA"),
        {**decision(ticker="BBB"), "confidence": "high"},
        {"ticker": "CCC"},
        decision(ticker="DDD"),
    ]
    out = plan(rows)
    assert out["symbol"].tolist() == ["AAA", "BBB", "CCC", "DDD"]
    assert out["status"].tolist() == ["planned", "rejected", "rejected", "planned"]
    assert out["reason"].iloc[1] == "DECISION: confidence is not a number"
    assert out["reason"].iloc[2].startswith("DECISION: missing decision_id; missing decision")
    assert (out["quantity"].iloc[[1, 2]] == 0).all()
    assert list(out.columns) == PLAN_COLUMNS


# -- properties ----------------------------------------------------------------------------

SYMS = ["AAA", "BBB", "CCC", "DDD"]


@settings(max_examples=150)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(SYMS),
            st.sampled_from(["BUY", "SELL", "HOLD"]),
            st.floats(0, 100),
            st.floats(0.5, 5_000),
            st.one_of(st.none(), st.floats(0.01, 0.5)),  # stop distance as a fraction
        ),
        max_size=10,
    ),
    held=st.dictionaries(st.sampled_from(SYMS), st.integers(-2_000, 2_000), max_size=4),
    moves=st.dictionaries(st.sampled_from(SYMS), st.floats(-0.05, 0.05), max_size=4),
    state=st.sampled_from(list(TradingState)),
    allow_short=st.booleans(),
    per_batch=st.integers(1, 5),
    batch_notional=st.floats(1_000, 1e6),
)
def test_plan_rules_hold_for_any_batch(
    rows, held, moves, state, allow_short, per_batch, batch_notional
):
    frame = pd.DataFrame(
        [
            decision(
                action,
                price,
                conf,
                ticker=sym,
                decision_id=f"d{i}",
                stop_loss=np.nan
                if dist is None or action == "HOLD"
                else price * (1 - dist if action == "BUY" else 1 + dist),
            )
            for i, (sym, action, conf, price, dist) in enumerate(rows)
        ],
        columns=list(decision()),
    )
    positions = pd.DataFrame({"symbol": list(held), "quantity": [float(q) for q in held.values()]})
    last = {r[0]: r[3] * (1 + moves.get(r[0], 0.0)) for r in rows}
    quotes = pd.DataFrame({"symbol": list(last), "last": list(last.values())})
    limits = replace(
        LIMITS,
        trading_state=state,
        allow_short=allow_short,
        max_orders_per_batch=per_batch,
        max_batch_notional=batch_notional,
    )
    out = plan_orders(frame, positions, ACCOUNT, limits, quotes=quotes, today=TODAY)
    assert len(out) == len(rows)
    planned = out[out["status"] == "planned"]
    assert len(planned) <= per_batch and planned["notional"].sum() <= batch_notional + 1e-6
    assert planned["symbol"].is_unique  # one order per symbol: later decisions supersede
    assert (planned["action"] == planned["decision"]).all()
    assert ((planned["quantity"] > 0) == (planned["action"] == "BUY")).all()
    assert (out.loc[out["decision"] == "HOLD", "status"] == "hold").all()
    assert (out.loc[out["status"] != "planned", "quantity"] == 0).all()
    before, after = planned["position_before"], planned["position_after"]
    if state == TradingState.HALTED:
        assert planned.empty
    if state == TradingState.REDUCING:
        assert (after.abs() <= before.abs()).all() and (after * before >= 0).all()
    if not allow_short:
        assert ((after >= 0) | (after >= before)).all()
    sells = planned[planned["action"] == "SELL"]
    assert ((sells["position_before"] <= 0) | (sells["position_after"] >= 0)).all()  # no flip
    slipped = (planned["reference_price"] / planned["limit_price"] - 1).abs()
    assert (slipped <= 0.01).all()  # marketable, within the collar of the quote
