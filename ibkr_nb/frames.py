"""ib_async objects -> pandas DataFrames: the one place for column names and dtypes.

Conventions (see DESIGN.md): snake_case columns, quantities signed (+ long / bought,
- short / sold), money in the row's ``currency``, timestamps tz-aware UTC. IBKR's "unset"
numbers (1.797e308, 2**31-1) become NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd
from ib_async.util import UNSET_DOUBLE, UNSET_INTEGER

ACCOUNT_SUMMARY_COLUMNS = ["account", "tag", "value", "currency"]
KEY_ACCOUNT_TAGS = (
    "NetLiquidation",
    "TotalCashValue",
    "GrossPositionValue",
    "BuyingPower",
    "AvailableFunds",
    "ExcessLiquidity",
    "MaintMarginReq",
)
"""The account-summary tags a person looks at first (all in the account currency)."""
POSITION_COLUMNS = [
    "account",
    "symbol",
    "con_id",
    "sec_type",
    "currency",
    "quantity",
    "average_cost",
]
PORTFOLIO_COLUMNS = [
    "account",
    "symbol",
    "con_id",
    "quantity",
    "market_price",
    "market_value",
    "average_cost",
    "cost_basis",
    "unrealized_pnl",
    "realized_pnl",
    "currency",
]
ORDER_COLUMNS = [
    "order_id",
    "perm_id",
    "client_id",
    "order_ref",
    "account",
    "symbol",
    "con_id",
    "action",
    "quantity",
    "order_type",
    "limit_price",
    "stop_price",
    "tif",
    "status",
    "filled",
    "remaining",
    "avg_fill_price",
    "parent_id",
    "oca_group",
]
EXECUTION_COLUMNS = [
    "exec_id",
    "order_id",
    "perm_id",
    "order_ref",
    "account",
    "symbol",
    "con_id",
    "side",
    "quantity",
    "price",
    "commission",
    "realized_pnl",
    "currency",
    "exchange",
    "time",
]
QUOTE_COLUMNS = ["symbol", "bid", "ask", "last", "close", "bid_size", "ask_size", "volume", "time"]
"""``time`` is the exchange time of the last trade when TWS sends it, else when the quote arrived."""
PREVIEW_COLUMNS = [
    "symbol",
    "quantity",
    "order_type",
    "commission",
    "min_commission",
    "max_commission",
    "init_margin_change",
    "maint_margin_change",
    "equity_with_loan_after",
    "warning",
]
EXCHANGE_TZ = "America/New_York"
"""US stocks' exchange time zone: daily bars, trade dates and notebook times use it."""
SESSION_CLOSE = pd.Timedelta(hours=16)
"""The regular session's close after midnight, exchange time (early closes not modelled)."""
BAR_COLUMNS = ["date", "open", "high", "low", "close", "volume", "wap", "bar_count"]


def clean(value) -> float:
    """A number with IBKR's unset sentinels (and None) as NaN."""
    if value is None or value == "":
        return math.nan
    number = float(value)
    if number in (UNSET_DOUBLE, float(UNSET_INTEGER)) or math.isinf(number):
        return math.nan
    return number


def clean_market(value) -> float:
    """A price, size or volume where IBKR's -1 means "none" (no quote, no volume): NaN."""
    number = clean(value)
    return math.nan if number == -1 else number


def _frame(rows: Iterable[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=columns)


def account_summary_frame(values) -> pd.DataFrame:
    """AccountValue rows; numeric tags as floats, the rest (e.g. AccountType) dropped."""
    rows = []
    for v in values:
        try:
            number = float(v.value)
        except ValueError:
            continue
        rows.append({"account": v.account, "tag": v.tag, "value": number, "currency": v.currency})
    frame = _frame(rows, ACCOUNT_SUMMARY_COLUMNS)
    return frame.sort_values(["account", "tag"], ignore_index=True)


def positions_frame(positions) -> pd.DataFrame:
    rows = [
        {
            "account": p.account,
            "symbol": p.contract.symbol,
            "con_id": p.contract.conId,
            "sec_type": p.contract.secType,
            "currency": p.contract.currency,
            "quantity": float(p.position),
            "average_cost": clean(p.avgCost),
        }
        for p in positions
    ]
    return _frame(rows, POSITION_COLUMNS).sort_values("symbol", ignore_index=True)


def portfolio_frame(items) -> pd.DataFrame:
    """Portfolio rows: ``cost_basis`` = average cost x quantity (signed, like market value)."""
    rows = [
        {
            "account": p.account,
            "symbol": p.contract.symbol,
            "con_id": p.contract.conId,
            "quantity": float(p.position),
            "market_price": clean(p.marketPrice),
            "market_value": clean(p.marketValue),
            "average_cost": clean(p.averageCost),
            "cost_basis": clean(p.averageCost) * float(p.position),
            "unrealized_pnl": clean(p.unrealizedPNL),
            "realized_pnl": clean(p.realizedPNL),
            "currency": p.contract.currency,
        }
        for p in items
    ]
    return _frame(rows, PORTFOLIO_COLUMNS).sort_values("symbol", ignore_index=True)


def orders_frame(trades) -> pd.DataFrame:
    """One row per order; ``quantity`` is signed (+ BUY, - SELL)."""
    rows = []
    for t in trades:
        o, s = t.order, t.orderStatus
        sign = 1.0 if o.action.upper() == "BUY" else -1.0
        limit = clean(o.lmtPrice)
        stop = clean(o.auxPrice) if o.orderType in ("STP", "STP LMT", "TRAIL") else math.nan
        rows.append(
            {
                "order_id": o.orderId,
                "perm_id": o.permId,
                "client_id": o.clientId,
                "order_ref": o.orderRef,
                "account": o.account,
                "symbol": t.contract.symbol,
                "con_id": t.contract.conId,
                "action": o.action,
                "quantity": sign * float(o.totalQuantity),
                "order_type": o.orderType,
                "limit_price": limit,
                "stop_price": stop,
                "tif": o.tif,
                "status": s.status,
                "filled": float(s.filled),
                "remaining": float(s.remaining),
                "avg_fill_price": clean(s.avgFillPrice) if s.filled else math.nan,
                "parent_id": o.parentId,
                "oca_group": o.ocaGroup,
            }
        )
    return _frame(rows, ORDER_COLUMNS).sort_values("order_id", ignore_index=True)


def executions_frame(fills) -> pd.DataFrame:
    """One row per execution; ``quantity`` signed (+ bought, - sold), ``commission`` >= 0."""
    rows = []
    for f in fills:
        e, report = f.execution, f.commissionReport
        sign = 1.0 if e.side.upper() in ("BOT", "BUY") else -1.0
        rows.append(
            {
                "exec_id": e.execId,
                "order_id": e.orderId,
                "perm_id": e.permId,
                "order_ref": e.orderRef,
                "account": e.acctNumber,
                "symbol": f.contract.symbol,
                "con_id": f.contract.conId,
                "side": e.side,
                "quantity": sign * float(e.shares),
                "price": float(e.price),
                "commission": abs(clean(report.commission)) if report.execId else math.nan,
                "realized_pnl": clean(report.realizedPNL) if report.execId else math.nan,
                "currency": report.currency or f.contract.currency,
                "exchange": e.exchange,
                "time": e.time,
            }
        )
    frame = _frame(rows, EXECUTION_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame.sort_values(["time", "exec_id"], ignore_index=True)


def quotes_frame(tickers) -> pd.DataFrame:
    rows = [
        {
            "symbol": t.contract.symbol,
            "bid": clean_market(t.bid),
            "ask": clean_market(t.ask),
            "last": clean_market(t.last),
            "close": clean_market(t.close),
            "bid_size": clean_market(t.bidSize),
            "ask_size": clean_market(t.askSize),
            "volume": clean_market(t.volume),
            "time": t.lastTimestamp or t.delayedLastTimestamp or t.time,
        }
        for t in tickers
    ]
    frame = _frame(rows, QUOTE_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def bars_frame(bars) -> pd.DataFrame:
    """Bars; ``date`` is always tz-aware: the session's date at midnight New York for daily and
    longer bars, the bar's start in UTC for intraday bars. Missing volume / WAP / count: NaN."""
    rows = [
        {
            "date": b.date,
            "open": clean_market(b.open),
            "high": clean_market(b.high),
            "low": clean_market(b.low),
            "close": clean_market(b.close),
            "volume": clean_market(b.volume),
            "wap": clean_market(b.average),
            "bar_count": clean_market(b.barCount),
        }
        for b in bars
    ]
    frame = _frame(rows, BAR_COLUMNS)
    intraday = len(frame) and hasattr(frame["date"].iloc[0], "hour")
    if intraday:
        frame["date"] = pd.to_datetime(frame["date"], utc=True)
    else:
        frame["date"] = pd.to_datetime(frame["date"]).dt.tz_localize(EXCHANGE_TZ)
    return frame.astype({c: float for c in BAR_COLUMNS[1:]})


def preview_frame(symbol: str, quantity: float, order_type: str, state) -> pd.DataFrame:
    """A what-if answer: commission and margin change of one order (signed quantity)."""
    row = {
        "symbol": symbol,
        "quantity": float(quantity),
        "order_type": order_type,
        "commission": clean(state.commission),
        "min_commission": clean(state.minCommission),
        "max_commission": clean(state.maxCommission),
        "init_margin_change": clean(state.initMarginChange),
        "maint_margin_change": clean(state.maintMarginChange),
        "equity_with_loan_after": clean(state.equityWithLoanAfter),
        "warning": state.warningText,
    }
    return _frame([row], PREVIEW_COLUMNS)
