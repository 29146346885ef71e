"""Tax reports from a `LotResult`: Form 8949 rows, Schedule D totals, files, and a
reconciliation with IBKR's own realized P&L (the figures are in `ibkr_nb.plots`).

Money stays at full precision in the engine; Form 8949 figures are rounded to cents here
(half away from zero), and `gain_loss` on a form row is recomputed from the rounded
columns so every row adds up as printed: gain = proceeds - cost basis + adjustment.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ibkr_nb.tax.lots import LotResult, match_lots
from ibkr_nb.tax.trades import ImportResult, per_unique

FORM_8949_COLUMNS = [
    "description",
    "symbol",
    "quantity",
    "date_acquired",
    "date_sold",
    "proceeds",
    "cost_basis",
    "adjustment_code",
    "adjustment_amount",
    "gain_loss",
    "term",
    "box",
]
SCHEDULE_D_COLUMNS = [
    "term",
    "box",
    "line",
    "proceeds",
    "cost_basis",
    "adjustment_amount",
    "gain_loss",
]
# Form 8949 box -> Schedule D line (2024 forms): A/B/C short-term, D/E/F long-term.
SCHEDULE_D_LINE = {"A": "1b", "B": "2", "C": "3", "D": "8b", "E": "9", "F": "10"}


def cents(values: pd.Series | np.ndarray) -> np.ndarray:
    """USD rounded to cents, half away from zero (so 2.675 -> 2.68, -0.125 -> -0.13)."""
    x = np.asarray(values, dtype=float)
    return np.sign(x) * np.floor(np.abs(x) * 100 + 0.5 + 1e-7) / 100 + 0.0  # + 0.0: no "-0.0"


# Form 8949 column (a) counts these asset categories in their own units; the rest in shares.
UNIT_WORDS = {"OPT": "contracts", "FOP": "contracts", "FUT": "contracts", "WAR": "warrants"}


def form_8949(result: LotResult, year: int, basis_reported: bool = True) -> pd.DataFrame:
    """Form 8949 rows for sales in `year`, USD rounded to cents.

    `box` is A (short-term) / D (long-term) when the broker reported basis to the IRS on
    Form 1099-B (IBKR does for covered stock), else B / E. For a covered short sale both
    dates are the covering date, as the Form 8949 instructions ask for short sales. Sales
    inside an IRA are not reported.
    """
    realized = result.realized
    in_ira = realized.get("ira", False)
    sold = realized[(realized["date_sold"].dt.year == year) & ~in_ira]
    is_short = (sold["position"] == "short").to_numpy()
    quantity = sold["quantity"].abs().to_numpy()
    proceeds = cents(sold["proceeds"])
    cost = cents(sold["cost_basis"])
    adjustment = cents(sold["adjustment_amount"])
    long_term = (sold["term"] == "long").to_numpy()
    boxes = np.where(long_term, "D", "A") if basis_reported else np.where(long_term, "E", "B")
    shown = per_unique(pd.Series(quantity, dtype=float), lambda q: q.map("{:,.6g}".format))
    units = per_unique(
        sold["symbol"],
        lambda s: s.map(result.asset_categories).map(UNIT_WORDS).fillna("sh").astype(object),
    )
    description = (
        shown.to_numpy(dtype=object)
        + " "
        + units.to_numpy(dtype=object)
        + " "
        + sold["symbol"].to_numpy(dtype=object)
        + np.where(is_short, " (short sale)", "").astype(object)
    )
    return pd.DataFrame(
        {
            "description": description,
            "symbol": sold["symbol"].to_numpy(),
            "quantity": quantity,
            "date_acquired": np.where(is_short, sold["date_sold"], sold["date_acquired"]).astype(
                "datetime64[s]"
            ),
            "date_sold": sold["date_sold"].to_numpy(),
            "proceeds": proceeds,
            "cost_basis": cost,
            "adjustment_code": sold["adjustment_code"].to_numpy(),
            "adjustment_amount": adjustment,
            "gain_loss": np.round(proceeds - cost + adjustment, 2),
            "term": sold["term"].to_numpy(),
            "box": boxes,
        },
        columns=FORM_8949_COLUMNS,
    )


def schedule_d(result: LotResult, year: int, basis_reported: bool = True) -> pd.DataFrame:
    """Schedule D totals per term and Form 8949 box, plus a total row per term (box "all")."""
    return schedule_d_totals(form_8949(result, year, basis_reported))


def schedule_d_totals(rows: pd.DataFrame) -> pd.DataFrame:
    """`schedule_d` from Form 8949 rows already computed (`form_8949`)."""
    money = ["proceeds", "cost_basis", "adjustment_amount", "gain_loss"]
    by_box = rows.groupby(["term", "box"], as_index=False)[money].sum()
    by_box["line"] = by_box["box"].map(SCHEDULE_D_LINE)
    totals = pd.DataFrame(
        [
            {
                "term": term,
                "box": "all",
                "line": "7" if term == "short" else "15",
                **rows.loc[rows["term"] == term, money].sum(),
            }
            for term in ("short", "long")
        ]
    )
    out = pd.concat([by_box, totals], ignore_index=True)
    out[money] = out[money].astype(float).round(2)
    order = out["term"].map({"short": 0, "long": 1}) * 10 + (out["box"] == "all")
    return out.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)[
        SCHEDULE_D_COLUMNS
    ]


def open_lots_report(result: LotResult) -> pd.DataFrame:
    """Open lots for `open_lots.csv`: USD rounded to cents, dates as dates."""
    lots = result.open_lots
    return pd.DataFrame(
        {
            "symbol": lots["symbol"],
            "account": lots["account"],
            "lot_id": lots["lot_id"],
            "quantity": lots["quantity"],
            "date_acquired": lots["date_acquired"],
            "holding_period_start": lots["holding_period_start"],
            "cost_basis": cents(lots["cost_basis"]),
            "wash_sale_adjustment": cents(lots["wash_sale_adjustment"]),
        }
    )


# --------------------------------------------------------------------------- writers


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as a formula
MONEY_COLUMNS = {
    "proceeds",
    "cost_basis",
    "adjustment_amount",
    "gain_loss",
    "wash_sale_adjustment",
    "permanently_disallowed",
    "ours",
    "ibkr",
    "difference",
    "ibkr_base",
}


def escape_formula(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR first),
    prefixed with an apostrophe so it stays text (OWASP "CSV injection"); others unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


CSV_CHUNK_ROWS = 200_000  # rows formatted and written at a time (bounds the memory used)


def write_csv(tables: Mapping[str, pd.DataFrame], directory: str | Path) -> list[Path]:
    """One `<name>.csv` per table in `directory`; returns the paths written. Dates are
    written as YYYY-MM-DD, timestamps as ISO text, and text cells that a spreadsheet would
    take for a formula are escaped (see `escape_formula`); otherwise the bytes are those of
    `DataFrame.to_csv(index=False)`."""
    directory = Path(directory)
    paths = []
    for name, frame in tables.items():
        path = directory / f"{name}.csv"
        _write_frame(frame, path)
        paths.append(path)
    return paths


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    """`frame` as CSV, formatted column by column (text once per distinct value) and
    written in chunks of rows: several times faster than `to_csv` on large frames."""
    kinds = [_csv_kind(frame[c]) for c in frame.columns]
    if len(frame.columns) < 2 or None in kinds:  # one column ("" is quoted there), rare types
        frame = frame.copy()
        for c, kind in zip(frame.columns, kinds, strict=True):
            if kind in ("datetime", "date", "text"):
                frame[c] = _csv_cells(frame[c], kind, quote=False)
        frame.to_csv(path, index=False)
        return
    header = ",".join(_csv_quote(str(c)) for c in frame.columns)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(header + "\n")
        for start in range(0, len(frame), CSV_CHUNK_ROWS):
            part = frame.iloc[start : start + CSV_CHUNK_ROWS]
            cells = [_csv_cells(part[c], k) for c, k in zip(frame.columns, kinds, strict=True)]
            f.write("\n".join(map(",".join, zip(*cells, strict=True))))
            f.write("\n")


def _csv_kind(values: pd.Series) -> str | None:
    """How `_csv_cells` formats a column; None (other numbers: float32, nullable, complex):
    as pandas does."""
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime"
    if dtype.kind == "M":
        return "date"
    if dtype.kind not in "biufc":
        return "text"
    plain = isinstance(dtype, np.dtype)
    return "number" if plain and (dtype == np.float64 or dtype.kind in "biu") else None


def _csv_cells(values: pd.Series, kind: str, quote: bool = True) -> np.ndarray:
    """A column's CSV cells (str objects): missing values empty, numbers as `to_csv` writes
    them (floats: the shortest repr), dates YYYY-MM-DD, timestamps ISO, text escaped
    against formulas and (`quote`) quoted where CSV needs it; text, dates and timestamps
    formatted once per distinct value."""
    if kind in ("number", "date"):
        x = values.to_numpy()
        if x.dtype == np.float64:  # distinct bit patterns: -0.0 is written as such
            codes, bits = pd.factorize(x.view(np.int64))
            uniques = bits.view(np.float64)
            text = np.array(list(map(repr, uniques.tolist())), dtype=object)
            text[np.isnan(uniques)] = ""
            return text[codes]
        codes, uniques = pd.factorize(x)  # NaT: code -1
        if kind == "date":
            text = uniques.astype("datetime64[D]").astype(str)
        else:
            text = np.array(list(map(str, uniques.tolist())))
        return np.append(text.astype(object), "")[codes]
    if kind == "datetime":
        fn = lambda v: v.map(lambda t: t.isoformat() if pd.notna(t) else "")  # noqa: E731
    else:
        text = _csv_quote if quote else str
        fn = lambda v: v.map(  # noqa: E731
            lambda t: "" if _missing(t) else text(str(escape_formula(t)))
        )
    return per_unique(values, fn).to_numpy(dtype=object)


def _missing(value: object) -> bool:
    return value is None or value is pd.NaT or value is pd.NA or value != value


def _csv_quote(text: str) -> str:
    """`text` as a CSV field, quoted as `to_csv` (the csv module, QUOTE_MINIMAL) does when
    it holds a comma, quote or line break."""
    if text and not any(c in text for c in ',"\r\n'):
        return text
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([text, ""])
    return buffer.getvalue()[: -len(",\n")]


def write_excel(tables: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """One sheet per table (names cut to Excel's 31 characters): dates as Excel dates
    (yyyy-mm-dd; timestamps in their own time zone), money as #,##0.00, the header row
    frozen and filtered. Text cells are always text, never formulas."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    path = Path(path)
    book = Workbook(write_only=True)
    for name, frame in tables.items():
        sheet = book.create_sheet(name[:31])
        sheet.freeze_panes = "A2"
        if len(frame.columns):
            last = _excel_column(len(frame.columns))
            sheet.auto_filter.ref = f"A1:{last}{len(frame) + 1}"
        bold = Font(bold=True)
        header = []
        for c in frame.columns:
            cell = WriteOnlyCell(sheet, value=str(c))
            cell.font = bold
            cell.data_type = "s"
            header.append(cell)
        sheet.append(header)
        columns = []
        for c in frame.columns:
            values = frame[c]
            if isinstance(values.dtype, pd.DatetimeTZDtype):
                columns.append(
                    (values.dt.tz_localize(None).dt.to_pydatetime(), "yyyy-mm-dd hh:mm:ss")
                )
            elif values.dtype.kind == "M":
                columns.append((values.dt.to_pydatetime(), "yyyy-mm-dd"))
            elif values.dtype.kind in "fiu":
                fmt = "#,##0.00" if c in MONEY_COLUMNS else "General"
                columns.append((values.astype(object).where(values.notna(), None).tolist(), fmt))
            else:
                columns.append((values.astype(object).where(values.notna(), None).tolist(), None))
        for row in zip(*(v for v, _ in columns), strict=True):
            cells = []
            for value, (_, fmt) in zip(row, columns, strict=True):
                if value is pd.NaT:
                    value = None
                cell = WriteOnlyCell(sheet, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # "=cmd|..." stays text
                elif fmt and value is not None:
                    cell.number_format = fmt
                cells.append(cell)
            sheet.append(cells)
    book.save(path)
    return path


def _excel_column(n: int) -> str:
    name = ""
    while n:
        n, r = divmod(n - 1, 26)
        name = chr(65 + r) + name
    return name


def fx_rates_used(trades: pd.DataFrame) -> pd.DataFrame:
    """Which USD rates the trades used, per currency and source: rows, first and last trade
    date, lowest and highest rate (`fx_source` "none": no USD figure for those trades)."""
    if trades.empty:
        return pd.DataFrame(
            columns=["currency", "fx_source", "trades", "first", "last", "min_rate", "max_rate"]
        )
    frame = trades.assign(
        fx_source=trades.get("fx_source", pd.Series("given", index=trades.index)),
        day=trades["datetime"].dt.tz_localize(None).dt.normalize(),
    )
    return (
        frame.groupby(["currency", "fx_source"], as_index=False)
        .agg(
            trades=("fx_rate", "size"),
            first=("day", "min"),
            last=("day", "max"),
            min_rate=("fx_rate", "min"),
            max_rate=("fx_rate", "max"),
        )
        .sort_values(["currency", "fx_source"])
        .reset_index(drop=True)
    )


def write_duckdb(tables: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """One DuckDB table per frame in the database file at `path` (tables are replaced)."""
    import duckdb

    path = Path(path)
    con = duckdb.connect(str(path))
    try:
        for name, frame in tables.items():
            con.register("_frame", frame)
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _frame')
            con.unregister("_frame")
    finally:
        con.close()
    return path


# --------------------------------------------------------------------------- reconciliation

RECONCILE_COLUMNS = [
    "level",
    "trade_id",
    "symbol",
    "date_acquired",
    "quantity_ours",
    "quantity_ibkr",
    "ours",
    "ibkr",
    "difference",
    "status",
]


def reconcile_ibkr(
    result: LotResult, statement: ImportResult, tolerance: float = 0.005
) -> pd.DataFrame:
    """Compare our FIFO realized P&L (before wash-sale adjustments, as IBKR reports it) with
    IBKR's, per closing trade (`level="trade"`, Flex `fifoPnlRealized` / Activity `Realized
    P/L`) and per closed lot (`level="lot"`, Flex `<Lot>` / Activity `ClosedLot` rows,
    matched on closing trade and acquisition date).

    `status` is "match", "differs" (by more than `tolerance` USD, or another quantity),
    "missing_in_ibkr" or "missing_in_ours"; `result[result.status != "match"]` lists every
    difference. IBKR's figures are in the trade currency: for trades in other currencies pass
    a result matched with `fx_rate` 1, or use `reconcile_statement`, which does.
    """
    if result.method != "fifo":
        raise ValueError(
            f"IBKR reports FIFO realized P&L; run match_lots with method='fifo', not {result.method!r}."
        )
    realized = result.realized.assign(
        pnl=result.realized["proceeds"]
        - result.realized["cost_basis"]
        + result.realized["wash_sale_adjustment"],
        basis=result.realized["cost_basis"] - result.realized["wash_sale_adjustment"],
        qty=result.realized["quantity"].abs(),
    )
    ours = realized.groupby("trade_id", as_index=False).agg(
        symbol=("symbol", "first"), ours=("pnl", "sum"), quantity_ours=("qty", "sum")
    )
    ibkr = statement.ibkr_realized.groupby("trade_id", as_index=False).agg(
        symbol=("symbol", "first"), ibkr=("realized_pnl", "sum")
    )
    trades = _compare(ours, ibkr, ["trade_id"], tolerance, zero_is_absent=True)
    trades["level"] = "trade"

    lots = statement.ibkr_closed_lots.assign(qty=statement.ibkr_closed_lots["quantity"].abs())
    ours_lots = realized.groupby(["trade_id", "date_acquired"], as_index=False).agg(
        symbol=("symbol", "first"), ours=("pnl", "sum"), quantity_ours=("qty", "sum")
    )
    ibkr_lots = lots.groupby(["trade_id", "date_acquired"], as_index=False).agg(
        symbol=("symbol", "first"), ibkr=("realized_pnl", "sum"), quantity_ibkr=("qty", "sum")
    )
    if len(ibkr_lots):
        ours_lots = ours_lots[ours_lots["trade_id"].isin(ibkr_lots["trade_id"])]
        ours_lots["date_acquired"] = ours_lots["date_acquired"].astype("datetime64[ns]")
        ibkr_lots["date_acquired"] = ibkr_lots["date_acquired"].astype("datetime64[ns]")
        lot_rows = _compare(
            ours_lots, ibkr_lots, ["trade_id", "date_acquired"], tolerance, zero_is_absent=False
        )
        lot_rows["level"] = "lot"
        trades = pd.concat([trades, lot_rows], ignore_index=True)
    return trades.reindex(columns=RECONCILE_COLUMNS)


def _compare(
    ours: pd.DataFrame, ibkr: pd.DataFrame, on: list[str], tolerance: float, zero_is_absent: bool
) -> pd.DataFrame:
    """Outer-join two P&L tables on `on` and classify each row (see `reconcile_ibkr`)."""
    merged = ours.merge(ibkr, on=on, how="outer", suffixes=("", "_ibkr"), indicator=True)
    merged["symbol"] = merged["symbol"].fillna(merged.pop("symbol_ibkr"))
    both = merged["_merge"] == "both"
    only_ibkr = merged["_merge"] == "right_only"
    merged["difference"] = merged["ours"] - merged["ibkr"]
    status = np.where(merged["difference"].abs() <= tolerance, "match", "differs")
    if "quantity_ibkr" in merged:
        status = np.where(
            (merged["quantity_ours"] - merged["quantity_ibkr"]).abs() > 1e-6, "differs", status
        )
    # An opening trade has IBKR realized P&L 0 and no realized rows of ours.
    ibkr_zero = only_ibkr & (merged["ibkr"].abs() <= tolerance) & zero_is_absent
    status = np.where(both, status, np.where(only_ibkr, "missing_in_ours", "missing_in_ibkr"))
    merged["status"] = np.where(ibkr_zero, "match", status)
    merged = merged[~ibkr_zero].drop(columns="_merge")
    return merged.reset_index(drop=True)


SUMMARY_COLUMNS = [
    "account",
    "symbol",
    "currency",
    "closing_ours",
    "closing_ibkr",
    "ours",
    "ibkr",
    "difference",
    "ibkr_base",
    "status",
    "trades",
]


def reconcile_statement(statement: ImportResult, tolerance: float = 0.005) -> pd.DataFrame:
    """One statement against IBKR's own figures, per account, symbol and currency.

    Ours is FIFO realized P&L before wash sales in the trade currency (the statement's
    trades with a USD rate of 1), as IBKR reports `fifoPnlRealized` / `Realized P/L`;
    `closing_ours` counts our closing trades (those that closed lots, plus unexplained
    sales), `closing_ibkr` IBKR's. `ibkr_base` is IBKR's figure in the base currency (each
    trade times its `fxRateToBase`; NaN where the statement gives no rate). `status` is
    "match" (within `tolerance`, same count), "mismatch" (then `trades` lists the closing
    trade ids that differ, with both amounts) or "unexplained" (a sale of shares the
    history does not hold: see `ImportResult.unexplained`) or "not_reported" (the statement
    gives no realized P&L, e.g. a Transaction History: `ours` stands alone).
    """
    local = statement.trades.assign(fx_rate=1.0)
    result = match_lots(local, wash_sales=False)
    detail = reconcile_ibkr(result, statement, tolerance)
    realized = result.realized
    keys = ["account", "symbol"]
    pnl = realized["proceeds"] - realized["cost_basis"]
    currency = statement.trades.drop_duplicates(keys).set_index(keys)["currency"]
    ours = (
        realized.assign(pnl=pnl)
        .groupby(keys, as_index=False)
        .agg(ours=("pnl", "sum"), closing_ours=("trade_id", "nunique"))
    )
    ibkr = statement.ibkr_realized.assign(
        base=statement.ibkr_realized["realized_pnl"] * statement.ibkr_realized["fx_rate_to_base"]
    )
    ibkr = ibkr.groupby(keys, as_index=False).agg(
        ibkr=("realized_pnl", lambda v: v.sum(min_count=len(v))),
        closing_ibkr=("trade_id", "nunique"),
        ibkr_base=("base", lambda v: v.sum(min_count=len(v))),
        ibkr_currency=("currency", "first"),
    )
    unexplained = statement.unexplained.groupby(keys).size()
    out = ours.merge(ibkr, on=keys, how="outer").merge(
        unexplained.rename("n").reset_index()[keys], on=keys, how="outer"
    )
    extra = pd.Series(
        [unexplained.get((a, s), 0) for a, s in zip(out["account"], out["symbol"], strict=True)],
        index=out.index,
    )
    reported = out["ibkr"].notna()
    out["ours"] = out["ours"].fillna(0.0)
    out["closing_ours"] = out["closing_ours"].fillna(0).astype(int) + extra
    out["closing_ibkr"] = out["closing_ibkr"].fillna(0).astype(int)
    out["currency"] = [
        currency.get((a, s), c)
        for a, s, c in zip(out["account"], out["symbol"], out["ibkr_currency"], strict=True)
    ]
    out["difference"] = out["ours"] - out["ibkr"]
    differs = detail[(detail["status"] != "match") & (detail["level"] == "trade")]
    listed: dict[str, list[str]] = {}
    for t, sym, o, i in zip(
        differs["trade_id"],
        differs["symbol"],
        differs["ours"].fillna(0),
        differs["ibkr"].fillna(0),
        strict=True,
    ):
        listed.setdefault(sym, []).append(f"{t}: ours {o:.2f} ibkr {i:.2f}")
    out["trades"] = [
        "; ".join(listed.get(sym, [])) if r else ""
        for sym, r in zip(out["symbol"], reported, strict=True)
    ]
    ok = (out["difference"].abs() <= tolerance) & (out["closing_ours"] == out["closing_ibkr"])
    status = np.where(ok, "match", "mismatch")
    status = np.where(reported, status, "not_reported")
    out["status"] = np.where(extra > 0, "unexplained", status)
    return out.reindex(columns=SUMMARY_COLUMNS).sort_values(keys).reset_index(drop=True)
