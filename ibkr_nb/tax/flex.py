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
import xml.etree.ElementTree as ET
from pathlib import Path

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
    REALIZED_COLUMNS,
    ImportResult,
    TradeFileError,
    per_unique,
)

_SUMMARY_LEVELS = {"ORDER", "SYMBOL_SUMMARY", "ASSET_SUMMARY", "CLOSED_LOT"}
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
_CANCEL_TYPES = ("TradeCancel", "FracShareCancel")


class _Statement:
    """One `<FlexStatement>` read as it streams by: trade rows in columns, the rest as rows."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.info_currency = ""
        self.conversions: list[tuple[str, str, str, float]] = []  # date, from, to, rate
        self.cols: dict[str, list] = {
            k: [] for k in (*_TEXT, *_NUMBERS, "trade_id", "when", "line", "level")
        }
        self.lots: list[dict] = []
        self.special: list[tuple[dict, int]] = []  # corporate actions (attributes, line)
        self.last_trade = ("", 0)  # (trade id, line) of the latest trade row: <Lot> owner

    def add_trade(self, a: dict, line: int, intern: dict) -> None:
        cols = self.cols
        for k in _TEXT:
            v = a.get(k, "")
            cols[k].append(intern.setdefault(v, v))
        for k in _NUMBERS:
            cols[k].append(number(a.get(k)))
        trade_id = a.get("tradeID") or a.get("transactionID") or a.get("ibExecID") or ""
        self.last_trade = (trade_id, line)
        cols["trade_id"].append(trade_id)
        cols["when"].append(a.get("dateTime") or a.get("tradeDate", ""))
        cols["line"].append(line)
        cols["level"].append(
            intern.setdefault(a.get("levelOfDetail", ""), a.get("levelOfDetail", ""))
        )

    def frame(self) -> pd.DataFrame:
        rows = pd.DataFrame(
            {
                k: pd.Series(v, dtype=float if k in _NUMBERS else "int64" if k == "line" else "str")
                for k, v in self.cols.items()
            }
        )
        executions = rows["level"].isin(["EXECUTION", ""])
        if not (rows["level"] == "EXECUTION").any() and (rows["level"] == "ORDER").any():
            executions = rows["level"] == "ORDER"
        return rows[executions].reset_index(drop=True)


def _statements(data, source: str) -> list[_Statement]:
    """Stream the XML: one `_Statement` per `<FlexStatement>` (or one for the whole file)."""
    statements: list[_Statement] = []
    current: _Statement | None = None
    intern: dict[str, str] = {}
    line = 0
    open_elements: list[ET.Element] = []
    try:
        for event, el in ET.iterparse(data, events=("start", "end")):
            if event == "start":
                open_elements.append(el)
                if el.tag == "FlexStatement":
                    current = _Statement(el.get("accountId", ""))
                    statements.append(current)
                continue
            open_elements.pop()
            if current is None:
                current = _Statement("")
                statements.append(current)
            tag, a = el.tag, el.attrib
            if tag == "AccountInformation" and a.get("currency"):
                current.info_currency = a["currency"].upper()
            elif tag == "ConversionRate":
                current.conversions.append(
                    (
                        a.get("reportDate", ""),
                        a.get("fromCurrency", ""),
                        a.get("toCurrency", ""),
                        number(a.get("rate")),
                    )
                )
            elif tag in ("Trade", "Lot", "CorporateAction"):
                line += 1
                level = a.get("levelOfDetail", "")
                if tag == "Lot" or level == "CLOSED_LOT":
                    owner, owner_line = current.last_trade
                    trade_id = a.get("tradeID") or owner
                    if trade_id != owner:
                        owner_line = 0  # the trade it belongs to is not the one above
                    current.lots.append({**a, "tradeID": trade_id, "owner_line": owner_line})
                elif tag == "CorporateAction":
                    current.special.append((dict(a), line))
                elif level not in ("SYMBOL_SUMMARY", "ASSET_SUMMARY"):
                    current.add_trade(a, line, intern)
            el.clear()  # read: drop it, so memory holds the kept columns only
            if open_elements:
                open_elements[-1].remove(el)
    except ET.ParseError as exc:
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


def _stage(st: _Statement) -> tuple[pd.DataFrame, list, list, str]:
    """A statement's trade rows (cancellations included) as a staging frame for
    `apply_corrections` and `finalise`, plus its closed lots, (row, reason) refusals and
    base currency."""
    rows = st.frame()
    dates = [*rows["when"], *(a.get("openDateTime", "") for a in st.lots)]
    dates += [a.get("dateTime") or a.get("reportDate", "") for a, _ in st.special]
    dayfirst = day_first([d for d in dates if "/" in d])
    when = pd.Series([flex_datetime(v, dayfirst) for v in rows["when"]], dtype="str")
    base = _base_currency(st, rows)
    usd_in_base = _usd_rates(st, rows, base, when.str[:10])
    to_base = rows["fxRateToBase"]
    per_usd = when.str[:10].map(usd_in_base).astype(float)
    currency = rows["currency"].str.upper().replace("", "USD")
    is_usd, base_usd = (currency == "USD").to_numpy(), base == "USD"
    known = (to_base > 0).to_numpy()
    fx = np.select(
        [is_usd, base_usd & known, (base != "") & known & (per_usd > 0).to_numpy()],
        [1.0, to_base, to_base / per_usd],
        np.nan,
    )
    fx_source = np.select(
        [is_usd, base_usd & known, ~np.isnan(fx)], ["USD", "fxRateToBase", "ConversionRate"], "none"
    )
    oc = rows["openCloseIndicator"].str.replace(";", "", regex=False)
    has_c, has_o = oc.str.contains("C", regex=False), oc.str.contains("O", regex=False)
    pnl = rows["fifoPnlRealized"]
    open_close = np.select(
        [has_c & has_o, has_c, has_o, (pnl.fillna(0) != 0).to_numpy()], ["CO", "C", "O", "C"], ""
    )
    codes = rows["notes"]
    cancel = (
        has_code(codes, "Ca")
        | per_unique(rows["buySell"], lambda v: v.str.contains("(Ca.)", regex=False)).to_numpy()
        | rows["transactionType"].isin(_CANCEL_TYPES).to_numpy()
    )
    correction = has_code(codes, "Co") | (rows["transactionType"] == "TradeCorrect").to_numpy()
    orig_id = rows["origTradeID"].where(rows["origTradeID"] != "0", "")
    action = np.select(
        [has_code(codes, "Ex"), has_code(codes, "A"), has_code(codes, "Ep")],
        list(ACTIONS.values()),
        "",
    )
    commission = -rows["ibCommission"].fillna(0.0)
    stage = pd.DataFrame(
        {
            "trade_id": rows["trade_id"],
            "account": rows["accountId"],
            "symbol": rows["symbol"],
            "datetime": when,
            "quantity": rows["quantity"],
            "price": rows["tradePrice"],
            "commission": commission,
            "currency": currency,
            "fx_rate": fx,
            "fx_source": fx_source,
            "asset_category": rows["assetCategory"].replace("", "STK"),
            "multiplier": rows["multiplier"].fillna(1.0),
            "open_close": open_close,
            "action": action,
            "kind": "trade",
            "ratio": np.nan,
            "line": rows["line"],
            "raw": 'Trade tradeID="'
            + rows["trade_id"]
            + '" symbol="'
            + rows["symbol"]
            + '" dateTime="'
            + rows["when"]
            + '"',
            "realized_pnl": pnl,
            "cancel": cancel,
            "correction": correction,
            "orig_id": orig_id,
            "orig_price": rows["origTradePrice"],
            "fx_rate_to_base": to_base,
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
    extra, refused = [], []
    for a, line in st.special:
        day = flex_datetime(
            a.get("dateTime") or a.get("tradeDate") or a.get("reportDate", ""), dayfirst
        )
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
    if extra:
        stage = pd.concat([stage, pd.DataFrame(extra)], ignore_index=True)
    return stage, lots, refused, base


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
    stages, lots, refused = [], [], []
    base: dict[str, str] = {}
    for st in statements:
        stage, closed, bad, currency = _stage(st)
        stages.append(stage)
        lots += closed
        refused += bad
        if st.account and currency:
            base[st.account] = currency
    frame = pd.concat(stages, ignore_index=True) if stages else pd.DataFrame(columns=STAGE_COLUMNS)
    if frame.empty and not lots and not refused:
        raise TradeFileError(
            f"{source}: the Flex XML has no <Trade> rows; add the Trades section to the Flex query."
        )
    if "cancel" in frame:
        frame, corrected, cancelled = apply_corrections(frame)
        gone = {r["line"] for r in corrected}
        lots = [lot for lot in lots if lot["owner_line"] not in gone]
    else:
        corrected, cancelled = [], []
    closing = frame["open_close"].astype("str").str.contains("C", regex=False).to_numpy()
    pnl = frame[closing][[*REALIZED_COLUMNS]]
    return stage_result(frame, pnl, lots, source, tz, base, [*refused, *cancelled], corrected)


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
