"""AI trade decisions: one schema, validation that rejects bad rows with a reason, and engines.

A decision says what a model or a person wants for one ticker at one moment:

=============== ============================================================================
decision_id     unique key; it becomes the order's ``orderRef`` (the idempotency key)
ticker          upper-case symbol
decision        BUY / SELL / HOLD (read case-insensitively)
confidence      0-100 (percent)
current_price   the price the decision was made at, > 0, account currency
stop_loss       optional; below the price for a BUY, above it for a SELL
take_profit     optional; above the price for a BUY, below it for a SELL
reasoning       optional text
created_at      tz-aware UTC timestamp (default: now)
=============== ============================================================================

``load_decisions`` and ``decide`` return ``(valid, rejects)``; they never raise on a bad row.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from .frames import EXCHANGE_TZ, SESSION_CLOSE

DECISION_COLUMNS = [
    "decision_id",
    "ticker",
    "decision",
    "confidence",
    "current_price",
    "stop_loss",
    "take_profit",
    "reasoning",
    "created_at",
]
REQUIRED = ("decision_id", "ticker", "decision", "confidence", "current_price")
ACTIONS = ("BUY", "SELL", "HOLD")
REJECT_COLUMNS = [*DECISION_COLUMNS, "row", "reason"]
TICKER_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-/ ]{0,19}$")
MAX_PRICE = 1e7  # no stock trades above this; a larger "price" is a unit or typing error

Decisions = tuple[pd.DataFrame, pd.DataFrame]


class DecisionSourceError(ValueError):
    """The source as a whole could not be read (missing file, unknown format, bad table)."""


def _read(source, table: str | None) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source.copy()
    if isinstance(source, list | tuple):
        return pd.DataFrame(list(source))
    if hasattr(source, "execute") and table:  # a duckdb connection
        return source.execute(f'SELECT * FROM "{table}"').df()
    path = Path(source)
    if not path.exists():
        raise DecisionSourceError(f"Decisions file {path} does not exist.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".duckdb", ".db"):
            if not table:
                raise DecisionSourceError(f"{path} is a DuckDB file: pass table='...' as well.")
            with duckdb.connect(str(path), read_only=True) as con:
                return con.execute(f'SELECT * FROM "{table}"').df()
        if suffix == ".parquet":  # through DuckDB: no pyarrow needed
            with duckdb.connect() as con:
                return con.execute("SELECT * FROM read_parquet(?)", [str(path)]).df()
        if suffix in (".json", ".jsonl", ".ndjson"):
            return _read_json(path.read_text(encoding="utf-8"))
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False)
    except DecisionSourceError:
        raise
    except Exception as exc:  # pandas/duckdb/json give many error types; say which file
        raise DecisionSourceError(f"Could not read decisions from {path}: {exc}") from None
    raise DecisionSourceError(
        f"Decisions file {path} has an unknown type {suffix!r}; use .csv, .json, .jsonl, "
        ".parquet or a DuckDB file with table=."
    )


def _read_json(text: str) -> pd.DataFrame:
    stripped = text.strip()
    if not stripped:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    if stripped[0] == "[":
        data = json.loads(stripped)
    elif stripped[0] == "{" and "\n" not in stripped:
        data = [json.loads(stripped)]
    else:
        data = [json.loads(line) for line in stripped.splitlines() if line.strip()]
    return pd.DataFrame([d if isinstance(d, dict) else {"decision_id": d} for d in data])


def as_numbers(values: pd.Series) -> pd.Series:
    """Floats from any column; what is not a number is NaN."""
    return pd.to_numeric(values.astype(object).where(values.notna(), None), errors="coerce")


def as_text(values: pd.Series) -> pd.Series:
    """Stripped text from any column; a missing value is ""."""
    if isinstance(values.dtype, pd.StringDtype):  # already text: no conversion
        return values.fillna("").str.strip()
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


def _given(values: pd.Series) -> pd.Series:
    """True where a value is present: not missing, and not blank text."""
    kind = values.dtype
    if pd.api.types.is_numeric_dtype(kind) or pd.api.types.is_datetime64_any_dtype(kind):
        return values.notna()
    return as_text(values) != ""


def load_decisions(
    source,
    *,
    table: str | None = None,
    symbols: Iterable[str] | None = None,
    now: datetime | None = None,
) -> Decisions:
    """Read and validate decisions; returns ``(valid, rejects)``.

    ``source``: a DataFrame, a list of dicts, a path to CSV / JSON (a list or JSON lines) /
    Parquet, a DuckDB file with ``table=``, or a duckdb connection with ``table=``. ``symbols``:
    the tradable universe; a ticker outside it is rejected. Every bad row lands in ``rejects``
    with its 1-based ``row`` and every ``reason`` (joined with "; "); the rest is ``valid``,
    typed, with ``created_at`` in UTC (``now`` where missing).
    """
    raw = _read(source, table).reset_index(drop=True)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    return validate_decisions(raw, symbols=symbols, now=now)


def validate_decisions(
    raw: pd.DataFrame, *, symbols: Iterable[str] | None = None, now: datetime | None = None
) -> Decisions:
    """The checks of ``load_decisions`` on a frame already read (vectorized)."""
    raw = raw.reset_index(drop=True)  # e.g. concatenated frames repeat labels
    n = len(raw)
    col = {c: raw[c] if c in raw else pd.Series([None] * n, dtype=object) for c in DECISION_COLUMNS}
    reason = np.full(n, "", dtype=object)

    def fail(mask, text: str) -> None:
        """Append ``text`` to the reason of each row in ``mask`` (vectorized)."""
        mask = np.asarray(mask, dtype=bool)
        more = mask & (reason != "")
        reason[more] += "; "
        reason[mask] += text

    decision_id = as_text(col["decision_id"])
    ticker = as_text(col["ticker"]).str.upper()
    action = as_text(col["decision"]).str.upper()
    confidence = as_numbers(col["confidence"])
    price = as_numbers(col["current_price"])
    stop = as_numbers(col["stop_loss"])
    target = as_numbers(col["take_profit"])
    texts = {"decision_id": decision_id, "ticker": ticker, "decision": action}
    given = {
        name: texts[name] != "" if name in texts else _given(col[name])
        for name in DECISION_COLUMNS
        if name != "reasoning"
    }
    for name in REQUIRED:
        fail(~given[name], f"missing {name}")

    fail((decision_id != "") & decision_id.duplicated(keep=False), "duplicate decision_id")
    fail((ticker != "") & ~ticker.str.match(TICKER_RE), "ticker is not a symbol")
    if symbols is not None:
        known = {s.strip().upper() for s in symbols}
        fail((ticker != "") & ticker.str.match(TICKER_RE) & ~ticker.isin(known), "unknown symbol")
    fail((action != "") & ~action.isin(ACTIONS), "decision must be BUY, SELL or HOLD")
    fail(given["confidence"] & confidence.isna(), "confidence is not a number")
    fail(confidence.notna() & ~confidence.between(0, 100), "confidence outside 0-100")
    fail(given["current_price"] & price.isna(), "current_price is not a number")
    fail(np.isinf(price), "current_price is infinite")
    fail(price.notna() & ~np.isinf(price) & (price <= 0), "current_price must be > 0")
    fail(price.notna() & ~np.isinf(price) & (price > MAX_PRICE), "current_price is absurd")
    for name, values in (("stop_loss", stop), ("take_profit", target)):
        fail(
            given[name] & (values.isna() | np.isinf(values) | (values <= 0)), f"{name} must be > 0"
        )
    buy, sell = action == "BUY", action == "SELL"
    fail(buy & (stop >= price), "stop_loss must be below current_price for a BUY")
    fail(sell & (stop <= price), "stop_loss must be above current_price for a SELL")
    fail(buy & (target <= price), "take_profit must be above current_price for a BUY")
    fail(sell & (target >= price), "take_profit must be below current_price for a SELL")

    created = _timestamps(col["created_at"], ~given["created_at"], now)
    fail(created.isna(), "created_at is not a date and time")

    bad = reason != ""
    typed = pd.DataFrame(
        {
            "decision_id": decision_id,
            "ticker": ticker,
            "decision": action,
            "confidence": confidence.astype(float),
            "current_price": price.astype(float),
            "stop_loss": stop.astype(float),
            "take_profit": target.astype(float),
            "reasoning": as_text(col["reasoning"]),
            "created_at": created,
        },
        columns=DECISION_COLUMNS,
    )
    valid = typed[~bad].reset_index(drop=True)
    rejects = raw[bad].copy()
    for c in DECISION_COLUMNS:
        if c not in rejects:
            rejects[c] = None
    rejects["row"] = np.flatnonzero(bad) + 1
    rejects["reason"] = reason[bad]
    extra = [c for c in rejects.columns if c not in REJECT_COLUMNS]
    return valid, rejects[REJECT_COLUMNS + extra].reset_index(drop=True)


def _timestamps(values: pd.Series, missing: pd.Series, now: datetime | None) -> pd.Series:
    """UTC timestamps; a ``missing`` value is ``now``; a naive time is taken as UTC."""
    default = pd.Timestamp(now or datetime.now(UTC))
    default = default.tz_localize("UTC") if default.tzinfo is None else default.tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):  # already typed: no parsing
        out = pd.to_datetime(values, utc=True)
    else:
        text = values.astype(object).where(~missing, None)
        out = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
    # "1;" parses as the year 1: a time nanoseconds cannot hold is no decision's time
    inside = (out >= pd.Timestamp.min.tz_localize("UTC")) & (
        out <= pd.Timestamp.max.tz_localize("UTC")
    )
    out = out.where(inside).astype("datetime64[ns, UTC]")
    out[missing] = default
    return out


# -- engines ---------------------------------------------------------------------------------

Engine = Callable[[str], Any]
"""A decision engine: ``engine(ticker)`` returns a mapping with the decision's fields
(``decision``, ``confidence``, ``current_price``, optionally ``stop_loss``, ``take_profit``,
``reasoning``, ``decision_id``, ``created_at``), or ``None`` for no opinion."""


def decide(
    tickers: Iterable[str],
    engine: Engine,
    *,
    timeout: float = 30.0,
    workers: int = 4,
    symbols: Iterable[str] | None = None,
    now: datetime | None = None,
) -> Decisions:
    """Ask ``engine`` for one decision per ticker; returns ``(valid, rejects)``.

    Each call runs in a worker thread with ``timeout`` seconds. An engine that raises, times
    out, returns ``None`` or returns something that is not a mapping of the decision's fields
    yields a reject for that ticker only. A missing ``decision_id`` becomes
    ``"<ticker>-<created_at:%Y%m%dT%H%M%S>"`` so that the same run gives the same ids.
    """
    tickers = [t.strip().upper() for t in tickers]
    now = now or datetime.now(UTC)
    rows: list[dict] = []
    failures: list[dict] = []
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ibkr-nb-engine")
    try:
        futures = [(t, pool.submit(engine, t)) for t in tickers]
        for ticker, future in futures:
            try:
                answer = future.result(timeout=timeout)
            except FutureTimeout:
                failures.append(_engine_failure(ticker, f"engine timed out after {timeout:g} s"))
                continue
            except Exception as exc:  # a user's engine can raise anything; it is that row's reject
                failures.append(_engine_failure(ticker, f"engine raised {exc!r}"))
                continue
            if not isinstance(answer, Mapping):
                failures.append(
                    _engine_failure(ticker, f"engine returned {type(answer).__name__}, not a dict")
                )
                continue
            row = dict(answer)
            row.setdefault("ticker", ticker)
            try:
                created = pd.Timestamp(row.get("created_at") or now)
                created = created.tz_localize("UTC") if created.tzinfo is None else created
                if pd.isna(created):
                    raise ValueError("no time")
            except (ValueError, TypeError, OverflowError):
                failures.append(
                    _engine_failure(
                        ticker, f"engine returned created_at={row['created_at']!r}: not a time"
                    )
                )
                continue
            row.setdefault("decision_id", f"{ticker}-{created.tz_convert('UTC'):%Y%m%dT%H%M%S}")
            row["created_at"] = created
            rows.append(row)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    valid, rejects = validate_decisions(
        pd.DataFrame(rows, columns=list(dict.fromkeys([*DECISION_COLUMNS, *_keys(rows)]))),
        symbols=symbols,
        now=now,
    )
    if failures:
        extra = pd.DataFrame(failures)
        for c in REJECT_COLUMNS:
            if c not in extra:
                extra[c] = None
        rejects = pd.concat([rejects, extra[REJECT_COLUMNS]], ignore_index=True)
    return valid, rejects


def _keys(rows: list[dict]) -> list[str]:
    return [k for row in rows for k in row]


def _engine_failure(ticker: str, reason: str) -> dict:
    return {"ticker": ticker, "reason": reason}


def momentum_engine(
    closes: pd.DataFrame,
    *,
    lookback: int = 20,
    threshold: float = 0.02,
    stop_atr: float = 2.0,
    reward_risk: float = 2.0,
    now: datetime | None = None,
) -> Engine:
    """A deterministic example engine: price momentum over ``lookback`` sessions.

    ``closes``: daily bars with ``symbol``, ``date`` and ``close`` (e.g.
    ``Session.daily_bars(tickers)``). BUY when the ``lookback`` return is above ``threshold``,
    SELL when below ``-threshold``, else HOLD; confidence grows with the size of the move
    (50 at the threshold, 95 at five times it). A BUY or SELL gets a stop ``stop_atr`` average
    daily ranges away and a take-profit at ``reward_risk`` times that distance. The decision
    is stamped at the last bar's close (16:00 New York), or ``now`` if that is earlier (a session
    still trading), so re-running on the same bars gives the same ids and no look-ahead.
    """
    cap = pd.Timestamp(now).tz_convert("UTC") if now is not None else None
    by_symbol = {s: g.sort_values("date") for s, g in closes.groupby("symbol", sort=False)}

    def engine(ticker: str) -> dict | None:
        bars = by_symbol.get(ticker)
        if bars is None or len(bars) <= lookback:
            raise ValueError(f"fewer than {lookback + 1} daily bars for {ticker}")
        close = bars["close"].to_numpy(float)
        move = close[-1] / close[-1 - lookback] - 1
        day_range = float(np.mean(np.abs(np.diff(close[-lookback - 1 :]))))
        strength = min(abs(move) / threshold, 5.0)
        action = "HOLD" if strength < 1 else ("BUY" if move > 0 else "SELL")
        confidence = round(min(95.0, 50 + (strength - 1) * 11.25), 1) if action != "HOLD" else 50.0
        price = round(float(close[-1]), 2)
        sign = 1 if action == "BUY" else -1
        distance = max(round(stop_atr * day_range, 2), 0.01)
        last = pd.Timestamp(bars["date"].iloc[-1])
        day = last.tz_localize(None) if last.tzinfo else last
        stamp = (day.normalize() + SESSION_CLOSE).tz_localize(EXCHANGE_TZ)
        stamp = stamp.tz_convert("UTC") if cap is None else min(stamp.tz_convert("UTC"), cap)
        return {
            "decision_id": f"mom{lookback}-{ticker}-{last:%Y%m%d}",
            "decision": action,
            "confidence": confidence,
            "current_price": price,
            "stop_loss": math.nan if action == "HOLD" else round(price - sign * distance, 2),
            "take_profit": math.nan
            if action == "HOLD"
            else round(price + sign * reward_risk * distance, 2),
            "reasoning": f"{lookback}-session return {move:+.2%} (threshold {threshold:.0%})",
            "created_at": stamp,
        }

    return engine
