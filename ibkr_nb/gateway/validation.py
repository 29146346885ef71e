"""Order validation: what a ticket must satisfy before the broker accepts it (TWS codes).

Pure functions on an :class:`OrderTicket`; they raise :class:`OrderRejected` with the code TWS
uses (200 unknown contract, 201 bad order, 110 price off the tick grid).
"""

from __future__ import annotations

import math

from .instruments import Instrument, instrument, instrument_by_con_id
from .records import OrderRejected, OrderTicket

ORDER_TYPES = ("MKT", "LMT", "STP", "STP LMT", "TRAIL")
STOP_TYPES = frozenset({"STP", "STP LMT", "TRAIL"})
MAX_ORDER_QUANTITY = 1_000_000  # shares or contracts; TWS's precautionary size limit
# FX: TWS keeps a Size Limit per asset-class preset; IDEALPRO orders run to tens of millions of
# the base currency, so the paper gateway's Forex preset is 100 million units (configurable).
MAX_FX_QUANTITY = 100_000_000
IDEALPRO_MINIMUM_USD = 25_000  # IBKR: smaller FX orders are odd lots, routed as such
_UNITS = {
    "STK": "shares",
    "CASH": "units of the base currency",
    "OPT": "contracts",
    "FUT": "contracts",
}
MAX_ORDER_ID = 2**31 - 2  # order ids are positive 32-bit integers (2^31-1 means "unset")
MAX_PRICE = 1e7  # USD; a limit or stop beyond this is a typo, not an order
MAX_TEXT = 255  # characters in orderRef and any other free-text field of an order


def check_values(
    ticket: OrderTicket,
    max_quantity: float = MAX_ORDER_QUANTITY,
    max_fx_quantity: float = MAX_FX_QUANTITY,
) -> None:
    """Values no account may hold: ids out of range, non-finite, fractional or oversized
    quantities, absurd prices, oversized text. Raised before the order touches the account, so
    the id stays free and nothing is recorded (201, or 383 for the size limit as TWS does).
    The size limit is ``max_fx_quantity`` for FX pairs, ``max_quantity`` for the rest."""
    if not 0 < ticket.order_id <= MAX_ORDER_ID:
        raise reject(
            ticket,
            f"Order id {ticket.order_id} is out of range: use 1 to {MAX_ORDER_ID} "
            "(reqIds gives the next valid id)",
        )
    inst = instrument_by_con_id(ticket.con_id) if ticket.con_id else instrument(ticket.symbol)
    sec_type = inst.sec_type if inst is not None else "STK"
    units = _UNITS.get(sec_type, "shares")
    q = ticket.total_quantity
    if q is None or not math.isfinite(q) or q <= 0:
        raise reject(ticket, f"Order quantity must be a positive number of {units}, got {q}")
    if q != int(q):
        kind = "share" if sec_type == "STK" else "FX" if sec_type == "CASH" else "contract"
        raise reject(
            ticket,
            f"Fractional {kind} quantity {q} is not supported: give whole {units}",
        )
    setting = "max_order_quantity"
    if sec_type == "CASH":
        max_quantity, setting = max_fx_quantity, "max_fx_quantity"
    if q > max_quantity:
        raise OrderRejected(
            383,
            f"The order size ({q:g}) exceeds the Size Limit of {max_quantity:.0f} {units}. "
            f"Restriction is specified in Precautionary Settings of the paper gateway ({setting}).",
            ticket,
        )
    for name in ("lmt_price", "aux_price", "trailing_percent"):
        v = getattr(ticket, name)
        if v is not None and abs(v) > MAX_PRICE:
            raise reject(ticket, f"{name} {v} is beyond {MAX_PRICE:g} USD")
    texts = {"order_ref": ticket.order_ref, "oca_group": ticket.oca_group, **ticket.raw}
    for name, v in texts.items():
        if isinstance(v, str) and len(v) > MAX_TEXT:
            raise reject(ticket, f"{name} is {len(v)} characters long; at most {MAX_TEXT}")


def normalise(ticket: OrderTicket) -> None:
    """Absent optional prices (None, NaN, TWS's UNSET_DOUBLE 1.7976931348623157e308) -> None;
    absent flags -> TWS defaults (transmit True, what_if/outside_rth False)."""
    for name in ("lmt_price", "aux_price", "trailing_percent", "trail_stop_price"):
        v = getattr(ticket, name)
        if v is not None and (not math.isfinite(v) or abs(v) >= 1e300):
            setattr(ticket, name, None)
    if ticket.transmit is None:
        ticket.transmit = True
    ticket.what_if = bool(ticket.what_if)
    ticket.outside_rth = bool(ticket.outside_rth)
    ticket.action = (ticket.action or "").upper()
    ticket.order_type = (ticket.order_type or "").upper()
    ticket.tif = (ticket.tif or "DAY").upper()


def reject(ticket: OrderTicket, reason: str) -> OrderRejected:
    """A 201 rejection with TWS's text prefix."""
    return OrderRejected(201, "Order rejected - reason:" + reason, ticket)


def resolve(ticket: OrderTicket) -> Instrument:
    """The ticket's instrument by conId or symbol; 200 when unknown or the two disagree."""
    inst = instrument_by_con_id(ticket.con_id) if ticket.con_id else None
    if inst is None and ticket.symbol:
        inst = instrument(ticket.symbol)
    if inst is None or (ticket.con_id and inst.con_id != ticket.con_id):
        raise OrderRejected(200, "No security definition has been found for the request", ticket)
    return inst


# IB algos the gateway accepts, with the values each parameter may take (None: any number).
# How they execute (Twap / Vwap / ArrivalPx over a window, Adaptive by priority): see .algos.
ALGOS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "Adaptive": {"adaptivePriority": ("Urgent", "Normal", "Patient")},
    "ArrivalPx": {
        "maxPctVol": None,
        "riskAversion": ("Get Done", "Aggressive", "Neutral", "Passive"),
        "startTime": (),
        "endTime": (),
        "forceCompletion": ("0", "1"),
        "allowPastEndTime": ("0", "1"),
    },
    "Twap": {
        "strategyType": ("Marketable", "Matching Midpoint", "Matching Same Side", "Matching Last"),
        "startTime": (),
        "endTime": (),
        "allowPastEndTime": ("0", "1"),
    },
    "Vwap": {
        "maxPctVol": None,
        "startTime": (),
        "endTime": (),
        "allowPastEndTime": ("0", "1"),
        "noTakeLiq": ("0", "1"),
    },
}


def algo(ticket: OrderTicket) -> None:
    """An algo order names a known strategy and only its parameters, with valid values
    (an empty tuple above takes any text, such as a time)."""
    name = ticket.raw.get("algoStrategy") or ""
    if not name:
        return
    if name not in ALGOS:
        raise reject(ticket, f"Unknown algo strategy {name!r}; simulated: {', '.join(ALGOS)}")
    allowed = ALGOS[name]
    for param in ticket.raw.get("algoParams") or []:
        tag, value = param.get("tag", ""), str(param.get("value", ""))
        if tag not in allowed:
            raise reject(ticket, f"{name} has no parameter {tag!r}; it takes {', '.join(allowed)}")
        choices = allowed[tag]
        if choices is None:
            try:
                float(value)
            except ValueError:
                raise reject(
                    ticket, f"{name} parameter {tag} needs a number, got {value!r}"
                ) from None
        elif choices and value not in choices:
            raise reject(
                ticket, f"{name} parameter {tag}={value!r} is not one of {', '.join(choices)}"
            )


def tradable(ticket: OrderTicket, inst: Instrument) -> None:
    """What the account can hold: stocks, options, futures and FX pairs; an index is quoted
    but cannot be traded (trade its futures or options)."""
    if inst.sec_type == "IND":
        raise reject(
            ticket,
            f"The paper gateway quotes {inst.tws_symbol} ({inst.sec_type} {inst.currency}) but "
            "does not trade it: an index is not tradable; trade its futures or options instead",
        )


def idealpro_minimum(inst: Instrument) -> int:
    """IDEALPRO's minimum order in units of the pair's base currency: USD 25,000, or its
    equivalent at the pair's reference rate rounded down to 5,000 (EUR 20,000 as TWS says)."""
    if inst.tws_symbol == "USD":
        return IDEALPRO_MINIMUM_USD
    return int(IDEALPRO_MINIMUM_USD / inst.base_price // 5_000 * 5_000)


def odd_lot_warning(ticket: OrderTicket, inst: Instrument) -> str:
    """TWS's warning 399 text for an FX order below the IDEALPRO minimum ("" otherwise): the
    order is still accepted and fills, as an odd lot."""
    if inst.sec_type != "CASH":
        return ""
    minimum = idealpro_minimum(inst)
    if ticket.total_quantity >= minimum:
        return ""
    return (
        f"Order Message:\n{ticket.action} {ticket.total_quantity:g} {inst.symbol} Forex\n"
        f"Warning: Your order size is below the {inst.tws_symbol} {minimum} IdealPro minimum "
        "and will be routed as an odd lot order."
    )


def validate(ticket: OrderTicket, inst: Instrument) -> None:
    """Action, quantity, order type, time in force and the prices the order type needs."""
    if ticket.action not in ("BUY", "SELL"):
        raise reject(ticket, f"Invalid action {ticket.action!r}: must be BUY or SELL")
    q = ticket.total_quantity
    if q is None or not math.isfinite(q) or q <= 0:
        raise reject(ticket, f"Order quantity must be positive, got {q}")
    if ticket.order_type not in ORDER_TYPES:
        raise reject(
            ticket,
            f"Unsupported order type {ticket.order_type!r} for this exchange and security "
            f"type (supported: {', '.join(ORDER_TYPES)})",
        )
    if ticket.tif not in ("DAY", "GTC"):
        raise reject(ticket, f"Unsupported time in force {ticket.tif!r} (DAY or GTC)")
    tradable(ticket, inst)
    algo(ticket)
    typ = ticket.order_type
    need = []
    if typ in ("LMT", "STP LMT"):
        need.append(("limit price", ticket.lmt_price))
    if typ in ("STP", "STP LMT"):
        need.append(("stop price", ticket.aux_price))
    if typ == "TRAIL":
        if ticket.trailing_percent is not None and ticket.trailing_percent > 0:
            if ticket.trailing_percent >= 100:
                raise reject(ticket, "Trailing percent must be below 100")
        else:
            need.append(("trailing amount", ticket.aux_price))
    for name, value in need:
        if value is None or not math.isfinite(value) or value <= 0:
            raise reject(ticket, f"Invalid {name} {value} for a {typ} order")
        ticks = value / inst.min_tick
        if abs(ticks - round(ticks)) > 1e-6:
            raise OrderRejected(
                110,
                "The price does not conform to the minimum price variation for this contract.",
                ticket,
            )
