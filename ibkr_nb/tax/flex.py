"""IBKR Flex Query XML into the normalised trades frame (see `trades`).

Per `<FlexStatement>` (one per account; a file may hold several):
- `<Trade>` rows at `EXECUTION` level are the fills (`ORDER`, `SYMBOL_SUMMARY`,
  `ASSET_SUMMARY` rows repeat them; a query without executions books its `ORDER` rows).
  `<Lot>` rows and `CLOSED_LOT` trades are the lots IBKR closed for the trade above.
- Dates in every format a Flex query can be set to: yyyyMMdd, yyyy-MM-dd, MM/dd/yyyy,
  dd/MM/yyyy, MM/dd/yy, dd/MM/yy, with or without a time (HHmmss or HH:mm:ss) after ";", ","
  or " ". Day-first or month-first is decided per statement from the dates themselves (a
  part above 12 is the day; otherwise the reading that keeps the dates closest together).
- `fxRateToBase` is the rate to the account's base currency (`AccountInformation`
  currency, else the currency whose trades all have rate 1, else the `ConversionRate`
  target). The USD rate of a trade is 1 for USD, `fxRateToBase` when the base is USD, else
  fxRateToBase / (USD -> base rate that day, from `<ConversionRate>` or a USD trade that
  day); NaN when the statement gives neither (figures then stay in the trade currency).
- `ibCommission` is negative in Flex (negated here); `multiplier` as given (100 for US
  equity options); `openCloseIndicator` C / O; `fifoPnlRealized` (trade currency) is kept
  for reconciliation.
- A cancellation (`buySell` "BUY (Ca.)" / "SELL (Ca.)", code "Ca" in `notes`,
  `transactionType` TradeCancel) removes itself and the trade it cancels (`origTradeID`);
  the trade rebooked under the same trade id, or coded "Co" / TradeCorrect, is booked
  once (see `corrections`); the cancelled trade's `<Lot>` rows go with it.
- `<CorporateAction>`: forward and reverse splits (type FS / RS, "SPLIT a FOR b") become
  split rows; a cash merger (TC) with proceeds is a sale; other types go to rejects.
- `CASH` (currency conversions), futures and options on futures are not booked (rejects
  with the reason).
"""

from __future__ import annotations

import io
import re
from array import array
from dataclasses import replace
from itertools import chain
from pathlib import Path
from xml.parsers import expat

import numpy as np
import pandas as pd

from ibkr_nb.tax.corrections import apply_corrections
from ibkr_nb.tax.ibkr_csv import (
    ACTIONS,
    STAGE_COLUMNS,
    has_code,
    number,
    stage_result,
)
from ibkr_nb.tax.trades import (
    DEFAULT_TZ,
    FIRST_YEAR,
    LAST_YEAR,
    REALIZED_COLUMNS,
    ImportResult,
    TradeFileError,
    per_unique,
)

_DATE_ATTRS = ("dateTime", "tradeDate", "openDateTime", "reportDate")
_SLASH = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})$")
_SPLIT = re.compile(r"SPLIT\s+(\d+(?:\.\d+)?)\s+FOR\s+(\d+(?:\.\d+)?)", re.IGNORECASE)


def _split_date_time(value: str) -> tuple[str, str]:
    value = (value or "").strip()
    for sep in (";", ", ", ",", " "):
        if sep in value:
            date, _, time = value.partition(sep)
            return date.strip(), time.strip()
    return value, ""


def day_first(values: list[str]) -> bool:
    """Whether slash dates (a/b/y) in one statement are day-first (dd/MM) or month-first."""
    pairs = []
    for v in values:
        m = _SLASH.match(_split_date_time(v)[0])
        if m:
            pairs.append((int(m[1]), int(m[2]), int(m[3]) % 100))
    if not pairs:
        return False
    if any(a > 12 for a, _, _ in pairs):
        return True
    if any(b > 12 for _, b, _ in pairs):
        return False

    def span(first_is_day: bool) -> int:
        days = [
            (y * 372 + (b if first_is_day else a) * 31 + (a if first_is_day else b))
            for a, b, y in pairs
        ]
        return max(days) - min(days)

    return span(True) < span(False)


def flex_datetime(value: str, dayfirst: bool) -> str:
    """One Flex date(-time) as "yyyy-mm-dd[ HH:MM:SS]"; other forms pass through."""
    date, time = _split_date_time(value)
    digits = re.sub(r"\D", "", date)
    if re.fullmatch(r"\d{8}", date) or re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        iso = f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"
    elif m := _SLASH.match(date):
        a, b, y = int(m[1]), int(m[2]), m[3]
        day, month = (a, b) if dayfirst else (b, a)
        year = int(y) + 2000 if len(y) == 2 else int(y)
        iso = f"{year:04d}-{month:02d}-{day:02d}"
    else:
        return value or ""
    t = re.sub(r"\D", "", time)
    if len(t) in (4, 6):
        t = t.ljust(6, "0")
        return f"{iso} {t[:2]}:{t[2:4]}:{t[4:]}"
    return iso


# Trade attributes kept per row (the rest of IBKR's ~60 are not needed), in columns.
_TEXT = (
    "accountId",
    "currency",
    "assetCategory",
    "symbol",
    "openCloseIndicator",
    "notes",
    "buySell",
    "transactionType",
    "origTradeID",
    "levelOfDetail",
)
_NUMBERS = (
    "quantity",
    "tradePrice",
    "ibCommission",
    "fxRateToBase",
    "multiplier",
    "fifoPnlRealized",
    "origTradePrice",
)
_IDS = ("tradeID", "transactionID", "ibExecID")  # the first given is the trade id
_WHEN = ("dateTime", "tradeDate")  # the first given is the trade's date
_KEYS = (*_TEXT, *_NUMBERS, *_IDS, *_WHEN)
_LOT_KEYS = ("accountId", "symbol", "openDateTime", "quantity", "cost", "fifoPnlRealized")
_CHUNK = 16_384  # trade rows held as parsed attribute tuples before going into columns
_CANCEL_TYPES = ("TradeCancel", "FracShareCancel")


def _trade_id(a: dict) -> str:
    return a.get("tradeID") or a.get("transactionID") or a.get("ibExecID") or ""


def _numbers(values: tuple) -> np.ndarray:
    """Attribute texts (None where absent) as floats; NaN where not a number (see `number`)."""
    try:
        return np.array(values, dtype=float)  # plain numbers; None is NaN
    except ValueError:
        return np.fromiter(map(number, values), dtype=float, count=len(values))


class _Statement:
    """One `<FlexStatement>` read as it streams by: trade rows in columns (numbers as floats,
    repeated texts shared), the rest as rows."""

    def __init__(self, account: str, intern: dict) -> None:
        self.account = account
        self.info_currency = ""
        self.conversions: list[tuple[str, str, str, float]] = []  # date, from, to, rate
        self.intern = intern  # text -> one shared copy of it; None (absent) -> ""
        self.pending: list[tuple] = []  # attribute values of trade rows not yet in columns
        self.lines = array("q")
        self.chunks: list[dict] = []
        self.lots: list[dict] = []
        self.special: list[tuple[dict, int]] = []  # corporate actions (attributes, line)
        self.last_trade: tuple[dict, int] = ({}, 0)  # attributes, line of the latest trade row

    def add_trade(self, a: dict, line: int) -> None:
        self.pending.append(tuple(map(a.get, _KEYS)))
        self.lines.append(line)
        self.last_trade = (a, line)
        if len(self.pending) >= _CHUNK:
            self._flush()

    def add_lot(self, a: dict) -> None:
        """A `<Lot>` (or CLOSED_LOT trade) row: the lot IBKR closed for the trade above."""
        owner_attrs, owner_line = self.last_trade
        owner = _trade_id(owner_attrs)
        trade_id = a.get("tradeID") or owner
        if trade_id != owner:
            owner_line = 0  # the trade it belongs to is not the one above
        lot = {k: a.get(k, "") for k in _LOT_KEYS}
        self.lots.append({**lot, "tradeID": trade_id, "owner_line": owner_line})

    def _flush(self) -> None:
        """The pending rows into one chunk of columns."""
        if not self.pending:
            return
        values = dict(zip(_KEYS, zip(*self.pending, strict=True), strict=True))
        self.pending = []
        share = self.intern.setdefault
        # repeated texts as shared strings in object arrays (which the garbage collector does
        # not walk, as it walks lists); texts of their own per row as fixed-width text arrays,
        # so the parser's short-lived strings are freed all together and not interleaved
        # with the kept ones
        chunk = {k: np.fromiter(map(share, values[k], values[k]), dtype=object) for k in _TEXT}
        chunk.update({k: _numbers(values[k]) for k in _NUMBERS})
        ids, when = map(values.get, _IDS), map(values.get, _WHEN)
        chunk["trade_id"] = np.array([a or b or c or "" for a, b, c in zip(*ids, strict=True)])
        chunk["when"] = np.array([a or b or "" for a, b in zip(*when, strict=True)])
        self.chunks.append(chunk)

    def frame(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The trade rows (executions, else orders) as columns, and their dates as given
        (a text array); they are let go here."""
        self._flush()
        chunks, self.chunks = self.chunks, []
        columns: dict[str, object] = {}
        for k in (*_TEXT, *_NUMBERS, "trade_id", "when"):
            parts = [c.pop(k) for c in chunks]
            values = np.concatenate(parts) if parts else np.empty(0, dtype=float)
            columns[k] = values if k in _NUMBERS or k == "when" else _strings(values)
        columns["line"] = np.frombuffer(self.lines, dtype=np.int64).copy()
        when = columns.pop("when").astype(str)
        rows = pd.DataFrame(columns)
        level = rows.pop("levelOfDetail")
        executions = level.isin(["EXECUTION", ""])
        if not (level == "EXECUTION").any() and (level == "ORDER").any():
            executions = level == "ORDER"
        if executions.all():
            return rows, when
        keep = executions.to_numpy()
        return rows[keep].reset_index(drop=True), when[keep]


def _strings(values: np.ndarray) -> pd.Series:
    return pd.Series(values.astype(object), dtype="str")


def _statements(data, source: str) -> list[_Statement]:
    """Stream the XML: one `_Statement` per `<FlexStatement>` (or one for the whole file)."""
    statements: list[_Statement] = []
    intern: dict = {None: ""}
    line = 0

    def statement() -> _Statement:
        if not statements:
            statements.append(_Statement("", intern))
        return statements[-1]

    def start(tag: str, a: dict) -> None:
        nonlocal line
        if tag == "Trade" or tag == "Lot" or tag == "CorporateAction":
            line += 1
            level = a.get("levelOfDetail", "")
            if tag == "Lot" or level == "CLOSED_LOT":
                statement().add_lot(a)
            elif tag == "CorporateAction":
                statement().special.append((a, line))
            elif level != "SYMBOL_SUMMARY" and level != "ASSET_SUMMARY":
                statement().add_trade(a, line)
        elif tag == "FlexStatement":
            statements.append(_Statement(a.get("accountId", ""), intern))
        elif tag == "AccountInformation" and a.get("currency"):
            statement().info_currency = a["currency"].upper()
        elif tag == "ConversionRate":
            statement().conversions.append(
                (
                    a.get("reportDate", ""),
                    a.get("fromCurrency", ""),
                    a.get("toCurrency", ""),
                    number(a.get("rate")),
                )
            )

    parser = expat.ParserCreate()
    parser.StartElementHandler = start  # every attribute needed is on a start tag
    try:
        parser.ParseFile(data)
    except expat.ExpatError as exc:
        raise TradeFileError(
            f"{source}: not valid XML ({exc}); export the Flex query as XML."
        ) from exc
    return statements


def _base_currency(st: _Statement, rows: pd.DataFrame) -> str:
    if st.info_currency:
        return st.info_currency
    ones = rows.groupby("currency")["fxRateToBase"].agg(lambda r: bool((r == 1).all()))
    if int(ones.sum()) == 1:
        return str(ones.index[ones.to_numpy()][0])
    targets = {to for _, _, to, _ in st.conversions}
    return targets.pop() if len(targets) == 1 else ""


def _usd_rates(st: _Statement, rows: pd.DataFrame, base: str, day: pd.Series) -> dict[str, float]:
    """Base-currency units per USD by trade date (yyyy-mm-dd) from the statement."""
    usd = (rows["currency"] == "USD") & (rows["fxRateToBase"] > 0)
    out = dict(zip(day[usd], rows["fxRateToBase"][usd], strict=True))
    dayfirst = day_first([d for d, *_ in st.conversions])
    for date, source_currency, target, rate in st.conversions:
        if source_currency == "USD" and target == base:
            out[flex_datetime(date, dayfirst)[:10]] = rate
    return out


def _choose(conditions: list, names: list[str], default: str) -> np.ndarray:
    """`np.select` over texts as an object array of shared strings (not one copy per row)."""
    picked = np.select(conditions, list(range(len(names))), len(names))
    return np.array([*names, default], dtype=object)[picked]


def _usual_times(when: np.ndarray) -> np.ndarray:
    """Dates in the usual Flex layout yyyyMMdd;HHmmss (a text array) as datetime64[s], read
    digit by digit in one go; NaT where a value is in another layout or not a date."""
    out = np.full(len(when), np.datetime64("NaT"), dtype="datetime64[s]")
    usual = np.char.str_len(when) == 15
    if not usual.any():
        return out
    chars = when[usual].astype("U15").view(np.uint32).reshape(-1, 15).astype(np.int64) - 48
    digits = np.delete(chars, 8, axis=1)

    def part(start: int, stop: int) -> np.ndarray:
        return digits[:, start:stop] @ 10 ** np.arange(stop - start - 1, -1, -1)

    year, month, day = part(0, 4), part(4, 6), part(6, 8)
    hour, minute, second = part(8, 10), part(10, 12), part(12, 14)
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (day - 1)
    ok = (
        ((digits >= 0) & (digits <= 9)).all(axis=1)
        & (chars[:, 8] == ord(";") - 48)
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (days.astype("datetime64[M]") == months)  # no 31 June
        & (hour < 24)
        & (minute < 60)
        & (second < 60)
    )
    seconds = days.astype("datetime64[s]") + (hour * 3600 + minute * 60 + second)
    out[np.flatnonzero(usual)[ok]] = seconds[ok]
    return out


def _datetimes(when: np.ndarray, dayfirst: bool) -> pd.Series:
    """Trade times as naive timestamps when every one reads (most in the usual
    yyyyMMdd;HHmmss, read in one go), else as "yyyy-mm-dd HH:MM:SS" texts for `finalise` to
    read and to quote in the reasons of the rows it refuses."""
    parsed = pd.Series(_usual_times(when))
    other = parsed.isna().to_numpy()
    if other.any():
        iso = pd.Series([flex_datetime(v, dayfirst) for v in when[other]], dtype="str")
        parsed[other] = pd.to_datetime(iso, format="ISO8601", errors="coerce").to_numpy()
    year = parsed.dt.year
    if parsed.notna().all() and ((year >= FIRST_YEAR) & (year <= LAST_YEAR)).all():
        return parsed.astype("datetime64[ns]")
    return pd.Series([flex_datetime(v, dayfirst) for v in when], dtype="str")


def _stage(st: _Statement) -> tuple[pd.DataFrame, list, list, str, np.ndarray]:
    """A statement's trade rows (cancellations included) as a staging frame for
    `apply_corrections` and `finalise`, plus its closed lots, (row, reason) refusals, base
    currency and the trade rows' dates as given (the frame's first rows)."""
    rows, when = st.frame()
    dates = chain(
        when[np.char.find(when, "/") >= 0],
        (a["openDateTime"] for a in st.lots),
        (a.get("dateTime") or a.get("reportDate", "") for a, _ in st.special),
    )
    dayfirst = day_first([d for d in dates if "/" in d])
    base = _base_currency(st, rows)
    to_base = rows["fxRateToBase"].to_numpy()
    currency = per_unique(rows["currency"], lambda v: v.str.upper().replace("", "USD"))
    is_usd, base_usd = (currency == "USD").to_numpy(), base == "USD"
    known = to_base > 0
    per_usd = np.full(len(rows), np.nan)
    usd_in_base: dict[str, float] = {}
    converted = ~is_usd & known & (base not in ("", "USD"))
    if converted.any() or (st.special and base not in ("", "USD")):
        day = pd.Series([flex_datetime(v, dayfirst)[:10] for v in when], dtype="str")
        usd_in_base = _usd_rates(st, rows, base, day)
        per_usd = day.map(usd_in_base).to_numpy(dtype=float)
    fx = np.select(
        [is_usd, base_usd & known, converted & (per_usd > 0)],
        [1.0, to_base, to_base / per_usd],
        np.nan,
    )
    fx_source = _choose(
        [is_usd, base_usd & known, ~np.isnan(fx)], ["USD", "fxRateToBase", "ConversionRate"], "none"
    )
    oc = per_unique(rows["openCloseIndicator"], lambda v: v.str.replace(";", "", regex=False))
    has_c = per_unique(oc, lambda v: v.str.contains("C", regex=False)).to_numpy()
    has_o = per_unique(oc, lambda v: v.str.contains("O", regex=False)).to_numpy()
    pnl = rows["fifoPnlRealized"]
    open_close = _choose(
        [has_c & has_o, has_c, has_o, (pnl.fillna(0) != 0).to_numpy()], ["CO", "C", "O", "C"], ""
    )
    codes = rows["notes"]
    cancel = (
        has_code(codes, "Ca")
        | per_unique(rows["buySell"], lambda v: v.str.contains("(Ca.)", regex=False)).to_numpy()
        | rows["transactionType"].isin(_CANCEL_TYPES).to_numpy()
    )
    correction = has_code(codes, "Co") | (rows["transactionType"] == "TradeCorrect").to_numpy()
    orig_id = per_unique(rows["origTradeID"], lambda v: v.where(v != "0", ""))
    action = _choose(
        [has_code(codes, "Ex"), has_code(codes, "A"), has_code(codes, "Ep")],
        list(ACTIONS.values()),
        "",
    )
    stage = pd.DataFrame(
        {
            "trade_id": rows["trade_id"],
            "account": rows["accountId"],
            "symbol": rows["symbol"],
            "datetime": _datetimes(when, dayfirst),
            "quantity": rows["quantity"],
            "price": rows["tradePrice"],
            "commission": -rows["ibCommission"].fillna(0.0),
            "currency": currency,
            "fx_rate": fx,
            "fx_source": fx_source,
            "asset_category": per_unique(rows["assetCategory"], lambda v: v.replace("", "STK")),
            "multiplier": rows["multiplier"].fillna(1.0),
            "open_close": open_close,
            "action": action,
            "kind": "trade",
            "ratio": np.nan,
            "line": rows["line"],
            "raw": "",  # made for the refused rows only, by `_with_raw`
            "realized_pnl": pnl,
            "cancel": cancel,
            "correction": correction,
            "orig_id": orig_id,
            "orig_price": rows["origTradePrice"],
            "fx_rate_to_base": rows["fxRateToBase"],
        }
    )
    lots = [
        {
            "trade_id": a.get("tradeID", ""),
            "account": a.get("accountId", ""),
            "symbol": a.get("symbol", ""),
            "date_acquired": flex_datetime(a.get("openDateTime", ""), dayfirst)[:10],
            "quantity": a.get("quantity", ""),
            "cost_basis": a.get("cost", ""),
            "realized_pnl": a.get("fifoPnlRealized", ""),
            "owner_line": a["owner_line"],
        }
        for a in st.lots
    ]
    extra, extra_dates, refused = [], [], []
    for a, line in st.special:
        given = a.get("dateTime") or a.get("tradeDate") or a.get("reportDate", "")
        day = flex_datetime(given, dayfirst)
        cur = a.get("currency", "USD").upper()
        fx_text, fx_src = _usd_rate(
            cur, number(a.get("fxRateToBase")), base, usd_in_base.get(day[:10], np.nan)
        )
        row = {
            "trade_id": a.get("tradeID") or a.get("transactionID") or "",
            "account": a.get("accountId", ""),
            "symbol": a.get("symbol", ""),
            "datetime": day,
            "quantity": a.get("quantity", ""),
            "price": a.get("tradePrice", ""),
            "commission": repr(-number(a.get("ibCommission")))
            if number(a.get("ibCommission")) == number(a.get("ibCommission"))
            else "0",
            "currency": cur,
            "fx_rate": fx_text,
            "fx_source": fx_src,
            "asset_category": a.get("assetCategory", "STK"),
            "multiplier": a.get("multiplier") or "1",
            "open_close": "",
            "action": "",
            "line": line,
            "raw": " ".join(f'{k}="{v}"' for k, v in a.items()),
        }
        booked = _corporate_action(row, a)
        if isinstance(booked, str):
            refused.append((row, booked))
        elif booked["trade_id"] not in {r["trade_id"] for r in extra}:  # RS: two rows, one split
            extra.append(
                {
                    **booked,
                    "realized_pnl": number(a.get("fifoPnlRealized")),
                    "fx_rate_to_base": number(a.get("fxRateToBase")),
                    "cancel": False,
                    "correction": False,
                    "orig_id": "",
                    "orig_price": np.nan,
                }
            )
            extra_dates.append(given)
    if extra:
        stage = pd.concat([stage, pd.DataFrame(extra)], ignore_index=True)
        # one type of date for all rows (timestamps, else texts), so `finalise` reads them in one go
        stage["datetime"] = _datetimes(np.append(when, np.array(extra_dates, dtype=str)), dayfirst)
    return stage, lots, refused, base, when


def _usd_rate(currency: str, to_base: float, base: str, usd_in_base: float) -> tuple[str, str]:
    """(fx_rate text, fx_source) of one row: USD per unit of `currency`."""
    if currency == "USD":
        return "1", "USD"
    if base == "USD" and to_base > 0:
        return repr(to_base), "fxRateToBase"
    if base and to_base > 0 and usd_in_base > 0:
        return repr(to_base / usd_in_base), "ConversionRate"
    return "", "none"


def from_flex_xml(
    text: str | bytes | Path, source: str = "flex", tz: str = DEFAULT_TZ
) -> ImportResult:
    """Trades from an IBKR Flex Query XML, given as text, bytes or a file path (see the module
    docstring). The XML is streamed: only the attributes used are kept, so memory grows with
    the trades, not with the file."""
    if isinstance(text, Path):
        with text.open("rb") as f:
            statements = _statements(f, source)
    else:
        data = text.encode("utf-8") if isinstance(text, str) else text
        statements = _statements(io.BytesIO(data), source)
    stages, lots, refused, trade_rows = [], [], [], []
    base: dict[str, str] = {}
    for st in statements:
        stage, closed, bad, currency, when = _stage(st)
        stages.append(stage)
        trade_rows.append((stage["line"].to_numpy()[: len(when)], when))
        lots += closed
        refused += bad
        if st.account and currency:
            base[st.account] = currency
    frame = pd.concat(stages, ignore_index=True) if stages else pd.DataFrame(columns=STAGE_COLUMNS)
    if frame.empty and not lots and not refused:
        raise TradeFileError(
            f"{source}: the Flex XML has no <Trade> rows; add the Trades section to the Flex query."
        )
    names = frame[["line", "trade_id", "symbol"]]  # as staged, cancelled trades included
    if "cancel" in frame:
        frame, corrected, cancelled = apply_corrections(frame)
        gone = {r["line"] for r in corrected}
        lots = [lot for lot in lots if lot["owner_line"] not in gone]
    else:
        corrected, cancelled = [], []
    closing = frame["open_close"].astype("str").str.contains("C", regex=False).to_numpy()
    pnl = frame[closing][[*REALIZED_COLUMNS]]
    result = stage_result(frame, pnl, lots, source, tz, base, [*refused, *cancelled], corrected)
    return replace(result, rejects=_with_raw(result.rejects, names, trade_rows))


def _with_raw(
    rejects: pd.DataFrame, names: pd.DataFrame, trade_rows: list[tuple[np.ndarray, np.ndarray]]
) -> pd.DataFrame:
    """`rejects` with the text (tradeID, symbol, dateTime) of each refused `<Trade>` row, made
    for those rows only; `names` are the staged rows' line, trade_id and symbol, `trade_rows`
    the (lines, dates as given) of the `<Trade>` rows per statement."""
    if rejects.empty or not trade_rows:
        return rejects
    lines = np.concatenate([lines for lines, _ in trade_rows])
    refused = np.isin(lines, rejects["line"].to_numpy())
    dates = np.concatenate([w for _, w in trade_rows])[refused]
    when = dict(zip(lines[refused].tolist(), dates.tolist(), strict=True))
    found = names[names["line"].isin(list(when))]
    by_line = {
        line: f'Trade tradeID="{trade_id}" symbol="{symbol}" dateTime="{when[line]}"'
        for line, trade_id, symbol in zip(*map(found.get, names.columns), strict=True)
    }
    raw = [by_line.get(line, r) for line, r in zip(rejects["line"], rejects["raw"], strict=True)]
    return rejects.assign(raw=pd.Series(raw, index=rejects.index, dtype="str"))


def _corporate_action(row: dict, a: dict) -> dict | str:
    """A corporate action as a split row or a sale, or the reason it is not booked."""
    kind = a.get("type", "")
    description = a.get("description", "") or a.get("actionDescription", "")
    if kind in ("FS", "RS"):
        m = _SPLIT.search(description)
        if not m or not float(m[2]) > 0:
            return f"split {kind} without 'SPLIT a FOR b' in its description: not booked"
        return {
            **row,
            "trade_id": f"split:{row['account']}:{row['symbol']}:{row['datetime'][:10]}",
            "kind": "split",
            "ratio": repr(float(m[1]) / float(m[2])),
            "quantity": "",
            "price": "",
            "commission": "0",
        }
    proceeds, quantity = number(a.get("proceeds")), number(a.get("quantity"))
    if kind == "TC" and proceeds > 0 and quantity < 0:
        return {
            **row,
            "trade_id": row["trade_id"] or f"merger:{row['account']}:{row['symbol']}",
            "price": repr(proceeds / -quantity / number(row["multiplier"] or "1")),
            "commission": "0",
            "open_close": "C",
        }
    return f"corporate action type {kind or '?'} ({description[:60]}) is not booked; adjust the lots by hand"
