"""Trade histories from IBKR and plain files, normalised to one trades frame.

The frame and `ImportResult` are described in `ibkr_nb.tax.trades`; IBKR's CSV statements
are read by `ibkr_csv`, Flex XML by `flex`; positions from before the history and several
files merged into one history by `history`. This module reads plain CSV and the session's
executions, and `load_trades` picks the reader from a file's content.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from ibkr_nb.tax.flex import from_flex_xml
from ibkr_nb.tax.history import merge_imports, with_prior_positions
from ibkr_nb.tax.ibkr_csv import from_activity_csv, from_transaction_history, statement_kind
from ibkr_nb.tax.trades import (
    DEFAULT_TZ,
    EXTRA_COLUMNS,
    TRADE_COLUMNS,
    ImportResult,
    TradeFileError,
    empty_trades,
    finalise,
    parse_datetimes,
)

__all__ = [
    "DEFAULT_TZ",
    "EXTRA_COLUMNS",
    "TRADE_COLUMNS",
    "ImportResult",
    "TradeFileError",
    "empty_trades",
    "from_activity_csv",
    "from_executions",
    "from_flex_xml",
    "from_plain_csv",
    "from_transaction_history",
    "load_trades",
    "merge_imports",
    "parse_datetimes",
]


def from_executions(
    executions: pd.DataFrame,
    tz: str = DEFAULT_TZ,
    prior_positions: pd.DataFrame | None = None,
) -> ImportResult:
    """Trades from `Session.executions()` (one row per execution, `time` in UTC).

    `exec_id` becomes `trade_id`; `time` is converted to `tz` (exchange time) so that trade
    dates are exchange dates. A missing commission (IBKR sends it in a separate report)
    rejects the row rather than assume zero.

    Executions do not say whether a sale closes a position bought earlier. Pass
    `prior_positions` (account, symbol, quantity signed, cost_basis total in the trade
    currency, optional date_acquired and currency) for what was held before the first
    execution: each becomes an opening lot, and a sale of a listed symbol beyond what is held
    is listed in `unexplained` instead of being booked as a short. Without it, a sale from a
    flat position is a short sale.
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
    ).reset_index(drop=True)
    if prior_positions is None or prior_positions.empty:
        return finalise(stage, "executions", tz)
    prior = prior_positions.reset_index(drop=True)
    held = set(zip(prior["account"], prior["symbol"], strict=True))
    stage["open_close"] = [
        "C" if (a, s) in held else ""
        for a, s in zip(stage["account"], stage["symbol"], strict=True)
    ]
    result = finalise(stage, "executions", tz)
    first = result.trades["datetime"].min() if len(result.trades) else pd.Timestamp.now(tz)
    acquired = prior.get("date_acquired", pd.Series([pd.NaT] * len(prior)))
    when = [
        first.normalize() - pd.Timedelta(days=1) if pd.isna(d) else pd.Timestamp(d)
        for d in acquired
    ]
    opening = pd.DataFrame(
        {
            "trade_id": [
                f"prior:{a}:{s}" for a, s in zip(prior["account"], prior["symbol"], strict=True)
            ],
            "account": prior["account"],
            "symbol": prior["symbol"],
            "datetime": [str(w.date()) for w in when],
            "quantity": prior["quantity"],
            "price": prior["cost_basis"].abs() / prior["quantity"].abs(),
            "commission": 0.0,
            "currency": prior.get("currency", "USD"),
            "open_close": "O",
            "line": 0,
            "raw": "prior position",
        }
    )
    fills = pd.concat(
        [finalise(opening, "prior", tz).trades, result.trades], ignore_index=True
    ).sort_values("datetime", kind="stable")
    return with_prior_positions(result, fills.reset_index(drop=True))


def from_plain_csv(text: str, source: str = "csv", tz: str = DEFAULT_TZ) -> ImportResult:
    """Trades from a CSV with `date,symbol,quantity,price` and optional `commission, trade_id,
    account, currency, fx_rate, kind, ratio, asset_category, multiplier, open_close` columns
    (a row with kind=split and ratio = new shares per old share is a stock split). Naive
    dates are `tz` local time."""
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
    result = finalise(stage, source, tz)
    return with_prior_positions(result, result.trades)


def load_trades(path: str | Path, tz: str = DEFAULT_TZ) -> ImportResult:
    """Read a trade history file, detecting by content: Flex XML, Activity Statement CSV
    (English or localised, quoted or not), Transaction History CSV or plain CSV."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            start = f.read(65_536)
    except OSError as exc:
        raise TradeFileError(f"{path}: cannot read the file ({exc.strerror}).") from exc
    name = path.name
    if start.decode("utf-8-sig", errors="ignore").lstrip().startswith("<"):
        return from_flex_xml(path, name, tz)  # streamed from the file
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TradeFileError(
            f"{path}: not a text file (UTF-8 expected); export trades as CSV or XML."
        ) from exc
    head = text.lstrip()
    kind = statement_kind(head)
    if kind == "activity":
        return from_activity_csv(text, name, tz)
    if kind == "transactions":
        return from_transaction_history(text, name, tz)
    first = head.splitlines()[0] if head else ""
    columns = {c.strip().lower() for c in next(csv.reader([first]), [])}
    if {"date", "symbol", "quantity", "price"} <= columns:
        return from_plain_csv(text, name, tz)
    raise TradeFileError(
        f"{path}: not a trades CSV, Flex XML, Activity Statement or Transaction History "
        f"(first line: {first[:60]!r}); a plain CSV needs the header date,symbol,quantity,price."
    )
