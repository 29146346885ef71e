"""Broker and market objects <-> the named field values of TWS messages.

The server decodes a request into a dict (``messages.decode_request``), turns it into an
``OrderTicket`` here, and turns tickets, executions, positions, bars and quotes back into the
dicts that ``messages.encode_reply`` writes. Nothing here touches a socket.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from .instruments import LISTED, market_rule_id
from .market import (
    ET,
    Instrument,
    day_index,
    instrument_by_con_id,
    is_session,
    parse_bar_size,
    session_bounds,
)
from .protocol import UNSET_DOUBLE
from .records import CommissionRecord, ExecutionRecord, MarginState, OrderTicket, PositionRow

ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,GTC,IOC,LIT,LMT,MIT,MKT,MOC,MTL,NONALGO,OCA,PEGBENCH,POSTONLY,REL,SCALE,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,WHATIF"

# Request field name -> OrderTicket attribute, for the fields the broker interprets.
TICKET_FIELDS = {
    "orderId": "order_id",
    "action": "action",
    "totalQuantity": "total_quantity",
    "orderType": "order_type",
    "lmtPrice": "lmt_price",
    "auxPrice": "aux_price",
    "tif": "tif",
    "ocaGroup": "oca_group",
    "ocaType": "oca_type",
    "orderRef": "order_ref",
    "transmit": "transmit",
    "parentId": "parent_id",
    "displaySize": "display_size",
    "outsideRth": "outside_rth",
    "trailingPercent": "trailing_percent",
    "trailStopPrice": "trail_stop_price",
    "whatIf": "what_if",
}

# What an empty request field means for the broker.
TICKET_DEFAULTS = {
    "action": "",
    "order_type": "",
    "tif": "DAY",
    "oca_type": 0,
    "order_ref": "",
    "oca_group": "",
    "total_quantity": 0.0,
    "display_size": 0,
    "parent_id": 0,
}


def ticket_from_request(
    values: dict, *, client_id: int, instrument: Instrument, account: str
) -> OrderTicket:
    """An ``OrderTicket`` from a decoded placeOrder; every other field is kept in ``raw``."""
    known = {attr: values.get(name) for name, attr in TICKET_FIELDS.items()}
    for attr, default in TICKET_DEFAULTS.items():
        known[attr] = known[attr] or default
    for attr in ("action", "order_type", "tif"):
        known[attr] = known[attr].upper()
    raw = {k: v for k, v in values.items() if k not in TICKET_FIELDS}
    return OrderTicket(
        client_id=client_id,
        con_id=instrument.con_id,
        symbol=instrument.symbol,
        account=values.get("account") or account,
        raw=raw,
        **known,
    )


def contract_values(instrument: Instrument, exchange: str = "") -> dict:
    """The contract fields TWS reports; ``exchange`` defaults to the instrument's own."""
    if instrument.sec_type == "STK":
        trading_class = (
            "NMS"
            if instrument.primary_exchange in ("NASDAQ", "NYSE")
            else instrument.primary_exchange
        )
    else:
        trading_class = instrument.trading_class
    if instrument.sec_type not in ("STK", "OPT"):
        exchange = instrument.exchange
    return {
        "conId": instrument.con_id,
        "symbol": instrument.tws_symbol,
        "secType": instrument.sec_type,
        "lastTradeDateOrContractMonth": instrument.expiry,
        "strike": instrument.strike,
        "right": instrument.right,
        "multiplier": f"{instrument.multiplier:g}" if instrument.underlying else "",
        "exchange": exchange or "SMART",
        "primaryExchange": instrument.primary_exchange,
        "currency": instrument.currency,
        "localSymbol": instrument.symbol,
        "tradingClass": trading_class,
    }


def trading_hours(today: date, days: int = 7) -> str:
    """TWS's session list from ``today``: ``20261124:0930-20261124:1600;20261128:CLOSED;...``
    (exchange time, US/Eastern), the form ib_async's ``ContractDetails.tradingSessions`` reads."""
    sessions = []
    for offset in range(days):
        d = today + timedelta(days=offset)
        day = d.strftime("%Y%m%d")
        if is_session(d):
            close = datetime.fromtimestamp(session_bounds(day_index(d))[1], ET).strftime("%H%M")
            sessions.append(f"{day}:0930-{day}:{close}")
        else:
            sessions.append(f"{day}:CLOSED")
    return ";".join(sessions)


# Valid exchanges per security type, as TWS lists them.
VALID_EXCHANGES = {
    "STK": "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,LTSE,MEMX,PEARL",
    "OPT": "SMART,AMEX,CBOE,PHLX,PSE,ISE,BOX,BATS,NASDAQOM,CBOE2,NASDAQBX,MIAX,GEMINI,EDGX,MERCURY,PEARL,EMERALD,MEMX,IBUSOPT",
    "CASH": "IDEALPRO",
    "IND": "",
    "FUT": "CME,QBALGO",
}  # fmt: skip


def contract_details_values(req_id: int, instrument: Instrument, today: date) -> dict:
    contract = contract_values(instrument)
    hours = trading_hours(today)
    exchanges = VALID_EXCHANGES[instrument.sec_type] or instrument.exchange
    rule = str(market_rule_id(instrument.min_tick))
    under = LISTED.get(instrument.underlying)
    return {
        **contract,
        "reqId": req_id,
        "marketName": contract["tradingClass"],
        "minTick": instrument.min_tick,
        "orderTypes": ORDER_TYPES,
        "validExchanges": exchanges,
        "priceMagnifier": 1,
        "underConId": under.con_id if under else 0,
        "longName": instrument.long_name,
        "contractMonth": instrument.expiry[:6],
        "industry": instrument.industry,
        "category": instrument.category,
        "subcategory": instrument.subcategory,
        "timeZoneId": "US/Eastern",
        "tradingHours": hours,
        "liquidHours": hours,
        "evMultiplier": 0.0,
        "secIdList": [],
        "aggGroup": 1,
        "underSymbol": under.tws_symbol if under else "",
        "underSecType": under.sec_type if under else "",
        "marketRuleIds": ",".join([rule] * len(exchanges.split(","))),
        "realExpirationDate": instrument.expiry,
        "stockType": (
            ("ETF" if instrument.category == "Equity Fund" else "COMMON")
            if instrument.sec_type == "STK"
            else ""
        ),
        "minSize": 1.0,
        "sizeIncrement": 1.0,
        "suggestedSizeIncrement": 100.0 if instrument.sec_type == "STK" else 1.0,
    }


def _order_values(ticket: OrderTicket) -> dict:
    instrument = instrument_by_con_id(ticket.con_id)
    values = dict(ticket.raw)
    values.update(contract_values(instrument, ticket.raw.get("exchange", "")))
    values.update({name: getattr(ticket, attr) for name, attr in TICKET_FIELDS.items()})
    values.update(
        clientId=ticket.client_id,
        permId=ticket.perm_id,
        account=ticket.account,
        status=ticket.status,
        filledQuantity=ticket.filled,
    )
    return values


# openOrder's what-if margin fields -> MarginState attributes (USD).
MARGIN_FIELDS = {
    "initMarginBefore": "init_margin_before",
    "maintMarginBefore": "maint_margin_before",
    "equityWithLoanBefore": "equity_with_loan_before",
    "initMarginChange": "init_margin_change",
    "maintMarginChange": "maint_margin_change",
    "equityWithLoanChange": "equity_with_loan_change",
    "initMarginAfter": "init_margin_after",
    "maintMarginAfter": "maint_margin_after",
    "equityWithLoanAfter": "equity_with_loan_after",
}


def open_order_values(ticket: OrderTicket, margin: MarginState | None = None) -> dict:
    """openOrder fields for a ticket; ``margin`` fills the what-if order state."""
    values = _order_values(ticket)
    values.update(commission=None, minCommission=None, maxCommission=None)
    for name, attr in MARGIN_FIELDS.items():  # TWS sends margins as text, unset when not what-if
        values[name] = _money(getattr(margin, attr)) if margin else str(UNSET_DOUBLE)
    if margin is not None:
        values.update(
            status=margin.status,
            commission=margin.commission,
            minCommission=margin.min_commission,
            maxCommission=margin.max_commission,
            commissionCurrency=margin.commission_currency,
            warningText=margin.warning_text,
        )
    elif ticket.status == "Filled":
        values.update(commission=ticket.commission, commissionCurrency="USD")
    return values


def completed_order_values(ticket: OrderTicket) -> dict:
    values = _order_values(ticket)
    when = ticket.completed_at or ticket.submitted_at
    values.update(
        completedTime=_tws_time(when) if when else "",
        completedStatus=ticket.status,
    )
    return values


def order_status_values(ticket: OrderTicket) -> dict:
    return {
        "orderId": ticket.order_id,
        "status": ticket.status,
        "filled": ticket.filled,
        "remaining": ticket.remaining,
        "avgFillPrice": ticket.avg_fill_price,
        "permId": ticket.perm_id,
        "parentId": ticket.parent_id,
        "lastFillPrice": ticket.last_fill_price,
        "clientId": ticket.client_id,
        "whyHeld": ticket.why_held,
        "mktCapPrice": 0.0,
    }


def execution_values(req_id: int, execution: ExecutionRecord) -> dict:
    instrument = instrument_by_con_id(execution.con_id)
    values = contract_values(instrument, execution.exchange)
    values.update(
        reqId=req_id,
        orderId=execution.order_id,
        execId=execution.exec_id,
        time=_tws_time(execution.time),
        acctNumber=execution.account,
        execExchange=execution.exchange,
        side=execution.side,
        shares=execution.shares,
        price=execution.price,
        permId=execution.perm_id,
        clientId=execution.client_id,
        liquidation=0,
        cumQty=execution.cum_qty,
        avgPrice=execution.avg_price,
        orderRef=execution.order_ref,
        evRule="",
        evMultiplier=None,
        modelCode="",
        lastLiquidity=execution.liquidity,
        pendingPriceRevision=False,
    )
    return values


def commission_values(commission: CommissionRecord) -> dict:
    """commissionReport fields; an opening fill's realized P&L is TWS's unset double."""
    return {
        "execId": commission.exec_id,
        "commission": commission.commission,
        "currency": commission.currency,
        "realizedPNL": UNSET_DOUBLE if commission.realized_pnl is None else commission.realized_pnl,
        "yield_": UNSET_DOUBLE,
        "yieldRedemptionDate": 0,
    }


def symbol_sample_values(instrument: Instrument) -> dict:
    """One reqMatchingSymbols description: a US stock with options and warrants listed."""
    return {
        **contract_values(instrument),
        "derivativeSecTypes": [{"value": "OPT"}, {"value": "WAR"}],
        "description": instrument.long_name,
        "issuerId": "",
    }


def _tws_time(moment: datetime) -> str:
    """TWS's ``YYYYMMDD HH:MM:SS zone`` form, in UTC."""
    return moment.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")


def position_values(row: PositionRow, account: str) -> dict:
    values = contract_values(instrument_by_con_id(row.con_id), "")
    values.update(account=account, position=row.quantity, avgCost=row.average_cost)
    return values


def portfolio_values(row: PositionRow, account: str) -> dict:
    values = contract_values(instrument_by_con_id(row.con_id))
    values.update(
        position=row.quantity,
        marketPrice=row.market_price,
        marketValue=row.market_value,
        averageCost=row.average_cost,
        unrealizedPNL=row.unrealized_pnl,
        realizedPNL=row.realized_pnl,
        accountName=account,
    )
    return values


RATIO_TAGS = frozenset({"Cushion", "Leverage"})


# Account values TWS also reports per currency and in the BASE currency.
BY_CURRENCY = (
    "CashBalance",
    "TotalCashBalance",
    "NetLiquidationByCurrency",
    "UnrealizedPnL",
    "RealizedPnL",
    "StockMarketValue",
    "OptionMarketValue",
    "FuturesPNL",
)
_BASE_SOURCE = {"CashBalance": "TotalCashValue", "TotalCashBalance": "TotalCashValue",
                "NetLiquidationByCurrency": "NetLiquidation"}  # fmt: skip


def account_value_rows(
    values: dict[str, float], by_currency: dict[str, dict[str, float]] | None = None
) -> list[tuple[str, str, str]]:
    """(key, value text, currency) rows as reqAccountUpdates sends them: money in USD to the
    cent, ratios (Cushion, Leverage) as plain numbers without a currency.

    ``by_currency`` maps each currency to its ExchangeRate (USD per unit) and, for a currency
    the account holds, its own figures in that currency (CashBalance, ...; see
    :meth:`.account.Account.report`). The BASE rows total every currency in USD.
    """
    rows = [("AccountType", "INDIVIDUAL", ""), ("Currency", "USD", "USD")]
    for key, value in values.items():
        if key in RATIO_TAGS:
            rows.append((key, f"{value:.6g}", ""))
        else:
            rows.append((key, _money(value), "USD"))
    for key in BY_CURRENCY:
        rows.append((key, _money(values.get(_BASE_SOURCE.get(key, key), 0.0)), "BASE"))
    for currency, figures in sorted((by_currency or {}).items()):
        rate = figures.get("ExchangeRate", 0.0)
        rows.append(("ExchangeRate", "1.00" if currency == "USD" else f"{rate:.8g}", currency))
        rows.extend((key, _money(figures[key]), currency) for key in BY_CURRENCY if key in figures)
    return rows


def _money(value: float) -> str:
    return f"{value:.2f}"


# -- market data -------------------------------------------------------------------------------

# (live tick type, delayed tick type) per quote field; sizes carry their own ids.
PRICE_TICKS = (("bid", 1, 66, "bid_size"), ("ask", 2, 67, "ask_size"), ("last", 4, 68, "last_size"))
SIZE_TICKS = (("bid_size", 0, 69), ("ask_size", 3, 70), ("last_size", 5, 71), ("volume", 8, 74))
OHLC_TICKS = (("high", 6, 72), ("low", 7, 73), ("close", 9, 75), ("open", 14, 76))


# Quote fields TWS does not send for a security type: an IDEALPRO FX pair has no trades (no
# last, last size, volume, open or last-trade time); an index has no bid, ask or volume, and
# its last comes with size 0.
NOT_QUOTED = {
    "CASH": frozenset({"last", "last_size", "volume", "open", "time"}),
    "IND": frozenset({"bid", "ask", "bid_size", "ask_size", "last_size", "volume"}),
}


def ticks_for_quote(
    quote, market_data_type: int, sec_type: str = "STK"
) -> list[tuple[str, int, object, float]]:
    """(kind, tick type, value, size) for a quote; delayed types 3/4 use the delayed ids. The
    fields :data:`NOT_QUOTED` names for ``sec_type`` are left out; halted (49) is 0."""
    delayed = market_data_type in (3, 4)
    omit = NOT_QUOTED.get(sec_type, frozenset())
    ticks: list[tuple[str, int, object, float]] = []
    for field, live, late, size_field in PRICE_TICKS:
        if field not in omit:
            size = 0.0 if size_field in omit else getattr(quote, size_field)
            ticks.append(("price", late if delayed else live, getattr(quote, field), size))
    for field, live, late in SIZE_TICKS:
        if field not in omit:
            ticks.append(("size", late if delayed else live, getattr(quote, field), 0.0))
    for field, live, late in OHLC_TICKS:
        if field not in omit:
            ticks.append(("price", late if delayed else live, getattr(quote, field), 0.0))
    if "time" not in omit:
        stamp = str(int(quote.time.timestamp()))
        ticks.append(("string", 88 if delayed else 45, stamp, 0.0))
    ticks.append(("generic", 90 if delayed else 49, 0.0, 0.0))
    return ticks


# -- historical data ---------------------------------------------------------------------------


def parse_end_datetime(text: str, now: datetime) -> datetime:
    """TWS endDateTime: empty = now; ``YYYYMMDD HH:MM:SS [zone]`` or ``YYYYMMDD-HH:MM:SS`` (UTC).

    Raises ValueError (naming the text) for a bad form, an unknown time zone or a date that
    cannot be represented."""
    text = text.strip()
    if not text:
        return now
    parts = text.split()
    try:
        if "-" in text and len(text) == 17:
            return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        if len(parts) == 1 and len(parts[0]) == 8:
            moment = datetime.strptime(parts[0], "%Y%m%d").replace(hour=23, minute=59, second=59)
            return moment.replace(tzinfo=ET).astimezone(UTC)
        moment = datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S")
    except (ValueError, IndexError, OverflowError):
        raise ValueError(
            f"the end date/time {text!r} is not in 'YYYYMMDD HH:MM:SS [zone]' form"
        ) from None
    try:
        zone = ZoneInfo(parts[2]) if len(parts) > 2 else ET
    except (ValueError, LookupError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {parts[2]!r} in {text!r}") from None
    try:
        return moment.replace(tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"the date {text!r} is out of range") from None


def bar_rows(bars, end: datetime, bar_size: str, format_date: int) -> tuple[str, str, list[dict]]:
    """historicalData's start/end strings and bar rows; daily bars are dated ``YYYYMMDD``."""
    daily = parse_bar_size(bar_size) < 0  # day, week and month bars are dated, not timed
    rows = []
    for bar in bars:
        if daily:
            date = bar.time.astimezone(ET).strftime("%Y%m%d")
        elif format_date == 2:
            date = str(int(bar.time.timestamp()))
        else:
            date = bar.time.astimezone(ET).strftime("%Y%m%d %H:%M:%S US/Eastern")
        rows.append(
            {
                "date": date,
                "open": bar.open,
                "high": bar.high,
                "low": bar.low,
                "close": bar.close,
                "volume": bar.volume,
                "wap": bar.wap,
                "barCount": bar.count,
            }
        )
    start = bars[0].time if bars else end - timedelta(days=1)
    fmt = "%Y%m%d %H:%M:%S"
    return (
        start.astimezone(ET).strftime(fmt),
        end.astimezone(ET).strftime(fmt),
        rows,
    )
