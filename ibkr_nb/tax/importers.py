"""Trade histories from IBKR and plain files, normalised to one trades frame.

Every source ends in the same frame, one row per fill or corporate action:

    trade_id  str      unique within the source
    account   str
    symbol    str      exchange ticker, e.g. "AAPL", "BRK B"
    datetime  Timestamp, timezone-aware (America/New_York unless the source says otherwise)
    quantity  float    signed shares: + bought, - sold (0 for a split row)
    price     float    per share, in `currency` (NaN for a split row)
    commission float   >= 0, in `currency`
    currency  str
    fx_rate   float    USD per one unit of `currency` (1 for USD)
    kind      str      "trade" or "split"
    ratio     float    new shares per old share for a split row (NaN for a trade)

A row that cannot be used comes back in `rejects` with the source line and a `reason`;
the other rows are still imported. Nothing here raises on a bad row; a file that is not a
trade history at all raises `TradeFileError` with a one-sentence explanation.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

TRADE_COLUMNS = [
    "trade_id",
    "account",
    "symbol",
    "datetime",
    "quantity",
    "price",
    "commission",
    "currency",
    "fx_rate",
    "kind",
    "ratio",
]
REALIZED_COLUMNS = ["trade_id", "account", "symbol", "datetime", "realized_pnl"]
CLOSED_LOT_COLUMNS = [
    "trade_id",
    "account",
    "symbol",
    "date_acquired",
    "quantity",
    "cost_basis",
    "realized_pnl",
]
DEFAULT_TZ = "America/New_York"

# Tickers as IBKR prints them: "AAPL", "BRK B", "BRK.B", "BF/B", "RDS-A", "7203".
SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-/ ]{0,19}$")
_OFFSET_RE = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


class TradeFileError(ValueError):
    """A file that is not a readable trade history (the message says why and what to do)."""


@dataclass(frozen=True)
class ImportResult:
    """Trades in the normalised frame, rejected rows with a reason, and IBKR's own figures.

    `ibkr_realized` holds IBKR's realized P&L per closing trade (USD or trade currency as the
    source reports it); `ibkr_closed_lots` the lots IBKR closed for each closing trade. Both
    are empty for sources that carry no such figures. They feed `reports.reconcile_ibkr`.
    """

    trades: pd.DataFrame
    rejects: pd.DataFrame
    source: str
    ibkr_realized: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=REALIZED_COLUMNS)
    )
    ibkr_closed_lots: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=CLOSED_LOT_COLUMNS)
    )


# --------------------------------------------------------------------------- shared parsing


def _text(values: pd.Series) -> pd.Series:
    """Stripped strings; "" for missing values."""
    return values.astype(object).where(values.notna(), "").astype("str").str.strip()


def _to_number(values: pd.Series) -> pd.Series:
    """Numbers from values such as 1000, "1,000" or "-1.25"; NaN where not a number."""
    if values.dtype.kind in "fiu":
        return values.astype(float)
    text = _text(values).str.replace(",", "", regex=False)
    return pd.to_numeric(text, errors="coerce").astype(float)


def parse_datetimes(values: pd.Series, tz: str = DEFAULT_TZ) -> pd.Series:
    """Timezone-aware timestamps in `tz`; NaT where a value cannot be parsed.

    Naive values ("2024-01-15", "2024-01-15 09:35:12") are taken as `tz` local time; values
    with an offset ("...-05:00", "...Z") or already tz-aware are converted to `tz`.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(tz).dt.as_unit("ns")
    text = _text(values).str.replace(";", " ", regex=False)
    has_offset = text.str.contains(_OFFSET_RE)
    out = pd.Series(pd.NaT, index=values.index, dtype=f"datetime64[ns, {tz}]")
    if has_offset.any():
        aware = pd.to_datetime(text[has_offset], errors="coerce", format="mixed", utc=True)
        out[has_offset] = aware.dt.tz_convert(tz).dt.as_unit("ns")
    naive = ~has_offset
    if naive.any():
        parsed = pd.to_datetime(text[naive], errors="coerce", format="mixed")
        local = parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
        out[naive] = local.dt.as_unit("ns")
    return out


def _finalise(stage: pd.DataFrame, source: str, tz: str = DEFAULT_TZ) -> ImportResult:
    """Validate a staging frame (raw values per trade column plus `line`, `raw`) into trades.

    Every check runs on every row; a row failing several gets all reasons joined by "; ".
    """
    n = len(stage)
    empty = pd.Series([None] * n, index=stage.index, dtype=object)
    col = {c: stage.get(c, empty) for c in TRADE_COLUMNS}
    kind = _text(col["kind"]).str.lower().replace("", "trade")
    is_split = kind == "split"
    symbol = _text(col["symbol"])
    dt = parse_datetimes(col["datetime"], tz)
    quantity = _to_number(col["quantity"])
    price = _to_number(col["price"])
    commission_text = _text(col["commission"])
    commission = _to_number(commission_text.where(commission_text != "", "0"))
    currency = _text(col["currency"]).str.upper().replace("", "USD")
    fx_text = _text(col["fx_rate"])
    fx_rate = _to_number(fx_text.where(fx_text != "", "1"))
    fx_missing = (fx_text == "") & (currency != "USD")
    ratio = _to_number(col["ratio"])
    trade_id = _text(col["trade_id"])
    trade_id = trade_id.where(trade_id != "", source + ":" + stage["line"].astype("str"))
    account = _text(col["account"])

    reasons: list[tuple[pd.Series, pd.Series | str]] = [
        (~kind.isin(["trade", "split"]), "unknown kind '" + kind + "' (expected trade or split)"),
        (dt.isna(), "unparseable date '" + _text(col["datetime"]) + "'"),
        (~symbol.str.match(SYMBOL_RE), "unknown symbol format '" + symbol + "'"),
        (~is_split & quantity.isna(), "quantity '" + _text(col["quantity"]) + "' is not a number"),
        (~is_split & (quantity == 0), "zero quantity"),
        (~is_split & price.isna(), "price '" + _text(col["price"]) + "' is not a number"),
        (~is_split & (price < 0), "negative price " + price.astype("str")),
        (commission.isna(), "commission '" + commission_text + "' is not a number"),
        (commission < 0, "negative commission " + commission.astype("str")),
        (fx_missing, "no fx_rate for currency " + currency + " (give fx_rate = USD per unit)"),
        (~fx_missing & ~(fx_rate > 0), "fx_rate must be a positive number"),
        (
            is_split & ~(ratio > 0),
            "split ratio must be a positive number of new shares per old share",
        ),
        (trade_id.duplicated(keep="first"), "duplicate trade_id '" + trade_id + "'"),
    ]
    reason = pd.Series("", index=stage.index, dtype="str")
    for mask, text in reasons:
        mask = mask.fillna(False).astype(bool)
        piece = text[mask] if isinstance(text, pd.Series) else text
        reason[mask] = reason[mask].where(reason[mask] == "", reason[mask] + "; ") + piece
    bad = reason != ""

    trades = pd.DataFrame(
        {
            "trade_id": trade_id,
            "account": account,
            "symbol": symbol,
            "datetime": dt,
            "quantity": quantity.where(~is_split, 0.0),
            "price": price.where(~is_split, np.nan),
            "commission": commission,
            "currency": currency,
            "fx_rate": fx_rate,
            "kind": kind,
            "ratio": ratio.where(is_split, np.nan),
        }
    )[~bad].reset_index(drop=True)
    rejects = pd.DataFrame(
        {
            "source": source,
            "line": stage["line"].astype(int),
            "symbol": symbol,
            "raw": stage["raw"].astype("str"),
            "reason": reason,
        }
    )[bad].reset_index(drop=True)
    return ImportResult(trades=trades, rejects=rejects, source=source)


def empty_trades() -> pd.DataFrame:
    """A trades frame with no rows and the normalised dtypes."""
    return _finalise(pd.DataFrame({"line": [], "raw": []}), "empty").trades


# --------------------------------------------------------------------------- sources


def from_executions(executions: pd.DataFrame, tz: str = DEFAULT_TZ) -> ImportResult:
    """Trades from `Session.executions()` (one row per execution, `time` in UTC).

    `exec_id` becomes `trade_id`; `time` is converted to `tz` (exchange time) so that trade
    dates are exchange dates. A missing commission (IBKR sends it in a separate report)
    rejects the row rather than assume zero.
    """
    n = len(executions)
    stage = pd.DataFrame(
        {
            "trade_id": executions["exec_id"],
            "account": executions["account"],
            "symbol": executions["symbol"],
            "datetime": executions["time"],
            "quantity": executions["quantity"],
            "price": executions["price"],
            "commission": executions["commission"]
            .astype(float)
            .astype(object)
            .where(executions["commission"].notna(), "not reported yet"),
            "currency": executions["currency"],
            "line": np.arange(1, n + 1),
            "raw": executions["exec_id"].astype("str"),
        }
    )
    return _finalise(stage.reset_index(drop=True), "executions", tz)


def from_plain_csv(text: str, source: str = "csv", tz: str = DEFAULT_TZ) -> ImportResult:
    """Trades from a CSV with `date,symbol,quantity,price` and optional `commission, trade_id,
    account, currency, fx_rate, kind, ratio` columns (a row with kind=split and ratio = new
    shares per old share is a stock split). Naive dates are `tz` local time."""
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in ("date", "symbol", "quantity", "price") if c not in frame.columns]
    if missing:
        raise TradeFileError(
            f"{source}: the trades CSV has no {', '.join(missing)} column; "
            "a plain trades CSV needs date,symbol,quantity,price."
        )
    raw_lines = text.splitlines()[1:]
    stage = frame.rename(columns={"date": "datetime"})
    stage["line"] = np.arange(2, len(frame) + 2)
    stage["raw"] = [raw_lines[i] if i < len(raw_lines) else "" for i in range(len(frame))]
    return _finalise(stage, source, tz)


_FLEX_SUMMARY_LEVELS = {"ORDER", "SYMBOL_SUMMARY", "ASSET_SUMMARY", "CLOSED_LOT"}


def _flex_datetime(value: str) -> str:
    """ "20240115;093512" / "20240115" -> "2024-01-15 09:35:12"; other forms pass through."""
    digits = re.sub(r"\D", "", value or "")
    if len(digits) == 14:
        return (
            f"{digits[:4]}-{digits[4:6]}-{digits[6:8]} {digits[8:10]}:{digits[10:12]}:{digits[12:]}"
        )
    if len(digits) == 8:
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    return value or ""


def from_flex_xml(text: str | bytes, source: str = "flex", tz: str = DEFAULT_TZ) -> ImportResult:
    """Trades from an IBKR Flex Query XML (`<Trade>` rows; `<Lot>` rows kept as closed lots).

    Attributes used: accountId, symbol, assetCategory, currency, fxRateToBase (taken as USD
    per unit: the account's base currency must be USD), tradeID, dateTime ("20240115;093512",
    exchange time) or tradeDate, quantity (signed), tradePrice, ibCommission (negative in
    Flex, so negated here), fifoPnlRealized (kept for reconciliation). Only stocks (STK) are
    imported; other asset categories are rejected with a reason. When the query has both
    execution- and order-level rows only the executions are used.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TradeFileError(
            f"{source}: not valid XML ({exc}); export the Flex query as XML."
        ) from exc
    trades = [
        el
        for el in root.iter("Trade")
        if el.get("levelOfDetail", "EXECUTION") not in _FLEX_SUMMARY_LEVELS
    ]
    if not any(el.get("levelOfDetail") == "EXECUTION" for el in trades):
        trades = [el for el in root.iter("Trade") if el.get("levelOfDetail", "") != "CLOSED_LOT"]
    rows, realized, lots = [], [], []
    wanted = set(map(id, trades))
    last_trade_id, line = "", 0
    for el in root.iter():
        if el.tag not in ("Trade", "Lot"):
            continue
        line += 1
        a = el.attrib
        is_lot = el.tag == "Lot" or a.get("levelOfDetail") == "CLOSED_LOT"
        if is_lot:
            lots.append(
                {
                    "trade_id": a.get("tradeID") or last_trade_id,
                    "account": a.get("accountId", ""),
                    "symbol": a.get("symbol", ""),
                    "date_acquired": _flex_datetime(a.get("openDateTime", "")),
                    "quantity": a.get("quantity", ""),
                    "cost_basis": a.get("cost", ""),
                    "realized_pnl": a.get("fifoPnlRealized", ""),
                }
            )
            continue
        if id(el) not in wanted:
            continue
        category = a.get("assetCategory", "STK")
        trade_id = a.get("tradeID") or a.get("transactionID") or ""
        last_trade_id = trade_id
        rows.append(
            {
                "trade_id": trade_id,
                "account": a.get("accountId", ""),
                "symbol": a.get("symbol", "")
                if category == "STK"
                else f"<{category}> {a.get('symbol', '')}",
                "datetime": _flex_datetime(a.get("dateTime") or a.get("tradeDate", "")),
                "quantity": a.get("quantity", ""),
                "price": a.get("tradePrice", ""),
                "commission": str(-float(a["ibCommission"]))
                if _is_number(a.get("ibCommission"))
                else "0",
                "currency": a.get("currency", "USD"),
                "fx_rate": a.get("fxRateToBase", "1"),
                "line": line,
                "raw": " ".join(f'{k}="{v}"' for k, v in a.items()),
            }
        )
        if _is_number(a.get("fifoPnlRealized")) and "C" in a.get("openCloseIndicator", "C"):
            realized.append(
                {
                    "trade_id": trade_id,
                    "account": a.get("accountId", ""),
                    "symbol": a.get("symbol", ""),
                    "datetime": rows[-1]["datetime"],
                    "realized_pnl": float(a["fifoPnlRealized"]),
                }
            )
    if not rows and not lots:
        raise TradeFileError(
            f"{source}: the Flex XML has no <Trade> rows; add the Trades section to the Flex query."
        )
    return _statement_result(rows, realized, lots, source, tz)


def _is_number(value: str | None) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _category_reasons(rejects: pd.DataFrame) -> pd.DataFrame:
    """Say "asset category OPT is not supported" rather than "unknown symbol format '<OPT> X'"."""
    marked = rejects["symbol"].str.extract(r"^<([^>]+)> ?(.*)$")
    has = marked[0].notna()
    rejects.loc[has, "reason"] = (
        "asset category " + marked.loc[has, 0] + " is not supported (stocks only)"
    )
    rejects.loc[has, "symbol"] = marked.loc[has, 1]
    return rejects


def _realized_frame(rows: list[dict], tz: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=REALIZED_COLUMNS)
    frame["datetime"] = parse_datetimes(frame["datetime"], tz)
    frame["realized_pnl"] = frame["realized_pnl"].astype(float)
    return frame


def _closed_lots_frame(rows: list[dict], tz: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=CLOSED_LOT_COLUMNS)
    frame["date_acquired"] = (
        parse_datetimes(frame["date_acquired"], tz).dt.tz_localize(None).dt.normalize()
    )
    for c in ("quantity", "cost_basis", "realized_pnl"):
        frame[c] = _to_number(frame[c])
    return frame


_ACTIVITY_CATEGORIES = {"Stocks"}


def _statement_result(
    rows: list[dict], realized: list[dict], lots: list[dict], source: str, tz: str
) -> ImportResult:
    """An IBKR statement's trades with rejects, plus IBKR's own realized P&L and closed lots."""
    result = _finalise(pd.DataFrame(rows, columns=[*TRADE_COLUMNS, "line", "raw"]), source, tz)
    return ImportResult(
        trades=result.trades,
        rejects=_category_reasons(result.rejects),
        source=source,
        ibkr_realized=_realized_frame(realized, tz),
        ibkr_closed_lots=_closed_lots_frame(lots, tz),
    )


def from_activity_csv(text: str, source: str = "activity", tz: str = DEFAULT_TZ) -> ImportResult:
    """Trades from an IBKR Activity Statement CSV (the `Trades` section).

    `Trades,Data,Order` (or `Trade`) rows are fills: Quantity signed, `T. Price`, `Comm/Fee`
    (negative in the statement, so negated), `Date/Time` like "2024-01-15, 09:35:12" in
    exchange time. `Trades,Data,ClosedLot` rows are the lots IBKR closed for the order row
    above them and, with each order's `Realized P/L`, are kept for reconciliation. The
    statement carries no FX rate per trade, so non-USD rows are rejected with a reason.
    The account comes from an `Account` column or the `Account Information` section.
    """
    header: list[str] | None = None
    default_account = ""
    rows, realized, lots = [], [], []
    last_trade_id = ""
    for line_no, rec in enumerate(csv.reader(io.StringIO(text)), start=1):
        if (
            len(rec) >= 4
            and rec[0] == "Account Information"
            and rec[1] == "Data"
            and rec[2] == "Account"
        ):
            default_account = rec[3].split(" ")[0]
        if not rec or rec[0] != "Trades":
            continue
        if rec[1] == "Header":
            header = rec
            continue
        if rec[1] != "Data" or header is None:
            continue
        a = dict(zip(header[2:], rec[2:], strict=False))
        disc = a.get("DataDiscriminator", "Order")
        account = a.get("Account", default_account)
        if disc == "ClosedLot":
            lots.append(
                {
                    "trade_id": last_trade_id,
                    "account": account,
                    "symbol": a.get("Symbol", ""),
                    "date_acquired": a.get("Date/Time", ""),
                    "quantity": a.get("Quantity", ""),
                    "cost_basis": a.get("Basis", ""),
                    "realized_pnl": a.get("Realized P/L", ""),
                }
            )
            continue
        if disc not in ("Order", "Trade"):
            continue
        trade_id = f"{source}:{line_no}"
        last_trade_id = trade_id
        category = a.get("Asset Category", "Stocks")
        symbol = a.get("Symbol", "")
        comm = _to_number(pd.Series([a.get("Comm/Fee", "0") or "0"]))[0]
        rows.append(
            {
                "trade_id": trade_id,
                "account": account,
                "symbol": symbol if category in _ACTIVITY_CATEGORIES else f"<{category}> {symbol}",
                "datetime": a.get("Date/Time", ""),
                "quantity": a.get("Quantity", ""),
                "price": a.get("T. Price", ""),
                "commission": "" if np.isnan(comm) else str(-comm),
                "currency": a.get("Currency", "USD"),
                "fx_rate": "1" if a.get("Currency", "USD") == "USD" else "",
                "line": line_no,
                "raw": ",".join(rec),
            }
        )
        pnl = _to_number(pd.Series([a.get("Realized P/L", "")]))[0]
        if not np.isnan(pnl):
            realized.append(
                {
                    "trade_id": trade_id,
                    "account": account,
                    "symbol": symbol,
                    "datetime": a.get("Date/Time", ""),
                    "realized_pnl": pnl,
                }
            )
    if header is None:
        raise TradeFileError(
            f"{source}: the Activity Statement has no Trades section; include Trades when exporting it."
        )
    return _statement_result(rows, realized, lots, source, tz)


def load_trades(path: str | Path, tz: str = DEFAULT_TZ) -> ImportResult:
    """Read a trade history file, detecting by content: Flex XML, Activity CSV or plain CSV."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TradeFileError(f"{path}: cannot read the file ({exc.strerror}).") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TradeFileError(
            f"{path}: not a text file (UTF-8 expected); export trades as CSV or XML."
        ) from exc
    head = text.lstrip()
    name = path.name
    if head.startswith("<"):
        return from_flex_xml(data, name, tz)
    first = head.splitlines()[0] if head else ""
    if first.startswith(("Statement,Header", "Trades,Header")) or "\nTrades,Header," in text:
        return from_activity_csv(text, name, tz)
    columns = {c.strip().lower() for c in next(csv.reader([first]), [])}
    if {"date", "symbol", "quantity", "price"} <= columns:
        return from_plain_csv(text, name, tz)
    raise TradeFileError(
        f"{path}: not a trades CSV, Flex XML or Activity Statement (first line: {first[:60]!r}); "
        "a plain CSV needs the header date,symbol,quantity,price."
    )
