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
- A cancellation (`buySell` "BUY (Ca.)" / "SELL (Ca.)", or code "Ca" in `notes`) removes
  itself and the trade it cancels (`origTradeID`, else the latest same trade).
- `<CorporateAction>`: forward and reverse splits (type FS / RS, "SPLIT a FOR b") become
  split rows; a cash merger (TC) with proceeds is a sale; other types go to rejects.
- `CASH` (currency conversions), futures and options on futures are not booked (rejects
  with the reason).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd

from ibkr_nb.tax.ibkr_csv import (
    STAGE_COLUMNS,
    action_from_codes,
    drop_cancelled,
    open_close_from_codes,
    stage_result,
)
from ibkr_nb.tax.trades import DEFAULT_TZ, ImportResult, TradeFileError

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


def _base_currency(statement: ET.Element) -> str:
    info = statement.find(".//AccountInformation")
    if info is not None and info.get("currency"):
        return info.get("currency", "").upper()
    rates: dict[str, set[str]] = {}
    for el in statement.iter("Trade"):
        rates.setdefault(el.get("currency", ""), set()).add(el.get("fxRateToBase", ""))
    ones = [c for c, r in rates.items() if r and all(_float(x) == 1 for x in r)]
    if len(ones) == 1:
        return ones[0]
    targets = {el.get("toCurrency", "") for el in statement.iter("ConversionRate")}
    return targets.pop() if len(targets) == 1 else ""


def _float(value: str | None) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _usd_rates(statement: ET.Element, base: str, dayfirst: bool) -> dict[str, float]:
    """Base-currency units per USD by trade date (yyyy-mm-dd) from the statement."""
    out: dict[str, float] = {}
    for el in statement.iter("Trade"):
        if el.get("currency") == "USD" and _float(el.get("fxRateToBase")) > 0:
            date = flex_datetime(el.get("tradeDate") or el.get("dateTime", ""), dayfirst)[:10]
            out[date] = _float(el.get("fxRateToBase"))
    for el in statement.iter("ConversionRate"):
        if el.get("fromCurrency") == "USD" and el.get("toCurrency") == base:
            out[flex_datetime(el.get("reportDate", ""), dayfirst)[:10]] = _float(el.get("rate"))
    return out


def _usd_rate(currency: str, to_base: float, base: str, usd_in_base: float) -> tuple[str, str]:
    """(fx_rate text, fx_source) of one trade: USD per unit of `currency`."""
    if currency == "USD":
        return "1", "USD"
    if base == "USD" and to_base > 0:
        return repr(to_base), "fxRateToBase"
    if base and to_base > 0 and usd_in_base > 0:
        return repr(to_base / usd_in_base), "ConversionRate"
    return "", "none"


def from_flex_xml(text: str | bytes, source: str = "flex", tz: str = DEFAULT_TZ) -> ImportResult:
    """Trades from an IBKR Flex Query XML (see the module docstring)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TradeFileError(
            f"{source}: not valid XML ({exc}); export the Flex query as XML."
        ) from exc
    statements = list(root.iter("FlexStatement")) or [root]
    rows, realized, lots, refused, cancels = [], [], [], [], []
    base: dict[str, str] = {}
    line = 0
    for statement in statements:
        dates = [el.get(a, "") for el in statement.iter() for a in _DATE_ATTRS if el.get(a)]
        dayfirst = day_first(dates)
        currency_base = _base_currency(statement)
        if statement.get("accountId") and currency_base:
            base[statement.get("accountId", "")] = currency_base
        usd_in_base = _usd_rates(statement, currency_base, dayfirst)
        trades = [
            el
            for el in statement.iter("Trade")
            if el.get("levelOfDetail", "EXECUTION") not in _SUMMARY_LEVELS
        ]
        if not any(el.get("levelOfDetail") == "EXECUTION" for el in trades):
            trades = [
                el for el in statement.iter("Trade") if el.get("levelOfDetail") == "ORDER"
            ] or trades
        wanted = set(map(id, trades))
        last_trade_id = ""
        for el in statement.iter():
            if el.tag not in ("Trade", "Lot", "CorporateAction"):
                continue
            line += 1
            a = el.attrib
            if el.tag == "Lot" or a.get("levelOfDetail") == "CLOSED_LOT":
                lots.append(
                    {
                        "trade_id": a.get("tradeID") or last_trade_id,
                        "account": a.get("accountId", ""),
                        "symbol": a.get("symbol", ""),
                        "date_acquired": flex_datetime(a.get("openDateTime", ""), dayfirst)[:10],
                        "quantity": a.get("quantity", ""),
                        "cost_basis": a.get("cost", ""),
                        "realized_pnl": a.get("fifoPnlRealized", ""),
                    }
                )
                continue
            if el.tag == "Trade" and id(el) not in wanted:
                continue
            currency = a.get("currency", "USD").upper()
            to_base = _float(a.get("fxRateToBase"))
            when = flex_datetime(a.get("dateTime") or a.get("tradeDate", ""), dayfirst)
            fx, fx_source = _usd_rate(
                currency, to_base, currency_base, usd_in_base.get(when[:10], np.nan)
            )
            trade_id = a.get("tradeID") or a.get("transactionID") or a.get("ibExecID") or ""
            row = {
                "trade_id": trade_id,
                "account": a.get("accountId", ""),
                "symbol": a.get("symbol", ""),
                "datetime": when,
                "quantity": a.get("quantity", ""),
                "price": a.get("tradePrice", ""),
                "commission": repr(-_float(a.get("ibCommission")))
                if _float(a.get("ibCommission")) == _float(a.get("ibCommission"))
                else "0",
                "currency": currency,
                "fx_rate": fx,
                "fx_source": fx_source,
                "asset_category": a.get("assetCategory", "STK"),
                "multiplier": a.get("multiplier") or "1",
                "open_close": "",
                "line": line,
                "raw": " ".join(f'{k}="{v}"' for k, v in a.items()),
            }
            pnl = _float(a.get("fifoPnlRealized"))
            if el.tag == "CorporateAction":
                booked = _corporate_action(row, a)
                if isinstance(booked, str):
                    refused.append((row, booked))
                    continue
                row = booked
            else:
                last_trade_id = trade_id
                codes = {c for c in re.split(r"[;,]", a.get("notes", "")) if c}
                if "(Ca.)" in a.get("buySell", "") or "Ca" in codes:
                    cancels.append({**row, "cancels": _orig_trade_id(a)})
                    continue
                row["open_close"] = open_close_from_codes(
                    set(a.get("openCloseIndicator", "").replace(";", "")), pnl
                )
                row["action"] = action_from_codes(codes)
            rows.append(row)
            if "C" in row["open_close"]:  # NaN P/L where IBKR gives none
                realized.append(
                    {
                        "trade_id": trade_id,
                        "account": row["account"],
                        "symbol": row["symbol"],
                        "datetime": when,
                        "realized_pnl": pnl,
                        "currency": currency,
                        "fx_rate_to_base": to_base,
                    }
                )
    if not rows and not lots and not refused and not cancels:
        raise TradeFileError(
            f"{source}: the Flex XML has no <Trade> rows; add the Trades section to the Flex query."
        )
    splits = {r["trade_id"] for r in rows if r.get("kind") == "split"}
    rows = [
        r
        for r in rows
        if r.get("kind") != "split" or r["trade_id"] in splits and not splits.discard(r["trade_id"])
    ]
    frame, cancelled = drop_cancelled(
        pd.DataFrame(rows, columns=STAGE_COLUMNS),
        pd.DataFrame(cancels, columns=[*STAGE_COLUMNS, "cancels"]),
    )
    kept = set(frame["trade_id"])
    realized = [r for r in realized if r["trade_id"] in kept]
    return stage_result(frame, realized, lots, source, tz, base, [*refused, *cancelled])


def _orig_trade_id(a: dict) -> str:
    orig = a.get("origTradeID", "")
    return "" if orig in ("", "0") else orig


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
    proceeds, quantity = _float(a.get("proceeds")), _float(a.get("quantity"))
    if kind == "TC" and proceeds > 0 and quantity < 0:
        return {
            **row,
            "trade_id": row["trade_id"] or f"merger:{row['account']}:{row['symbol']}",
            "price": repr(proceeds / -quantity / _float(row["multiplier"] or "1")),
            "commission": "0",
            "open_close": "C",
        }
    return f"corporate action type {kind or '?'} ({description[:60]}) is not booked; adjust the lots by hand"
