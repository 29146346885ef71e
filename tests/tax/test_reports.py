"""Form 8949, Schedule D, file writers, figures and the IBKR reconciliation."""

from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ibkr_nb.tax.importers import load_trades
from ibkr_nb.tax.lots import match_lots
from ibkr_nb.tax.reports import (
    escape_formula,
    form_8949,
    reconcile_ibkr,
    schedule_d,
    write_csv,
    write_duckdb,
    write_excel,
)

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


@pytest.fixture(scope="module")
def sample():
    return match_lots(load_trades(SAMPLES / "trades.csv").trades)


def test_form_8949_rows_for_the_sample_year(sample, t):
    # data/samples/trades.csv, 2024. The AAPL 10 shares sold 2024-01-16 at a $46.00 loss are
    # washed by the 2024-02-05 purchase; 10 of those shares are long-term by 2024-12-20
    # because the 62-day holding period of the shares sold is tacked on.
    rows = form_8949(sample, 2024)
    got = t.text(
        rows,
        [
            "description",
            "date_acquired",
            "date_sold",
            "proceeds",
            "cost_basis",
            "adjustment_code",
            "adjustment_amount",
            "gain_loss",
            "term",
            "box",
        ],
    )
    want = pd.DataFrame(
        [
            [
                "50 sh AAPL",
                "2023-03-01",
                "2024-01-16",
                "9176.65",
                "7261.00",
                "-",
                "0.00",
                "1915.65",
                "short",
                "A",
            ],
            [
                "10 sh AAPL",
                "2023-11-15",
                "2024-01-16",
                "1835.33",
                "1881.33",
                "W",
                "46.00",
                "0.00",
                "short",
                "A",
            ],
            [
                "20 sh AAPL",
                "2023-11-15",
                "2024-12-20",
                "4999.50",
                "3762.67",
                "-",
                "0.00",
                "1236.83",
                "long",
                "D",
            ],
            [
                "10 sh AAPL",
                "2024-02-05",
                "2024-12-20",
                "2499.75",
                "1856.50",
                "-",
                "0.00",
                "643.25",
                "long",
                "D",
            ],
            [
                "10 sh AAPL",
                "2024-02-05",
                "2024-12-20",
                "2499.75",
                "1810.50",
                "-",
                "0.00",
                "689.25",
                "short",
                "A",
            ],
            [
                "40 sh TSLA",
                "2024-01-08",
                "2024-02-20",
                "7999.30",
                "9843.00",
                "-",
                "0.00",
                "-1843.70",
                "short",
                "A",
            ],
            [
                "20 sh TSLA (short sale)",
                "2024-03-01",
                "2024-03-01",
                "3999.65",
                "3801.00",
                "-",
                "0.00",
                "198.65",
                "short",
                "A",
            ],
            [
                "25 sh MSFT (short sale)",
                "2024-03-28",
                "2024-03-28",
                "10386.50",
                "10526.00",
                "W",
                "55.80",
                "-83.70",
                "short",
                "A",
            ],
            [
                "10 sh MSFT (short sale)",
                "2024-05-15",
                "2024-05-15",
                "4239.00",
                "4156.80",
                "-",
                "0.00",
                "82.20",
                "short",
                "A",
            ],
            [
                "50 sh NVDA",
                "2024-05-01",
                "2024-07-01",
                "6199.00",
                "4250.50",
                "-",
                "0.00",
                "1948.50",
                "short",
                "A",
            ],
            [
                "1.25 sh VOO",
                "2024-08-01",
                "2024-09-03",
                "624.65",
                "600.30",
                "-",
                "0.00",
                "24.35",
                "short",
                "A",
            ],
        ],
        columns=got.columns,
        dtype=object,
    )
    pd.testing.assert_frame_equal(got, want)
    # 2023: the TSLA loss washed across the year end by the 2024-01-08 purchase.
    assert form_8949(sample, 2023)[
        ["description", "adjustment_code", "adjustment_amount", "gain_loss"]
    ].values.tolist() == [["40 sh TSLA", "W", 242.0, 0.0]]


def test_form_8949_rounds_each_figure_to_cents_and_rows_add_up(sample):
    rows = form_8949(sample, 2024)
    for c in ("proceeds", "cost_basis", "adjustment_amount", "gain_loss"):
        assert ((rows[c] * 100).round(6) % 1 == 0).all()
    assert (
        (
            rows["proceeds"] - rows["cost_basis"] + rows["adjustment_amount"] - rows["gain_loss"]
        ).abs()
        < 1e-9
    ).all()
    assert set(form_8949(sample, 2024, basis_reported=False)["box"]) == {"B", "E"}


def test_schedule_d_totals(sample, t):
    got = t.text(
        schedule_d(sample, 2024),
        ["term", "box", "line", "proceeds", "cost_basis", "adjustment_amount", "gain_loss"],
    )
    want = t.table(
        """
        term  box line proceeds cost_basis adjustment_amount gain_loss
        short A   1b   46959.83 44130.43   101.80            2931.20
        short all 7    46959.83 44130.43   101.80            2931.20
        long  D   8b   7499.25  5619.17    0.00              1880.08
        long  all 15   7499.25  5619.17    0.00              1880.08
        """
    )
    pd.testing.assert_frame_equal(got, want)


def test_writers_csv_excel_duckdb(sample, tmp_path):
    tables = {"form8949": form_8949(sample, 2024), "schedule_d": schedule_d(sample, 2024)}
    paths = write_csv(tables, tmp_path)
    assert [p.name for p in paths] == ["form8949.csv", "schedule_d.csv"]
    back = pd.read_csv(tmp_path / "form8949.csv", keep_default_na=False)
    assert back["date_sold"].iloc[0] == "2024-01-16" and back["gain_loss"].sum() == pytest.approx(
        4811.28
    )

    write_excel(tables, tmp_path / "tax.xlsx")
    sheets = pd.read_excel(tmp_path / "tax.xlsx", sheet_name=None)
    assert list(sheets) == ["form8949", "schedule_d"] and len(sheets["form8949"]) == 11

    write_duckdb(tables, tmp_path / "tax.duckdb")
    write_duckdb(tables, tmp_path / "tax.duckdb")  # replaces, does not append
    con = duckdb.connect(str(tmp_path / "tax.duckdb"))
    assert con.execute("select count(*), round(sum(gain_loss), 2) from form8949").fetchone() == (
        11,
        4811.28,
    )
    con.close()


@pytest.mark.parametrize("name", ["flex_trades.xml", "activity_statement.csv"])
def test_reconcile_ibkr_samples_match(name):
    statement = load_trades(SAMPLES / name)
    report = reconcile_ibkr(match_lots(statement.trades), statement)
    assert set(report["level"]) == {"trade", "lot"}
    assert (report["status"] == "match").all(), report[report["status"] != "match"].to_string()


def test_reconcile_lists_every_difference():
    statement = load_trades(SAMPLES / "flex_trades.xml")
    realized = statement.ibkr_realized.copy()
    realized.loc[realized["trade_id"] == "600000685", "realized_pnl"] += 0.05  # IBKR off by 5 cents
    realized = pd.concat(
        [realized, pd.DataFrame([{"trade_id": "999", "symbol": "ZZZ", "realized_pnl": 10.0}])],
        ignore_index=True,
    )
    lots = statement.ibkr_closed_lots[statement.ibkr_closed_lots["trade_id"] != "600000411"]
    report = reconcile_ibkr(
        match_lots(statement.trades),
        replace(statement, ibkr_realized=realized, ibkr_closed_lots=lots),
    )
    diffs = report[report["status"] != "match"]
    assert diffs[["level", "trade_id", "status"]].values.tolist() == [
        ["trade", "600000685", "differs"],
        ["trade", "999", "missing_in_ours"],
    ]
    assert diffs["difference"].iloc[0] == pytest.approx(-0.05, abs=1e-5)  # IBKR gives 6 decimals


def test_reconcile_needs_fifo(sample):
    statement = load_trades(SAMPLES / "flex_trades.xml")
    with pytest.raises(ValueError, match="method='fifo'"):
        reconcile_ibkr(match_lots(statement.trades, method="lifo"), statement)


_CELL_TEXT = st.text(alphabet=st.sampled_from('ab ,"\r\n\t=+-@é'), max_size=6)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.none(), _CELL_TEXT),
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-(2**62), 2**62),
            st.booleans(),
            st.one_of(st.none(), st.integers(-30_000, 80_000)),
        ),
        max_size=12,
    ),
    chunk=st.sampled_from([1, 3, 200_000]),
)
def test_csv_writer_gives_the_bytes_of_to_csv(rows, chunk, tmp_path, monkeypatch):
    """write_csv formats columns itself (for speed); the file is byte for byte what pandas
    writes, once dates are YYYY-MM-DD and formula-like text is escaped (as the writer does)."""
    monkeypatch.setattr("ibkr_nb.tax.reports.CSV_CHUNK_ROWS", chunk)
    rows = [*rows, ("", 0.0, 0, False, 0), ("=", -0.0, -1, True, None)]  # 0.0 beside -0.0
    text, number, count, flag, day = zip(*rows, strict=True)
    frame = pd.DataFrame(
        {
            "text, with comma": pd.array(text, dtype="str"),
            "number": pd.array(number, dtype=float),
            "count": pd.array(count, dtype="int64"),
            "flag": pd.array(flag, dtype=bool),
            "day": pd.to_datetime([None if d is None else d for d in day], unit="D"),
        }
    )
    write_csv({"t": frame}, tmp_path)
    expected = frame.assign(
        **{"text, with comma": frame["text, with comma"].map(escape_formula)}
    ).to_csv(index=False, date_format="%Y-%m-%d")
    assert (tmp_path / "t.csv").read_bytes() == expected.encode()
