"""Readable tables for the tax tests: trades in, realized rows and lots out.

A table is whitespace-separated text with a header line; `-` is an empty cell. Trade tables
use the plain-CSV columns (date, symbol, quantity, price, commission, trade_id, kind, ratio,
...), with an optional `time` column joined to `date` for same-day trades. Expected tables
show money to the cent, so each figure can be checked by eye.
"""

from types import SimpleNamespace

import pandas as pd
import pytest

from ibkr_nb.tax.importers import from_plain_csv
from ibkr_nb.tax.lots import match_lots


def parse_table(text: str) -> pd.DataFrame:
    lines = [line.split() for line in text.strip().splitlines() if line.strip()]
    return pd.DataFrame(lines[1:], columns=lines[0], dtype=object)


def parse_trades(text: str) -> pd.DataFrame:
    frame = parse_table(text).replace("-", "")
    if "time" in frame:
        frame["date"] = frame["date"] + " " + frame.pop("time")
    imported = from_plain_csv(frame.to_csv(index=False), "test")
    assert imported.rejects.empty, imported.rejects.to_string()
    return imported.trades


def as_text(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Columns as strings: money to cents, quantities as written, dates as YYYY-MM-DD."""
    out = pd.DataFrame(index=frame.index)
    for c in columns:
        values = frame[c]
        if values.dtype.kind == "f":
            out[c] = [f"{v:g}" if c == "quantity" else f"{round(v, 2) + 0.0:.2f}" for v in values]
        elif values.dtype.kind == "M":
            out[c] = values.dt.strftime("%Y-%m-%d")
        else:
            out[c] = values.astype(str).replace("", "-")
    return out.reset_index(drop=True).astype(object)


def realized(trades: pd.DataFrame, expected: str, **kwargs) -> None:
    """Assert match_lots(trades, **kwargs).realized equals the expected table."""
    want = parse_table(expected)
    got = as_text(match_lots(trades, **kwargs).realized, list(want.columns))
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def open_lots(trades: pd.DataFrame, expected: str, **kwargs) -> None:
    """Assert match_lots(trades, **kwargs).open_lots equals the expected table."""
    want = parse_table(expected)
    got = as_text(match_lots(trades, **kwargs).open_lots, list(want.columns))
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


@pytest.fixture
def t():
    """Table helpers: t.trades(text), t.realized(trades, expected, **kw), t.open_lots(...)."""
    return SimpleNamespace(
        trades=parse_trades, realized=realized, open_lots=open_lots, text=as_text, table=parse_table
    )
