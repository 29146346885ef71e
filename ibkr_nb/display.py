"""How DataFrames look in a notebook: money with thousands separators and two decimals.

The numbers stay floats; only their display changes. ``install()`` registers IPython formatters
(plain text and HTML) for DataFrames that have money columns, so every getter's frame shows
``1,010,597.55`` instead of ``1.010598e+06``. Outside IPython it does nothing.
"""

from __future__ import annotations

import pandas as pd

MONEY_COLUMNS = frozenset(
    {
        "value",
        "price",
        "bid",
        "ask",
        "last",
        "close",
        "open",
        "high",
        "low",
        "wap",
        "average_cost",
        "avg_fill_price",
        "market_price",
        "market_value",
        "cost_basis",
        "proceeds",
        "gain_loss",
        "unrealized_pnl",
        "realized_pnl",
        "commission",
        "min_commission",
        "max_commission",
        "init_margin_change",
        "maint_margin_change",
        "equity_with_loan_after",
        "notional",
        "limit_price",
        "stop_price",
        "stop_loss",
        "take_profit",
        "current_price",
        "reference_price",
        "risk_to_stop",
        "est_commission",
        "est_realized_st",
        "est_realized_lt",
        "wash_sale_adjustment",
        "adjustment_amount",
        "pnl",
    }
)


def money(value: float) -> str:
    """``1,234.50``; NaN as an empty string."""
    return "" if pd.isna(value) else f"{value:,.2f}"


def money_columns(frame: pd.DataFrame) -> list[str]:
    return [
        c for c in frame.columns if c in MONEY_COLUMNS and pd.api.types.is_float_dtype(frame[c])
    ]


def styled(frame: pd.DataFrame):
    """A Styler with money columns formatted (two decimals, thousands separators)."""
    columns = money_columns(frame)
    return frame.style.format(money, subset=columns).hide(axis="index").set_uuid("ibkr-nb")


def _text(frame: pd.DataFrame, printer, cycle) -> None:
    columns = money_columns(frame)
    printer.text(frame.to_string(formatters={c: money for c in columns}, max_rows=60))


def _html(frame: pd.DataFrame):
    if not money_columns(frame) or len(frame) > 500:
        return None  # IPython falls back to pandas' own HTML
    return styled(frame).to_html()


def install() -> bool:
    """Register the money display in the running IPython, if any; returns whether it did."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    formatters = shell.display_formatter.formatters
    formatters["text/plain"].for_type(pd.DataFrame, _text)
    formatters["text/html"].for_type(pd.DataFrame, _html)
    return True
