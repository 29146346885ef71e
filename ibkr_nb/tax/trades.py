"""The normalised trades frame every source ends in, and its validation.

One row per fill or corporate action:

    trade_id       str      unique within the history (IBKR's trade / exec id where given)
    account        str
    symbol         str      as IBKR prints it: "AAPL", "BRK B", "BMWd", "SPY 18MAR22 440.0 P"
    datetime       Timestamp, timezone-aware (America/New_York unless the source says otherwise)
    quantity       float    signed units: + bought, - sold (0 for a split row); contracts for options
    price          float    per unit, in `currency` (NaN for a split row)
    commission     float    >= 0, in `currency`
    currency       str      the trade's currency
    fx_rate        float    USD per one unit of `currency` (1 for USD; NaN when the source gives
                            no USD rate: the trade is still booked and its USD figures are NaN
                            until a rate is supplied with `with_usd_rates`)
    kind           str      "trade" or "split"
    ratio          float    new shares per old share for a split row (NaN for a trade)
    asset_category str      STK, OPT, WAR, FUT, ... (IBKR's codes; "STK" by default)
    multiplier     float    currency units per unit of price and quantity (100 for US equity
                            options; 1 by default)
    open_close     str      "O" opening, "C" closing, "CO" closing then opening the other
                            side, "" unknown (from IBKR's codes)
    fx_source      str      where `fx_rate` came from: "USD", "fxRateToBase", "ConversionRate",
                            "given", "none"
    action         str      "exercise", "assignment", "expiry" (IBKR codes Ex, A, Ep) or ""

The last five columns are optional for `match_lots`: a frame without them works.
A row that cannot be used comes back in `rejects` with the source line and a `reason`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
EXTRA_COLUMNS = ["asset_category", "multiplier", "open_close", "fx_source", "action"]
REALIZED_COLUMNS = [
    "trade_id",
    "account",
    "symbol",
    "datetime",
    "realized_pnl",
    "currency",
    "fx_rate_to_base",
]
CLOSED_LOT_COLUMNS = [
    "trade_id",
    "account",
    "symbol",
    "date_acquired",
    "quantity",
    "cost_basis",
    "realized_pnl",
]
OPENING_LOT_COLUMNS = [
    "trade_id",
    "closing_trade_id",
    "account",
    "symbol",
    "date_acquired",
    "quantity",
    "cost_basis",
    "currency",
]
CORRECTION_COLUMNS = [
    "source",
    "line",
    "trade_id",
    "account",
    "symbol",
    "datetime",
    "quantity",
    "price",
    "replaced_by",
    "reason",
]
UNEXPLAINED_COLUMNS = ["trade_id", "account", "symbol", "datetime", "quantity", "reason"]
REJECT_COLUMNS = ["source", "line", "symbol", "raw", "reason"]
DEFAULT_TZ = "America/New_York"
MAX_QUANTITY = 1e12  # units; anything larger is a broken row, not a trade
FIRST_YEAR, LAST_YEAR = 1900, 2200

# Tickers as IBKR prints them: "AAPL", "BRK B", "BRK.B", "BF/B", "RDS-A", "7203", "BMWd",
# "CHSPIz", option and warrant descriptions "SPY 18MAR22 440.0 P", "AAPL  240119C00190000".
SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-/ +&]{0,39}$")
_OFFSET_RE = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


class TradeFileError(ValueError):
    """A file that is not a readable trade history (the message says why and what to do)."""


def _frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns)


@dataclass(frozen=True)
class ImportResult:
    """Trades in the normalised frame, rejected rows with a reason, and what the statement
    says beyond its fills.

    trades: fills (see the module docstring), plus one opening row per lot the statement
      reveals for a position bought before the history starts (listed in `opening_lots`).
    rejects: source, line (1-based row or element number), symbol, raw, reason.
    ibkr_realized: IBKR's realized P&L per closing trade, in the trade's `currency`, with the
      statement's `fx_rate_to_base` (NaN when not given).
    ibkr_closed_lots: the lots IBKR closed for each closing trade (Flex `<Lot>`, Activity
      `ClosedLot`): quantity, cost_basis and realized_pnl in the trade currency.
    opening_lots: positions bought before the history starts, from the closed-lot detail:
      trade_id (of the synthesised opening row, "<closing trade id>:lot<k>"),
      closing_trade_id, account, symbol, date_acquired (date), quantity (signed: - for a short
      lot), cost_basis (total, trade currency, commissions included), currency. Their USD rate
      is the closing trade's (the statement gives none for the acquisition date).
    unexplained: sales (or covers) of more than the history holds that no closed-lot detail
      explains: trade_id, account, symbol, datetime, quantity (the part not explained, signed
      as the trade), reason. That part is left out of `trades`, never booked as a short.
    corrections: trades IBKR cancelled or corrected, left out of `trades` (see
      `corrections`): source, line, trade_id, account, symbol, datetime, quantity, price,
      replaced_by (the trade id of the rebooked trade, "" if none), reason.
    base_currency: account -> the account's base currency where the statement says it.
    fills: the statement's own fills before pre-history lots are worked out (what
      `history.merge_imports` combines); None means `trades`.
    """

    trades: pd.DataFrame
    rejects: pd.DataFrame
    source: str
    ibkr_realized: pd.DataFrame = field(default_factory=lambda: _frame(REALIZED_COLUMNS))
    ibkr_closed_lots: pd.DataFrame = field(default_factory=lambda: _frame(CLOSED_LOT_COLUMNS))
    opening_lots: pd.DataFrame = field(default_factory=lambda: _frame(OPENING_LOT_COLUMNS))
    unexplained: pd.DataFrame = field(default_factory=lambda: _frame(UNEXPLAINED_COLUMNS))
    corrections: pd.DataFrame = field(default_factory=lambda: _frame(CORRECTION_COLUMNS))
    base_currency: dict[str, str] = field(default_factory=dict)
    fills: pd.DataFrame | None = None


def text(values: pd.Series) -> pd.Series:
    """Stripped strings; "" for missing values."""
    if values.dtype == "str":
        return values.fillna("").str.strip()
    return values.astype(object).where(values.notna(), "").astype("str").str.strip()


def to_number(values: pd.Series) -> pd.Series:
    """Numbers from values such as 1000, "1,000" or "-1.25"; NaN where not a number."""
    if values.dtype.kind in "fiu":
        return values.astype(float)
    if values.dtype == "str":  # fast path: plain numbers parse as they are
        plain = pd.to_numeric(values, errors="coerce").astype(float)
        nan = np.flatnonzero(plain.isna().to_numpy())
        text_left = values.iloc[nan]
        retry = nan[(text_left.notna() & (text_left != "")).to_numpy(dtype=bool)]
        if len(retry):
            plain.iloc[retry] = to_number(values.iloc[retry].astype(object)).to_numpy()
        return plain
    cleaned = text(values).str.replace(",", "", regex=False)
    return pd.to_numeric(cleaned, errors="coerce").astype(float)


def per_unique(values: pd.Series, fn) -> pd.Series:
    """`fn` (Series -> Series) applied to the distinct values only, spread back to every row:
    fast for columns with few distinct values, and rows share one object per value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    mapped = fn(pd.Series(uniques, dtype=values.dtype if values.dtype == "str" else object))
    return pd.Series(mapped.to_numpy().take(codes), index=values.index, dtype=mapped.dtype)


def parse_datetimes(values: pd.Series, tz: str = DEFAULT_TZ) -> pd.Series:
    """Timezone-aware timestamps in `tz`; NaT where a value cannot be parsed or lies outside
    the years 1900-2200.

    Naive values ("2024-01-15", "2024-01-15 09:35:12", "2024-01-15, 09:35:12", or naive
    timestamps) are taken as `tz` local time; values with an offset ("...-05:00", "...Z") or already tz-aware are
    converted to `tz`.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(tz).dt.as_unit("ns")
    if values.dtype.kind == "M":
        return _localize(values, tz)
    if values.dtype != "str":
        return _parse_any(values, tz)
    out = _parse_usual(values, tz)  # fast path; the rest is cleaned and parsed value by value
    retry = out.isna() & values.notna()
    if retry.any():
        out[retry] = _parse_any(values[retry], tz)
    return out


_USUAL_FORMATS = ("%Y-%m-%d, %H:%M:%S", "%Y%m%d;%H%M%S")  # Activity CSV, Flex XML
_ISO_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")  # Flex dates as `flex` writes them, plain CSV


def _parse_usual(values: pd.Series, tz: str) -> pd.Series:
    """`parse_datetimes` for values in one of IBKR's usual layouts (zero-padded ISO ones
    included); NaT for the others."""
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")  # whole seconds
    for layout in (*_USUAL_FORMATS, *_ISO_FORMATS):  # zero-padded, as IBKR writes them
        todo = parsed.isna()
        if not todo.any():
            break
        parsed[todo] = _parse_digits(values[todo], layout)
    for layout in _USUAL_FORMATS:  # the others as strptime reads them (e.g. without padding)
        todo = parsed.isna()
        if not todo.any():
            break
        found = pd.to_datetime(values[todo], format=layout, errors="coerce")
        parsed[todo] = found.dt.as_unit("s")
    return _localize(parsed, tz)


def _localize(parsed: pd.Series, tz: str) -> pd.Series:
    """Naive timestamps as `tz` local time; NaT outside the years 1900-2200."""
    year = parsed.dt.year
    parsed = parsed.where((year >= FIRST_YEAR) & (year <= LAST_YEAR)).dt.as_unit("ns")
    return parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")


_FIELD_WIDTH = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}


def _parse_digits(values: pd.Series, layout: str) -> np.ndarray:
    """Times (datetime64[s]) of values written exactly as `layout` (strptime codes %Y %m %d
    and optionally %H %M %S, every field zero-padded), read as character codes in numpy; NaT for the
    others (other widths, non-digits, impossible dates such as 02-30)."""
    fields: dict[str, int] = {}
    literals: list[tuple[int, str]] = []
    width, i = 0, 0
    while i < len(layout):
        if layout[i] == "%":
            fields[layout[i + 1]] = width
            width += _FIELD_WIDTH[layout[i + 1]]
            i += 2
        else:
            literals.append((width, layout[i]))
            width, i = width + 1, i + 1
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[s]")
    fits = (values.str.len() == width).to_numpy(dtype=bool)
    if not fits.any():
        return out
    chars = values.to_numpy(dtype=object)[fits].astype(f"U{width}")
    codes = chars.view(np.uint32).reshape(-1, width)  # one column per character
    ok = np.ones(len(codes), dtype=bool)
    for at, literal in literals:
        ok &= codes[:, at] == ord(literal)
    number = {}
    for code, at in fields.items():
        number[code] = np.zeros(len(codes), dtype=np.int64)
        for column in range(at, at + _FIELD_WIDTH[code]):
            digit = codes[:, column] - np.uint32(ord("0"))  # below "0" wraps round: > 9
            ok &= digit <= 9
            number[code] = number[code] * 10 + digit
    y, m, d = number["Y"], number["m"], number["d"]
    hour, minute, second = (number.get(code, 0) for code in "HMS")
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    last = _MONTH_DAYS[np.clip(m, 0, 12)] + ((m == 2) & leap)
    ok &= (m >= 1) & (m <= 12) & (d >= 1) & (d <= last)
    ok &= (hour < 24) & (minute < 60) & (second < 60)
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "days_from_civil").
    y = y - (m <= 2)
    era = y // 400
    of_era = y - era * 400
    of_year = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    days = era * 146_097 + of_era * 365 + of_era // 4 - of_era // 100 + of_year - 719_468
    seconds = days * 86_400 + hour * 3600 + minute * 60 + second
    out[np.flatnonzero(fits)[ok]] = seconds[ok].view("datetime64[s]")
    return out


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _parse_any(values: pd.Series, tz: str) -> pd.Series:
    """`parse_datetimes` for any layout it accepts, cleaning each value first."""
    raw = text(values).str.replace(";", " ", regex=False).str.replace(", ", " ", regex=False)
    year = pd.to_numeric(raw.str.extract(r"^(\d{4})", expand=False), errors="coerce")
    raw = raw.where(~((year < FIRST_YEAR) | (year > LAST_YEAR)), "")
    has_offset = raw.str.contains(_OFFSET_RE)
    out = pd.Series(pd.NaT, index=values.index, dtype=f"datetime64[ns, {tz}]")
    if has_offset.any():
        aware = pd.to_datetime(raw[has_offset], errors="coerce", format="mixed", utc=True)
        out[has_offset] = aware.dt.tz_convert(tz).dt.as_unit("ns")
    naive = ~has_offset & (raw != "")
    if naive.any():
        parsed = pd.to_datetime(raw[naive], errors="coerce", format="ISO8601")  # fast path
        other = parsed.isna()
        if other.any():
            parsed[other] = pd.to_datetime(raw[naive][other], errors="coerce", format="mixed")
        out[naive] = _localize(parsed, tz)  # years again: non-ASCII digits pass the check above
    return out


def finalise(stage: pd.DataFrame, source: str, tz: str = DEFAULT_TZ) -> ImportResult:
    """Validate a staging frame (raw values per trade column plus `line`, `raw`) into trades.

    Every check runs on every row; a row failing several gets all reasons joined by "; ".
    """
    n = len(stage)
    empty = pd.Series([None] * n, index=stage.index, dtype=object)
    col = {c: stage.get(c, empty) for c in [*TRADE_COLUMNS, *EXTRA_COLUMNS]}
    kind = per_unique(col["kind"], lambda v: text(v).str.lower().replace("", "trade"))
    is_split = kind == "split"
    symbol = per_unique(col["symbol"], text)
    dt = parse_datetimes(col["datetime"], tz)
    quantity = to_number(col["quantity"])
    price = to_number(col["price"])
    numeric_commission = col["commission"].dtype.kind in "fiu"  # IBKR statements: numbers
    commission_text = None if numeric_commission else text(col["commission"])
    commission = (
        col["commission"].astype(float)
        if numeric_commission
        else to_number(commission_text.where(commission_text != "", "0"))
    )
    currency = per_unique(col["currency"], lambda v: text(v).str.upper().replace("", "USD"))
    if col["fx_rate"].dtype.kind in "fiu":
        fx_rate = col["fx_rate"].astype(float)
    else:
        fx_text = per_unique(col["fx_rate"], text)
        fx_rate = to_number(fx_text.where(fx_text != "", "nan"))
    fx_rate = fx_rate.where(currency != "USD", 1.0)
    fx_given = fx_rate.notna()
    source_text = per_unique(col["fx_source"], text)
    fx_source = source_text.where(source_text != "", "given").where(fx_given, "none")
    fx_source = per_unique(fx_source.where(currency != "USD", "USD"), lambda v: v)
    multiplier = to_number(col["multiplier"]).fillna(1.0)
    ratio = to_number(col["ratio"])
    trade_id = text(col["trade_id"])
    no_id = (trade_id == "").to_numpy()
    if no_id.any():
        trade_id[no_id] = source + ":" + stage["line"][no_id].astype("str")
    account = per_unique(col["account"], text)
    category = per_unique(col["asset_category"], lambda v: text(v).str.upper().replace("", "STK"))
    open_close = per_unique(col["open_close"], lambda v: text(v).str.upper())
    action = per_unique(col["action"], lambda v: text(v).str.lower())

    def finite(values: pd.Series) -> pd.Series:
        return pd.Series(np.isfinite(values.to_numpy()), index=values.index)

    def quoted(label: str, values: pd.Series):
        return lambda m: label + " '" + values[m] + "'"

    def not_a_number(label: str, values: pd.Series):
        if values.dtype.kind in "fiu":
            return f"{label} is missing or not a number"
        return lambda m: label + " '" + text(values[m]) + "' is not a number"

    def shown(label: str, values: pd.Series):
        return lambda m: label + values[m].astype("str")

    # (rows, reason): a reason is text, or a function of the rows' mask giving one per row
    # (built only for the rows it applies to).
    reasons: list[tuple[pd.Series, object]] = [
        (~kind.isin(["trade", "split"]), quoted("unknown kind", kind)),
        (
            dt.isna(),
            lambda m: "unparseable or out-of-range date '" + text(col["datetime"][m]) + "'",
        ),
        (
            ~per_unique(symbol, lambda v: v.str.match(SYMBOL_RE)),
            quoted("unknown symbol format", symbol),
        ),
        (
            ~is_split & quantity.isna(),
            not_a_number("quantity", col["quantity"]),
        ),
        (~is_split & quantity.notna() & ~finite(quantity), "quantity is infinite"),
        (~is_split & (quantity == 0), "zero quantity"),
        (
            finite(quantity) & (quantity.abs() >= MAX_QUANTITY),
            lambda m: "absurd quantity " + quantity[m].astype("str") + " (1e12 units or more)",
        ),
        (
            ~is_split & price.isna(),
            not_a_number("price", col["price"]),
        ),
        (~is_split & price.notna() & ~finite(price), "price is infinite"),
        (~is_split & (price < 0), shown("negative price ", price)),
        (
            commission.isna(),
            "commission is missing or not a number"
            if commission_text is None
            else lambda m: "commission '" + commission_text[m] + "' is not a number",
        ),
        (commission.notna() & ~finite(commission), "commission is infinite"),
        (commission < 0, shown("negative commission ", commission)),
        (fx_given & ~(finite(fx_rate) & (fx_rate > 0)), "fx_rate must be a positive number"),
        (~(finite(multiplier) & (multiplier > 0)), "multiplier must be a positive number"),
        (
            is_split & ~(finite(ratio) & (ratio > 0)),
            "split ratio must be a positive number of new shares per old share",
        ),
        (trade_id.duplicated(keep="first"), quoted("duplicate trade_id", trade_id)),
    ]
    reason = pd.Series("", index=stage.index, dtype="str")
    for mask, message in reasons:
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            continue
        piece = message(mask) if callable(message) else message
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
            "asset_category": category,
            "multiplier": multiplier,
            "open_close": open_close,
            "fx_source": fx_source,
            "action": action,
        }
    )[~bad].reset_index(drop=True)
    rejects = pd.DataFrame(
        {
            "source": source,
            "line": stage["line"][bad].astype(int),
            "symbol": symbol[bad],
            "raw": stage["raw"][bad].astype("str"),
            "reason": reason[bad],
        }
    ).reset_index(drop=True)
    return ImportResult(trades=trades, rejects=rejects, source=source)


def empty_trades() -> pd.DataFrame:
    """A trades frame with no rows and the normalised dtypes."""
    return finalise(pd.DataFrame({"line": [], "raw": []}), "empty").trades


def with_usd_rates(trades: pd.DataFrame, rates: pd.DataFrame) -> pd.DataFrame:
    """`trades` with the USD rates the source did not give filled in from `rates` (columns
    date, currency, usd_per_unit): for each trade without a rate, that currency's rate on the
    trade date or the latest before it (`fx_source` "given"). Rates the source gave stay."""
    missing = {"date", "currency", "usd_per_unit"} - set(rates.columns)
    if missing:
        raise ValueError(
            f"the rates table lacks {', '.join(sorted(missing))}; give date,currency,usd_per_unit."
        )
    out = trades.copy()
    need = out["fx_rate"].isna()
    if not need.any():
        return out
    table = pd.DataFrame(
        {
            "day": pd.to_datetime(rates["date"]).astype("datetime64[ns]"),
            "currency": rates["currency"].astype(str).str.upper(),
            "rate": pd.to_numeric(rates["usd_per_unit"], errors="coerce"),
        }
    ).dropna()
    table = table[table["rate"] > 0].sort_values("day")
    wanted = pd.DataFrame(
        {
            "day": out.loc[need, "datetime"]
            .dt.tz_localize(None)
            .dt.normalize()
            .astype("datetime64[ns]"),
            "currency": out.loc[need, "currency"],
            "row": np.flatnonzero(need.to_numpy()),
        }
    ).sort_values("day")
    found = pd.merge_asof(wanted, table, on="day", by="currency", direction="backward")
    found = found.dropna(subset=["rate"])
    rows = found["row"].to_numpy()
    out.iloc[rows, out.columns.get_loc("fx_rate")] = found["rate"].to_numpy()
    if "fx_source" in out:
        out.iloc[rows, out.columns.get_loc("fx_source")] = "given"
    return out
