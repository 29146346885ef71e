"""Decision evaluation: entry without look-ahead, forward returns, hit rate, deciles,
calibration, Brier score and simulated P&L; every row that cannot be evaluated says why."""

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import CLOCK

from ibkr_nb.commissions import stock_commission
from ibkr_nb.evaluation import (
    FORWARD_COLUMNS,
    Evaluation,
    brier_score,
    calibration,
    evaluate,
    forward_returns,
    hit_rate,
    returns_by_decile,
    simulated_pnl,
)
from ibkr_nb.sizing import base_quantity

NY = ZoneInfo("America/New_York")
# Two weeks around Independence Day 2024 (Thursday 4 July is no session), 4 symbols' closes.
SESSIONS = [
    date(2024, 7, 1),
    date(2024, 7, 2),
    date(2024, 7, 3),
    date(2024, 7, 5),
    date(2024, 7, 8),
    date(2024, 7, 9),
    date(2024, 7, 10),
]


def make_bars(closes: dict[str, list[float | None]], sessions=SESSIONS) -> pd.DataFrame:
    """Long bars frame; a None close is no bar at all for that symbol and session."""
    rows = [
        {
            "symbol": s,
            "date": pd.Timestamp(d, tz=NY),
            "open": c,
            "high": c,
            "low": c,
            "close": c,
            "volume": 100,
        }
        for s, values in closes.items()
        for d, c in zip(sessions, values, strict=True)
        if c is not None
    ]
    return pd.DataFrame(rows)


BARS = make_bars(
    {
        "AAA": [100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 106.0],
        "BBB": [50.0, 50.0, 40.0, 40.0, 45.0, 60.0, 30.0],
        "GAP": [10.0, 11.0, None, 13.0, 14.0, None, 16.0],
    }
)


def decisions(rows) -> pd.DataFrame:
    """rows: (ticker, decision, confidence, created_at as New York wall time text)."""
    return pd.DataFrame(
        {
            "decision_id": [f"d{i}" for i in range(len(rows))],
            "ticker": [r[0] for r in rows],
            "decision": [r[1] for r in rows],
            "confidence": [float(r[2]) for r in rows],
            "current_price": 100.0,
            "stop_loss": np.nan,
            "take_profit": np.nan,
            "reasoning": "test",
            "created_at": pd.to_datetime([r[3] for r in rows], format="ISO8601")
            .tz_localize(NY)
            .tz_convert("UTC"),
        }
    )


def one_horizon(frame: pd.DataFrame, h: int) -> pd.DataFrame:
    return frame[frame["horizon"] == h].reset_index(drop=True)


# --------------------------------------------------------------------------- entry session


def test_entry_is_the_first_close_at_or_after_created_at():
    made = decisions(
        [
            ("AAA", "BUY", 60, "2024-07-02 09:00"),  # before the open: that day's close
            ("AAA", "BUY", 60, "2024-07-02 15:59:59"),  # during the session: that day
            ("AAA", "BUY", 60, "2024-07-02 16:00:00"),  # at the close: that close
            ("AAA", "BUY", 60, "2024-07-02 16:00:01"),  # after the close: next session
            ("AAA", "BUY", 60, "2024-07-03 20:00"),  # evening before a holiday: 5 July
            ("AAA", "BUY", 60, "2024-07-04 12:00"),  # on the holiday: 5 July
            ("AAA", "BUY", 60, "2024-07-06 12:00"),  # Saturday: Monday
        ]
    )
    got = one_horizon(forward_returns(made, BARS, horizons=[1]), 1)
    assert got["entry_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-07-02",
        "2024-07-02",
        "2024-07-02",
        "2024-07-03",
        "2024-07-05",
        "2024-07-05",
        "2024-07-08",
    ]
    assert got["entry_close"].tolist() == [101.0, 101.0, 101.0, 102.0, 103.0, 103.0, 104.0]
    assert got["exit_date"].dt.strftime("%Y-%m-%d").tolist()[3:5] == ["2024-07-05", "2024-07-08"]


def test_the_close_is_16_new_york_time_in_winter_and_summer():
    winter = [date(2024, 1, 2), date(2024, 1, 3)]  # EST: 16:00 = 21:00 UTC
    summer = [date(2024, 7, 1), date(2024, 7, 2)]  # EDT: 16:00 = 20:00 UTC
    bars = pd.concat(
        [make_bars({"AAA": [1.0, 2.0]}, winter), make_bars({"AAA": [3.0, 4.0]}, summer)]
    )
    made = decisions([("AAA", "BUY", 50, None)] * 4)
    made["created_at"] = pd.to_datetime(
        ["2024-01-02 20:59Z", "2024-01-02 21:01Z", "2024-07-01 19:59Z", "2024-07-01 20:01Z"],
        utc=True,
    )
    got = forward_returns(made, bars, horizons=[1])
    assert got["entry_close"].tolist() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    "convert",
    [
        lambda d: d,  # midnight New York, as the session gives them
        lambda d: d.dt.tz_localize(None),  # naive timestamps
        lambda d: d.dt.tz_convert("UTC").dt.normalize(),  # midnight UTC of the same date
        lambda d: pd.Series([t.date() for t in d], dtype=object),  # datetime.date
        lambda d: d.dt.strftime("%Y-%m-%d"),  # text
    ],
)
def test_bar_dates_in_any_common_form(convert):
    made = decisions(
        [("AAA", "BUY", 60, "2024-07-03 20:00"), ("GAP", "SELL", 70, "2024-07-01 10:00")]
    )
    expected = forward_returns(made, BARS)
    bars = BARS.assign(date=convert(BARS["date"]))
    pd.testing.assert_frame_equal(forward_returns(made, bars), expected)


# --------------------------------------------------------------------------- returns and reasons


def test_forward_returns_sell_hold_and_a_flat_move():
    made = decisions(
        [
            ("AAA", "BUY", 80, "2024-07-01 10:00"),
            ("BBB", "SELL", 70, "2024-07-01 10:00"),
            ("BBB", "HOLD", 90, "2024-07-01 10:00"),
            ("bbb", "buy", 55, "2024-07-02 10:00"),  # case-insensitive; 50 -> 40 ... 50 -> 50 flat
        ]
    )
    got = forward_returns(made, BARS, horizons=[1, 5])
    assert list(got.columns) == FORWARD_COLUMNS
    assert got["horizon"].tolist() == [1, 5] * 4
    assert got["exit_close"].tolist() == [101.0, 105.0, 50.0, 60.0, 50.0, 60.0, 40.0, 30.0]
    np.testing.assert_allclose(
        got["return"], [0.01, 0.05, 0.0, 0.2, 0.0, 0.2, -0.2, -0.4], rtol=1e-12
    )
    np.testing.assert_allclose(
        got["directional_return"],
        [0.01, 0.05, -0.0, -0.2, np.nan, np.nan, -0.2, -0.4],
        rtol=1e-12,
    )
    # A flat move is a miss; a HOLD has no hit.
    assert got["hit"].tolist() == [True, True, False, False, pd.NA, pd.NA, False, False]
    assert got["decision"].tolist()[6] == "BUY"
    assert (got["reason"] == "").all()


def test_rows_that_cannot_be_evaluated_say_why():
    bars = BARS.copy()
    bars.loc[(bars["symbol"] == "BBB") & (bars["close"] == 60.0), "close"] = np.nan  # 9 July
    nameless = bars[bars["symbol"] == "AAA"].assign(symbol=None)  # no symbol: no one's bars
    bars = pd.concat([bars, nameless, nameless], ignore_index=True)
    made = decisions(
        [
            ("AAA", "BUY", 60, "2024-07-08 10:00"),  # 1 ok, 5 beyond the bars
            ("GAP", "BUY", 60, "2024-07-03 10:00"),  # no GAP bar at entry (3 July)
            ("GAP", "BUY", 60, "2024-07-05 10:00"),  # entry 5 July, exit 1 (8th) ok, 5: none
            ("GAP", "BUY", 60, "2024-07-08 10:00"),  # exit 1 session later: 9 July, a gap
            ("BBB", "SELL", 60, "2024-07-08 10:00"),  # exit at a NaN close
            ("ZZZ", "BUY", 60, "2024-07-02 10:00"),
            ("AAA", "BUY", 60, "2024-06-28 10:00"),  # before the first session
            ("AAA", "BUY", 60, "2024-07-10 16:00:01"),  # after the last close
            ("AAA", "WAIT", 60, "2024-07-02 10:00"),
            ("AAA", "BUY", 101, "2024-07-02 10:00"),
            ("AAA", "BUY", 60, None),
        ]
    )
    made.loc[9, "confidence"] = np.nan
    got = forward_returns(made, bars, horizons=[1, 5])
    assert got["reason"].tolist() == [
        "",
        "the bars end before this horizon",
        "no bar for this ticker at the entry session",
        "no bar for this ticker at the entry session",
        "",
        "the bars end before this horizon",
        "no bar for this ticker at the exit session",
        "the bars end before this horizon",
        "no bar for this ticker at the exit session",
        "the bars end before this horizon",
        "no bars for this ticker",
        "no bars for this ticker",
        "created_at is before the first session in the bars",
        "created_at is before the first session in the bars",
        "no session in the bars has closed at or after created_at",
        "no session in the bars has closed at or after created_at",
        "decision is not BUY, SELL or HOLD",
        "decision is not BUY, SELL or HOLD",
        "confidence is not a number in 0-100",
        "confidence is not a number in 0-100",
        "created_at is missing",
        "created_at is missing",
    ]
    bad = got["reason"] != ""
    assert got.loc[bad, ["return", "directional_return", "exit_close"]].isna().all().all()
    assert got.loc[bad, "hit"].isna().all()
    assert got.loc[~bad, ["return", "exit_close", "entry_close"]].notna().all().all()
    # The entry is kept when only the exit is missing.
    assert got.loc[1, "entry_close"] == 104.0 and got.loc[1, "exit_date"] is pd.NaT


def test_a_session_that_has_not_closed_by_as_of_is_not_used():
    made = decisions(
        [("AAA", "BUY", 60, "2024-07-09 10:00"), ("AAA", "BUY", 60, "2024-07-10 10:00")]
    )
    # At 11:00 on 10 July the day's bar is still moving: 9 July has no exit yet, 10 July no entry.
    as_of = pd.Timestamp("2024-07-10 11:00", tz=NY)
    got = forward_returns(made, BARS, horizons=[1], as_of=as_of)
    assert got["reason"].tolist() == [
        "the bars end before this horizon",
        "no session in the bars has closed at or after created_at",
    ]
    after_close = forward_returns(made, BARS, horizons=[1], as_of=as_of + pd.Timedelta(hours=5))
    assert after_close["reason"].tolist() == ["", "the bars end before this horizon"]
    assert after_close["exit_close"].iloc[0] == 106.0
    nothing_closed = forward_returns(made, BARS, horizons=[1], as_of="2024-06-30 12:00Z")
    assert set(nothing_closed["reason"]) == {
        "no session in the bars has closed at or after created_at"
    }
    with pytest.raises(ValueError, match="as_of must be tz-aware"):
        forward_returns(made, BARS, as_of="2024-07-10 11:00")


def test_empty_inputs_give_empty_or_unevaluated_frames():
    blank = decisions([("AAA", "BUY", 60, "2024-07-02 10:00")] * 2)
    blank[["ticker", "decision"]] = None
    assert forward_returns(blank, BARS)["reason"].tolist() == (
        ["decision is not BUY, SELL or HOLD"] * 6
    )
    assert forward_returns(decisions([]), BARS).empty
    made = decisions([("AAA", "BUY", 60, "2024-07-02 10:00")])
    got = forward_returns(made, BARS.iloc[:0])
    assert (got["reason"] == "no bars for this ticker").all()
    result = evaluate(decisions([]), BARS)
    assert result.hit_rate["evaluated"].sum() == 0


def test_bad_inputs_raise_clear_errors():
    made = decisions([("AAA", "BUY", 60, "2024-07-02 10:00")])
    with pytest.raises(ValueError, match="decisions frame lacks the column.*created_at"):
        forward_returns(made.drop(columns="created_at"), BARS)
    with pytest.raises(ValueError, match="bars frame lacks the column.*close"):
        forward_returns(made, BARS.drop(columns="close"))
    with pytest.raises(ValueError, match="must be tz-aware"):
        forward_returns(made.assign(created_at=made["created_at"].dt.tz_localize(None)), BARS)
    with pytest.raises(ValueError, match="duplicate.*AAA on 2024-07-01"):
        forward_returns(made, pd.concat([BARS, BARS.iloc[:1]]))
    with pytest.raises(ValueError, match="missing 'date'"):
        forward_returns(made, BARS.assign(date=BARS["date"].where(BARS.index != 3)))
    with pytest.raises(ValueError, match="bars 'date' must be dates"):
        forward_returns(made, BARS.assign(date="soon"))
    for horizons in ([], [0], [1, 1], [2.5], [True]):
        with pytest.raises(ValueError, match="horizons must be"):
            forward_returns(made, BARS, horizons=horizons)
    with pytest.raises(ValueError, match="buckets must be"):
        calibration(forward_returns(made, BARS), buckets=0)


# --------------------------------------------------------------------------- summaries


@pytest.fixture(scope="module")
def scored():
    # Horizon 1 from 1 July: AAA +1 %, BBB 0 %. Directional: BUY AAA hit, SELL BBB miss (flat),
    # BUY AAA hit, SELL AAA miss (-1 %), HOLD left out, and one BUY that cannot be evaluated.
    made = decisions(
        [
            ("AAA", "BUY", 95, "2024-07-01 10:00"),
            ("BBB", "SELL", 15, "2024-07-01 10:00"),
            ("AAA", "BUY", 100, "2024-07-01 10:00"),
            ("AAA", "SELL", 12, "2024-07-01 10:00"),
            ("AAA", "HOLD", 50, "2024-07-01 10:00"),
            ("ZZZ", "BUY", 50, "2024-07-01 10:00"),
        ]
    )
    return forward_returns(made, BARS, horizons=[1])


def test_hit_rate(scored):
    got = hit_rate(scored).set_index("decision")
    assert got.loc["BUY", ["decisions", "evaluated", "hits"]].tolist() == [3, 2, 2]
    assert got.loc["SELL", ["decisions", "evaluated", "hits"]].tolist() == [2, 2, 0]
    assert got.loc["all", ["decisions", "evaluated", "hits"]].tolist() == [5, 4, 2]
    assert got["hit_rate"].tolist() == [1.0, 0.0, 0.5]
    assert got.loc["all", "mean_return"] == pytest.approx((0.01 + 0.0 + 0.01 - 0.01) / 4)


def test_returns_by_decile(scored):
    got = returns_by_decile(scored).set_index("decile")
    assert got.index.tolist() == list(range(10))
    assert got["evaluated"].tolist() == [0, 2, 0, 0, 0, 0, 0, 0, 0, 2]  # 100 is in the top decile
    assert got.loc[1, "mean_return"] == pytest.approx((-0.0 - 0.01) / 2)
    assert got.loc[9, ["mean_return", "hit_rate", "mean_confidence"]].tolist() == pytest.approx(
        [0.01, 1.0, 97.5]
    )
    assert got.loc[[1, 9], ["confidence_low", "confidence_high"]].to_numpy().tolist() == [
        [10.0, 20.0],
        [90.0, 100.0],
    ]
    assert np.isnan(got.loc[0, "mean_return"])


def test_calibration_and_brier(scored):
    got = calibration(scored, buckets=2)
    assert got["evaluated"].tolist() == [2, 2]
    assert got["stated"].tolist() == pytest.approx([0.135, 0.975])
    assert got["observed"].tolist() == [0.0, 1.0]
    assert got["gap"].tolist() == pytest.approx([-0.135, 0.025])
    brier = brier_score(scored).iloc[0]
    expected = (0.05**2 + 0.15**2 + 0.0**2 + 0.12**2) / 4
    assert brier["evaluated"] == 4
    assert brier["brier"] == pytest.approx(expected)
    assert brier["base_rate"] == 0.5
    assert brier["brier_reference"] == 0.25
    assert brier["skill"] == pytest.approx(1 - expected / 0.25)


def test_simulated_pnl():
    made = decisions(
        [
            ("AAA", "BUY", 80, "2024-07-01 10:00"),  # 10,000 / 100 x 0.8 = 80 shares
            ("BBB", "SELL", 50, "2024-07-02 10:00"),  # 50 shares short at 50, covered at 40
            ("AAA", "HOLD", 90, "2024-07-01 10:00"),
            ("AAA", "BUY", 0.4, "2024-07-01 10:00"),  # floor(0.4) = 0 -> at least 1 share
            ("AAA", "BUY", 60, "2024-07-10 10:00"),  # beyond the bars
        ]
    )
    made.loc[1, "current_price"] = 100.0
    pnl = simulated_pnl(forward_returns(made, BARS, horizons=[2]), max_position_size=10_000.0)
    assert pnl["quantity"].tolist() == [80, -50, 0, 1, 0]
    # AAA 100 -> 102; BBB 50 (2 July) -> 40 (5 July)
    assert pnl["gross_pnl"].tolist()[:4] == [160.0, 500.0, 0.0, 2.0]
    # $1 minimum per leg, within the 1 % cap (1 share at 100 and 102).
    assert pnl["commission"].tolist()[:4] == [2.0, 2.0, 0.0, 2.0]
    assert pnl["net_pnl"].tolist()[:4] == [158.0, 498.0, 0.0, 0.0]
    assert pnl.loc[4, "reason"] == "the bars end before this horizon"
    assert pnl.loc[4, ["gross_pnl", "commission", "net_pnl"]].isna().all()


def test_simulated_pnl_refuses_to_size_without_a_price():
    made = decisions([("AAA", "BUY", 80, "2024-07-01 10:00")])
    made["current_price"] = np.nan
    pnl = simulated_pnl(forward_returns(made, BARS, horizons=[1]))
    assert pnl.loc[0, "reason"] == "current_price is not usable for sizing"
    assert pnl.loc[0, "quantity"] == 0 and np.isnan(pnl.loc[0, "net_pnl"])


def test_evaluate_bundles_every_table():
    made = decisions(
        [("AAA", "BUY", 80, "2024-07-01 10:00"), ("BBB", "SELL", 30, "2024-07-01 10:00")]
    )
    result = evaluate(made, BARS, horizons=[1, 2])
    assert isinstance(result, Evaluation)
    pd.testing.assert_frame_equal(result.forward, forward_returns(made, BARS, horizons=[1, 2]))
    pd.testing.assert_frame_equal(result.pnl, simulated_pnl(result.forward))
    assert result.pnl_totals["horizon"].tolist() == [1, 2]
    assert result.pnl_totals["trades"].tolist() == [2, 2]
    # Horizon 2: 80 AAA bought at 100, sold at 102; 30 BBB shorted at 50, covered at 40.
    h2 = result.pnl_totals.iloc[1]
    assert h2["gross_pnl"] == 160.0 + 300.0
    assert h2["commission"] == 4 * 1.0
    assert h2["winners"] == 2
    assert result.brier["horizon"].tolist() == [1, 2]
    assert len(result.by_decile) == 20 and len(result.calibration) == 20


# --------------------------------------------------------------------------- sizing


def test_base_quantity_figures():
    assert base_quantity(100.0, 80, 10_000.0) == 80
    assert base_quantity(333.0, 100, 10_000.0) == 30
    assert base_quantity(50_000.0, 10, 10_000.0) == 1  # at least one share
    assert base_quantity(100.0, 0, 10_000.0) == 1
    got = base_quantity(
        np.array([100.0, np.nan, 0.0, -5.0, np.inf, 100.0, 100.0, 1e-300]),
        np.array([80, 80, 80, 80, 80, np.nan, 101, 100]),
    )
    assert got.tolist() == [80, 0, 0, 0, 0, 0, 0, 0]
    assert got.dtype == np.int64


@given(
    price=st.floats(0.01, 1e6, allow_nan=False),
    confidence=st.floats(0, 100, allow_nan=False),
    size=st.floats(1, 1e7, allow_nan=False),
)
def test_base_quantity_is_the_planner_formula(price, confidence, size):
    q = base_quantity(price, confidence, size)
    assert isinstance(q, int)
    assert q == max(1, int(np.floor(size / price * confidence / 100)))
    assert q >= 1


# --------------------------------------------------------------------------- properties


@st.composite
def scenarios(draw):
    """A few symbols on weekdays with a few gaps and bad closes, decisions at any time (at
    night, on weekends, before and after the bars) and a few junk decision fields."""
    n_days = draw(st.integers(1, 30))
    days = pd.bdate_range("2024-03-01", periods=n_days)  # crosses the March DST change
    symbols = ["AAA", "BBB", "CCC"][: draw(st.integers(1, 3))]
    rows = []
    for s in symbols:
        gaps = draw(st.sets(st.integers(0, n_days - 1), max_size=3))
        bad = draw(
            st.dictionaries(st.integers(0, n_days - 1), st.sampled_from([np.nan, -1.0]), max_size=2)
        )
        closes = draw(st.lists(st.floats(1, 500), min_size=n_days, max_size=n_days))
        rows += [
            {"symbol": s, "date": pd.Timestamp(d, tz=NY), "close": bad.get(k, closes[k])}
            for k, d in enumerate(days)
            if k not in gaps
        ]
    bars = pd.DataFrame(rows, columns=["symbol", "date", "close"])
    start = datetime(2024, 3, 1, tzinfo=NY)  # midnight before the first session
    span = timedelta(days=n_days * 1.4 + 2).total_seconds()  # a little past the last
    made = draw(
        st.lists(
            st.tuples(
                st.sampled_from(symbols),
                st.sampled_from(["BUY", "SELL", "HOLD", "sell"]),
                st.floats(0, 100),
                st.floats(0, span).map(lambda s: start + timedelta(seconds=s)),
            ),
            max_size=12,
        )
    )
    frame = pd.DataFrame(
        {
            "decision_id": [f"d{i}" for i in range(len(made))],
            "ticker": [m[0] for m in made],
            "decision": [m[1] for m in made],
            "confidence": [m[2] for m in made],
            "current_price": 100.0,
            "created_at": pd.DatetimeIndex([m[3] for m in made], dtype="datetime64[ns, UTC]"),
        }
    )
    junk = [
        ("ticker", "ZZZ"),
        ("decision", "??"),
        ("confidence", np.nan),
        ("created_at", pd.NaT),
        ("created_at", start - timedelta(hours=1)),  # before the first session
    ]
    for row, (column, value) in draw(
        st.lists(st.tuples(st.integers(0, 11), st.sampled_from(junk)), max_size=2)
    ):
        if row < len(frame):
            frame.loc[row, column] = value
    horizons = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True))
    return frame, bars, horizons


def _close_time(d) -> pd.Timestamp:
    return pd.Timestamp(datetime(d.year, d.month, d.day, 16, tzinfo=NY))


@settings(max_examples=150)
@given(scenarios())
def test_no_look_ahead_and_returns_match_the_bars(scenario):
    made, bars, horizons = scenario
    got = forward_returns(made, bars, horizons)
    assert len(got) == len(made) * len(horizons)
    calendar = sorted({t.date() for t in bars["date"]})
    usable = {
        (s, t.date()): c
        for s, t, c in zip(bars["symbol"], bars["date"], bars["close"], strict=True)
        if c > 0
    }
    for row in got.to_dict("records"):
        if row["reason"] == "":
            entry, h = row["entry_date"].date(), row["horizon"]
            i = calendar.index(entry)
            # The entry close is at or after the decision, and no earlier session qualifies.
            assert _close_time(entry) >= row["created_at"]
            assert i == 0 or _close_time(calendar[i - 1]) < row["created_at"]
            assert row["entry_close"] == usable[(row["ticker"].upper(), entry)]
            assert row["exit_date"].date() == calendar[i + h]
            assert row["exit_close"] == usable[(row["ticker"].upper(), calendar[i + h])]
            assert row["return"] == pytest.approx(row["exit_close"] / row["entry_close"] - 1)
            side = {"BUY": 1, "SELL": -1, "HOLD": 0}[row["decision"]]
            if side:
                assert row["directional_return"] == pytest.approx(side * row["return"])
                assert row["hit"] == (row["directional_return"] > 0)
            else:
                assert np.isnan(row["directional_return"]) and pd.isna(row["hit"])
        else:
            assert np.isnan(row["exit_close"]) and np.isnan(row["directional_return"])
            assert pd.isna(row["hit"])
            if row["reason"] == "the bars end before this horizon":
                assert calendar.index(row["entry_date"].date()) + row["horizon"] >= len(calendar)


@settings(max_examples=100)
@given(scenarios(), st.floats(0.5, 2.0))
def test_bars_before_a_decision_do_not_change_its_evaluation(scenario, factor):
    made, bars, horizons = scenario
    made = made[made["created_at"].notna()].iloc[:1]
    if made.empty:
        return
    created = made["created_at"].iloc[0]
    past = np.array([_close_time(t.date()) < created for t in bars["date"]], dtype=bool)
    changed = bars.assign(close=np.where(past, bars["close"] * factor, bars["close"]))
    pd.testing.assert_frame_equal(
        forward_returns(made, changed, horizons), forward_returns(made, bars, horizons)
    )


@settings(max_examples=100)
@given(scenarios())
def test_summaries_agree_with_the_rows(scenario):
    made, bars, horizons = scenario
    result = evaluate(made, bars, horizons)
    horizons = horizons if len(made) else []  # no rows, no horizons to summarise
    directional = result.forward[result.forward["decision"].isin(["BUY", "SELL"])]
    both = result.hit_rate[result.hit_rate["decision"] == "all"]
    assert both["evaluated"].tolist() == [
        int(directional.loc[directional["horizon"] == h, "directional_return"].notna().sum())
        for h in horizons
    ]
    assert (
        result.by_decile.groupby("horizon", sort=False)["evaluated"].sum().tolist()
        == both["evaluated"].tolist()
    )
    assert result.brier["evaluated"].tolist() == both["evaluated"].tolist()
    assert result.brier["brier"].dropna().between(0, 1).all()
    traded = result.pnl[result.pnl["net_pnl"].notna() & (result.pnl["quantity"] != 0)]
    assert (traded["quantity"].abs() >= 1).all()
    assert (np.sign(traded["quantity"]) == traded["decision"].map({"BUY": 1, "SELL": -1})).all()
    expected_fee = stock_commission(traded["quantity"], traded["entry_close"]) + stock_commission(
        traded["quantity"], traded["exit_close"]
    )
    np.testing.assert_allclose(traded["commission"], expected_fee)
    assert result.pnl_totals["trades"].sum() == len(traded)


# --------------------------------------------------------------------------- with the gateway


def test_the_sample_decisions_against_the_gateways_bars(gateway):
    """data/decisions.csv as load_decisions gives it, bars as Session.daily_bars gives them
    (dates at midnight New York), the gateway's clock as as_of: today's unfinished bar (the
    gateway's clock is 10:30 New York) is not used."""
    import ibkr_nb
    from ibkr_nb.decisions import load_decisions

    valid, rejects = load_decisions(Path(__file__).resolve().parents[1] / "data" / "decisions.csv")
    assert rejects.empty
    made = valid[valid["ticker"].isin(["AAPL", "MSFT", "NVDA"])]
    with ibkr_nb.connect(port=gateway.port, client_id=5, timeout=5) as session:
        bars = session.daily_bars(["AAPL", "MSFT", "NVDA"], "6 M")
    result = evaluate(made, bars, as_of=CLOCK)
    forward = result.forward
    assert len(forward) == 3 * len(made)
    day = bars["date"].dt.date
    assert day.max() == CLOCK.date()
    assert (forward["exit_date"].dropna().dt.date < day.max()).all()  # never today's bar
    reasons = forward.groupby([forward["created_at"].dt.date, "horizon"])["reason"].agg(set)
    # From 27 October (entered at its close) 20 sessions end at 24 November, still open.
    assert reasons[date(2026, 10, 27)].tolist() == [
        {""},
        {""},
        {"the bars end before this horizon"},
    ]
    assert (
        reasons[date(2026, 11, 24)].tolist()
        == [{"no session in the bars has closed at or after created_at"}] * 3
    )
    evaluated = forward[forward["reason"] == ""]
    for row in evaluated.head(6).to_dict("records"):
        bar = bars[(bars["symbol"] == row["ticker"]) & (day == row["exit_date"].date())]
        assert bar["close"].item() == row["exit_close"]
    assert result.pnl_totals["trades"].sum() == evaluated["decision"].isin(["BUY", "SELL"]).sum()
