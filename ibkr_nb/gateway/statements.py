"""The paper account's trade history as an IBKR Flex Query statement (XML).

IBKR delivers trade history through Flex Queries; the paper gateway writes the same form, so the
tax importers read its seeded lots and fills exactly as they read a real account's statement.
Times are exchange time (America/New_York) as ``YYYYMMDD;HHMMSS``; ``ibCommission`` is negative
and ``proceeds`` is signed as in IBKR's files. ``fifoPnlRealized`` is left out: the gateway keeps
average cost, not FIFO lots, and a statement should not state a figure it did not compute.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from xml.sax.saxutils import quoteattr

from .market import ET, instrument
from .records import TradeRecord


def _number(value: float) -> str:
    return f"{value:.10g}"


def flex_statement(account_id: str, trades: Iterable[TradeRecord], generated: datetime) -> str:
    """A Flex XML statement with one ``<Trade levelOfDetail="EXECUTION">`` per trade."""
    trades = list(trades)
    position: dict[str, float] = defaultdict(float)
    rows = []
    for t in trades:
        local = t.time.astimezone(ET)
        held = position[t.symbol]
        if held == 0 or (held > 0) == (t.quantity > 0):
            open_close = "O"
        else:  # a trade that goes through zero closes, then opens the other way
            open_close = "C;O" if abs(t.quantity) > abs(held) else "C"
        position[t.symbol] = held + t.quantity
        listing = instrument(t.symbol)
        attributes = {
            "accountId": account_id,
            "currency": t.currency,
            "fxRateToBase": "1",
            "assetCategory": "STK",
            "symbol": t.symbol,
            "description": listing.long_name if listing else t.symbol,
            "conid": str(t.con_id),
            "tradeID": t.trade_id,
            "tradeDate": local.strftime("%Y%m%d"),
            "dateTime": local.strftime("%Y%m%d;%H%M%S"),
            "quantity": _number(t.quantity),
            "tradePrice": _number(t.price),
            "proceeds": _number(-t.quantity * t.price),
            "ibCommission": _number(-t.commission),
            "ibCommissionCurrency": t.currency,
            "buySell": "BUY" if t.quantity > 0 else "SELL",
            "openCloseIndicator": open_close,
            "exchange": listing.primary_exchange if listing else "",
            "levelOfDetail": "EXECUTION",
        }
        rows.append(
            "<Trade " + " ".join(f"{k}={quoteattr(v)}" for k, v in attributes.items()) + " />"
        )
    first = min((t.time for t in trades), default=generated).astimezone(ET)
    header = (
        f'<FlexStatement accountId={quoteattr(account_id)} fromDate="{first:%Y%m%d}" '
        f'toDate="{generated.astimezone(ET):%Y%m%d}" period="Custom" '
        f'whenGenerated="{generated.astimezone(ET):%Y%m%d;%H%M%S}">'
    )
    return "\n".join(
        [
            '<FlexQueryResponse queryName="paper gateway trades" type="AF">',
            '<FlexStatements count="1">',
            header,
            "<Trades>",
            *rows,
            "</Trades>",
            "</FlexStatement>",
            "</FlexStatements>",
            "</FlexQueryResponse>",
            "",
        ]
    )
