"""Decisions: every bad row is a reject with its reason; every source type; engines per ticker."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ibkr_nb import decide, load_decisions, momentum_engine, plan_orders
from ibkr_nb.decisions import DECISION_COLUMNS, REJECT_COLUMNS, DecisionSourceError
from ibkr_nb.risk import RiskLimits

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
GOOD = {
    "decision_id": "d-ok",
    "ticker": "aapl",
    "decision": "buy",
    "confidence": 80,
    "current_price": 200.0,
    "stop_loss": 190.0,
    "take_profit": 220.0,
    "reasoning": "trend",
}


def row(**changes) -> dict:
    out = {**GOOD, **changes}
    return {k: v for k, v in out.items() if v is not ...}


# one bad row per case: (what is wrong, the row, words the reason must contain)
BAD_ROWS = [
    ("no decision_id", row(decision_id=...), "missing decision_id"),
    ("blank ticker", row(ticker=" "), "missing ticker"),
    ("no decision", row(decision=...), "missing decision"),
    ("no confidence", row(confidence=...), "missing confidence"),
    ("no price", row(current_price=...), "missing current_price"),
    ("NaN price", row(current_price=math.nan), "missing current_price"),
    ("inf price", row(current_price=math.inf), "current_price is infinite"),
    ("-inf price", row(current_price=-math.inf), "current_price is infinite"),
    ("negative price", row(current_price=-5.0, stop_loss=..., take_profit=...), "must be > 0"),
    ("zero price", row(current_price=0, stop_loss=..., take_profit=...), "must be > 0"),
    ("absurd price", row(current_price=1e12, stop_loss=..., take_profit=...), "absurd"),
    ("text price", row(current_price="abc"), "current_price is not a number"),
    ("confidence 101", row(confidence=101), "confidence outside 0-100"),
    ("confidence -1", row(confidence=-1), "confidence outside 0-100"),
    ("confidence inf", row(confidence=math.inf), "confidence outside 0-100"),
    ("confidence text", row(confidence="high"), "confidence is not a number"),
    ("unknown action", row(decision="SHORT"), "decision must be BUY, SELL or HOLD"),
    ("buy stop above", row(stop_loss=210.0), "stop_loss must be below current_price for a BUY"),
    ("buy target below", row(take_profit=150.0), "take_profit must be above"),
    (
        "sell stop below",
        row(decision="SELL", stop_loss=190.0, take_profit=...),
        "stop_loss must be above current_price for a SELL",
    ),
    (
        "sell target above",
        row(decision="SELL", stop_loss=..., take_profit=220.0),
        "take_profit must be below current_price for a SELL",
    ),
    ("negative stop", row(stop_loss=-1.0), "stop_loss must be > 0"),
    ("bad symbol", row(ticker="$$$"), "ticker is not a symbol"),
    ("bad date", row(created_at="yesterday-ish"), "created_at is not a date"),
]


@pytest.mark.parametrize(("case", "bad", "words"), BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_each_bad_row_is_a_reject_with_its_reason(case, bad, words):
    good = row(decision_id="d-good", ticker="MSFT")
    valid, rejects = load_decisions(pd.DataFrame([good, bad]), now=NOW)
    assert list(valid["decision_id"]) == ["d-good"], case
    assert len(rejects) == 1 and rejects["row"].iloc[0] == 2
    assert words in rejects["reason"].iloc[0], rejects["reason"].iloc[0]
    assert list(rejects.columns[: len(REJECT_COLUMNS)]) == REJECT_COLUMNS


def test_duplicate_ids_reject_every_copy_and_keep_the_rest():
    frame = pd.DataFrame([row(decision_id="x"), row(decision_id="x", ticker="MSFT"), row()])
    valid, rejects = load_decisions(frame, now=NOW)
    assert list(valid["decision_id"]) == ["d-ok"]
    assert list(rejects["row"]) == [1, 2]
    assert (rejects["reason"] == "duplicate decision_id").all()


def test_unknown_symbol_against_the_universe():
    frame = pd.DataFrame([row(), row(decision_id="d2", ticker="ZZZZ")])
    valid, rejects = load_decisions(frame, symbols=["AAPL", "msft"], now=NOW)
    assert list(valid["ticker"]) == ["AAPL"]
    assert rejects["reason"].tolist() == ["unknown symbol"]


def test_every_reason_of_a_row_is_listed():
    _, rejects = load_decisions(
        pd.DataFrame([row(confidence=500, decision="maybe", current_price=-1)]), now=NOW
    )
    reason = rejects["reason"].iloc[0]
    for words in ("confidence outside 0-100", "decision must be", "current_price must be > 0"):
        assert words in reason


def test_valid_rows_are_typed_and_normalised():
    valid, rejects = load_decisions(
        pd.DataFrame(
            [row(), row(decision_id="d2", decision="Hold", created_at="2026-11-20 10:00")]
        ),
        now=NOW,
    )
    assert rejects.empty
    assert list(valid.columns) == DECISION_COLUMNS
    assert list(valid["ticker"]) == ["AAPL", "AAPL"] and list(valid["decision"]) == ["BUY", "HOLD"]
    assert valid["confidence"].dtype == float and valid["current_price"].dtype == float
    assert str(valid["created_at"].dt.tz) == "UTC"
    assert valid["created_at"].iloc[0] == pd.Timestamp(NOW)
    assert valid["created_at"].iloc[1] == pd.Timestamp("2026-11-20 10:00", tz="UTC")


def test_any_index_is_fine():
    frame = pd.concat([pd.DataFrame([row()]), pd.DataFrame([row(decision_id="d2", confidence=-5)])])
    valid, rejects = load_decisions(frame, now=NOW)
    assert valid["decision_id"].tolist() == ["d-ok"] and rejects["row"].tolist() == [2]
    assert plan_orders(frame, None, {"NetLiquidation": 1e6}, today=NOW)["status"].tolist() == [
        "planned",
        "rejected",
    ]


def test_empty_table_gives_empty_frames():
    valid, rejects = load_decisions(pd.DataFrame(), now=NOW)
    assert valid.empty and rejects.empty


# -- sources -------------------------------------------------------------------------------

ROWS = [
    row(),
    row(decision_id="d2", ticker="MSFT", decision="SELL", stop_loss=210.0, take_profit=180.0),
    row(decision_id="d3", confidence=300),
]


def _check(valid, rejects):
    assert sorted(valid["decision_id"]) == ["d-ok", "d2"]
    assert rejects["decision_id"].astype(str).tolist() == ["d3"]
    assert "confidence outside 0-100" in rejects["reason"].iloc[0]


def test_source_dataframe_and_list():
    _check(*load_decisions(pd.DataFrame(ROWS), now=NOW))
    _check(*load_decisions(ROWS, now=NOW))


def test_source_csv(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    _check(*load_decisions(path, now=NOW))


def test_source_json_list_and_lines(tmp_path):
    listed = tmp_path / "d.json"
    listed.write_text(json.dumps(ROWS))
    _check(*load_decisions(listed, now=NOW))
    lines = tmp_path / "d.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    _check(*load_decisions(lines, now=NOW))


def test_source_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    frame = pd.DataFrame(ROWS)
    with duckdb.connect() as con:  # no pyarrow in the stack: DuckDB writes the file
        con.register("frame", frame)
        con.execute(f"COPY (SELECT * FROM frame) TO '{path}' (FORMAT parquet)")
    _check(*load_decisions(path, now=NOW))


def test_source_duckdb_file_and_connection(tmp_path):
    path = tmp_path / "d.duckdb"
    frame = pd.DataFrame(ROWS)
    with duckdb.connect(str(path)) as con:
        con.register("frame", frame)
        con.execute("CREATE TABLE ai AS SELECT * FROM frame")
    _check(*load_decisions(path, table="ai", now=NOW))
    with duckdb.connect(str(path), read_only=True) as con:
        _check(*load_decisions(con, table="ai", now=NOW))


def test_unreadable_sources_say_which(tmp_path):
    with pytest.raises(DecisionSourceError, match="does not exist"):
        load_decisions(tmp_path / "missing.csv")
    broken = tmp_path / "broken.json"
    broken.write_text("[{not json")
    with pytest.raises(DecisionSourceError, match="broken.json"):
        load_decisions(broken)
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(DecisionSourceError, match="unknown type"):
        load_decisions(tmp_path / "d.xlsx")


# -- engines -------------------------------------------------------------------------------


def test_decide_isolates_a_failing_engine_per_ticker():
    def engine(ticker):
        if ticker == "BOOM":
            raise RuntimeError("model down")
        if ticker == "SLOW":
            time.sleep(2)
        if ticker == "JUNK":
            return ["BUY"]
        if ticker == "NONE":
            return None
        if ticker == "BAD":
            return {"decision": "BUY", "confidence": 250, "current_price": 10}
        return {"decision": "BUY", "confidence": 70, "current_price": 100.0, "stop_loss": 95}

    tickers = ["AAPL", "BOOM", "SLOW", "JUNK", "NONE", "BAD", "msft"]
    valid, rejects = decide(tickers, engine, timeout=0.5, now=NOW)
    assert sorted(valid["ticker"]) == ["AAPL", "MSFT"]
    reasons = dict(zip(rejects["ticker"], rejects["reason"], strict=True))
    assert set(reasons) == {"BOOM", "SLOW", "JUNK", "NONE", "BAD"}
    assert "model down" in reasons["BOOM"]
    assert "timed out" in reasons["SLOW"]
    assert "not a dict" in reasons["JUNK"] and "not a dict" in reasons["NONE"]
    assert "confidence outside 0-100" in reasons["BAD"]
    assert valid["decision_id"].tolist() == ["AAPL-20261124T153000", "MSFT-20261124T153000"]


def bars(symbol: str, closes) -> pd.DataFrame:
    dates = pd.bdate_range("2026-10-01", periods=len(closes))
    return pd.DataFrame({"symbol": symbol, "date": dates, "close": closes})


def test_momentum_engine_is_deterministic():
    up = bars("UP", np.linspace(100, 120, 30))
    down = bars("DOWN", np.linspace(100, 80, 30))
    flat = bars("FLAT", np.full(30, 50.0))
    short = bars("NEW", np.full(5, 10.0))
    history = pd.concat([up, down, flat, short])
    first = decide(["UP", "DOWN", "FLAT", "NEW"], momentum_engine(history), now=NOW)
    again = decide(
        ["UP", "DOWN", "FLAT", "NEW"],
        momentum_engine(history.sample(frac=1, random_state=1)),
        now=NOW,
    )
    pd.testing.assert_frame_equal(first[0], again[0])
    valid = first[0].set_index("ticker")
    assert valid.loc["UP", "decision"] == "BUY" and valid.loc["UP", "stop_loss"] < 120
    assert valid.loc["UP", "take_profit"] > 120
    assert valid.loc["DOWN", "decision"] == "SELL" and valid.loc["DOWN", "stop_loss"] > 80
    assert valid.loc["FLAT", "decision"] == "HOLD"
    assert valid.loc["UP", "confidence"] == valid.loc["DOWN", "confidence"] == 95.0
    assert first[1]["ticker"].tolist() == ["NEW"] and "fewer than 21" in first[1]["reason"][0]


# -- properties ----------------------------------------------------------------------------

WILD = st.one_of(
    st.none(),
    st.just(""),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e20, max_value=1e20),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([1e300, -0.0, 5e-324, 1e-5, 0.0001, 1, 50, 100, 99.999]),
    st.text(max_size=6),
    st.sampled_from(["Ünïcødé", "株", "BUY", "sell", "hold", "AAPL", "NaN", "inf", "-1"]),
    st.lists(st.integers(), max_size=2),  # JSON can nest
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
PRICE = st.one_of(WILD, st.floats(min_value=0.0001, max_value=2e6))
RECORD = st.fixed_dictionaries(
    {
        "decision_id": st.one_of(WILD, st.sampled_from(["a", "b", "c", "d"])),
        "ticker": st.one_of(WILD, st.sampled_from(["AAPL", "MSFT", "KO", "BRK.B", "éé"])),
        "decision": st.one_of(WILD, st.sampled_from(["BUY", "SELL", "HOLD", "buy", "Sell"])),
        "confidence": st.one_of(WILD, st.floats(min_value=0, max_value=100)),
        "current_price": PRICE,
        "stop_loss": PRICE,
        "take_profit": PRICE,
        "reasoning": WILD,
        "created_at": st.one_of(WILD, st.sampled_from(["2026-11-20", "2026-11-21T10:00Z", "x"])),
    }
)
LIMITS = RiskLimits(
    max_position_size=10_000,
    max_position_pct=0.10,
    max_portfolio_risk=0.02,
    max_order_notional=50_000,
    max_order_quantity=5_000,
)


@hsettings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(RECORD, max_size=12),
    held=st.lists(
        st.tuples(
            st.sampled_from(["AAPL", "MSFT", "KO", "BRK.B"]),
            st.integers(min_value=-3_000, max_value=3_000),
        ),
        max_size=4,
    ),
    nav=st.floats(min_value=1_000, max_value=1e9),
    funds_share=st.floats(min_value=0, max_value=2),
)
def test_random_tables_never_raise_and_never_plan_a_bad_order(records, held, nav, funds_share):
    valid, rejects = load_decisions(pd.DataFrame(records), now=NOW)
    assert len(valid) + len(rejects) == len(records)
    assert valid["current_price"].gt(0).all() and np.isfinite(valid["current_price"]).all()
    assert valid["confidence"].between(0, 100).all()
    positions = pd.DataFrame(held, columns=["symbol", "quantity"])
    account = {"NetLiquidation": nav, "AvailableFunds": nav * funds_share}
    plan = plan_orders(pd.DataFrame(records), positions, account, LIMITS, today=NOW)  # raw
    assert len(plan) == len(records)
    assert (plan.iloc[rejects["row"] - 1]["reason"].str.startswith("DECISION: ")).all()
    assert plan_orders(valid, positions, account, LIMITS, today=NOW)["status"].tolist() == (
        plan.drop(index=rejects["row"] - 1)["status"].tolist()
    )
    planned = plan[plan["status"] == "planned"]
    assert (planned["quantity"] != 0).all()
    assert (planned["quantity"].abs() <= LIMITS.max_order_quantity).all()
    assert (planned["notional"] <= LIMITS.max_order_notional + 1e-6).all()
    assert (planned["limit_price"] > 0).all() and np.isfinite(planned["limit_price"]).all()
    assert planned["notional"].sum() <= LIMITS.max_batch_notional + 1e-6
    opens = planned[planned["position_after"].abs() > planned["position_before"].abs()]
    grown = opens[np.sign(opens["position_after"]) == np.sign(opens["quantity"])]
    exposure = grown["position_after"].abs() * grown["reference_price"]
    assert (exposure <= LIMITS.max_position_pct * nav * (1 + 1e-9)).all()
    risk = planned["risk_to_stop"].fillna(0)
    assert (risk <= LIMITS.max_portfolio_risk * nav * (1 + 1e-9)).all()
    assert (plan.loc[plan["status"] == "rejected", "reason"] != "").all()
