"""Tax lots: import trade histories, match lots with wash sales, write Form 8949 / Schedule D."""

from ibkr_nb.tax.importers import (
    ImportResult,
    TradeFileError,
    from_activity_csv,
    from_executions,
    from_flex_xml,
    from_plain_csv,
    load_trades,
)
from ibkr_nb.tax.lots import METHODS, LotResult, match_lots
from ibkr_nb.tax.reports import (
    form_8949,
    reconcile_ibkr,
    schedule_d,
    schedule_d_totals,
    write_csv,
    write_duckdb,
    write_excel,
)

__all__ = [
    "METHODS",
    "ImportResult",
    "LotResult",
    "TradeFileError",
    "fig_realized_by_month",
    "fig_wash_sale_effect",
    "form_8949",
    "from_activity_csv",
    "from_executions",
    "from_flex_xml",
    "from_plain_csv",
    "load_trades",
    "match_lots",
    "reconcile_ibkr",
    "schedule_d",
    "schedule_d_totals",
    "write_csv",
    "write_duckdb",
    "write_excel",
]
_FIGURES = ("fig_realized_by_month", "fig_wash_sale_effect")  # from ibkr_nb.plots (plotly)


def __getattr__(name: str):
    """The figures, imported on first use: plotly is slow to load and the CLI needs none."""
    if name not in _FIGURES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ibkr_nb import plots

    return getattr(plots, name)
