"""Tax lots: import trade histories, match lots with wash sales, write Form 8949 / Schedule D."""

from ibkr_nb.plots import fig_realized_by_month, fig_wash_sale_effect
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
    "write_csv",
    "write_duckdb",
    "write_excel",
]
