"""The paper account behind the gateway: orders, fills, commissions, positions, margin.

No sockets here. The server turns placeOrder/cancelOrder messages into calls on :class:`Broker`
and turns the events it emits back into openOrder / orderStatus / execDetails /
commissionReport / account messages.

Event mechanism
---------------
Every mutating method (``place_order``, ``cancel_order``, ``global_cancel``, ``process``)
returns the list of events it produced, in order, *and* calls every callback registered with
:meth:`Broker.subscribe` synchronously with each of them. Events carry *snapshots* (copies) of
the order ticket taken when the event happened, so an ``OrderUpdate`` for "Submitted" still says
"Submitted" after the order has filled. A fill produces ``Fill`` then ``OrderUpdate`` (TWS
order: execDetails, orderStatus, commissionReport), and each call that changed cash or
positions ends with one ``AccountChanged``.

Errors are raised as :class:`OrderRejected` (a :class:`BrokerError`) -- for placement,
modification and cancel alike; the server sends them as TWS error messages (``code``,
``message``, id = ``order_id``). A rejected order produces no event (ib_async marks the trade
Cancelled on the error); a 201 rejection is kept in :meth:`Broker.completed_orders` with status
"Inactive" (``exc.ticket``). Cancel errors have ``ticket`` None.

Persistence: with ``state_file`` the whole account is rewritten (temp file + ``os.replace``, no
fsync) after every change; records are serialised once and cached, but the write is still
O(history): ~1 ms per save at 100 orders, ~4 ms at 1000.

Order life (TWS semantics)
--------------------------
* ``transmit=False``: held in the gateway, status stays "PendingSubmit", no events and not in
  open orders (as TWS does with untransmitted API orders) until a later order of the same
  bracket (``parent_id`` = its id) or a re-send of it arrives with ``transmit=True``.
* Transmitted: "Submitted" when it can work now; "PreSubmitted" for stop / stop-limit / trailing
  orders before they trigger, for bracket children until the parent fills, and (``rth_only``)
  for orders that may not trade outside regular hours while the market is closed.
* Fills happen in :meth:`Broker.process`, at most one execution per order per call, of at most
  the displayed size on the opposite side of the book. "Filled" when complete.
* Bracket children activate when the parent is completely filled; a fill of one child reduces
  its siblings by the same quantity (cancelled at zero); cancelling the parent cancels them.
  OCA groups: ``oca_type`` 1 cancels the other orders of the group on a fill; 2 and 3 reduce
  them by the filled quantity.
* DAY orders are cancelled by the first ``process()`` at or after the 16:00 ET close of their
  session; GTC orders stay.

Margin model (US Reg T, no house add-ons)
-----------------------------------------
``L`` = market value of long positions, ``S`` = absolute market value of short positions, at
the last price.

* NetLiquidation = EquityWithLoanValue = TotalCashValue + L - S
* GrossPositionValue = L + S
* InitMarginReq = 50% L + 50% S; MaintMarginReq = 25% L + 30% S
* AvailableFunds = EquityWithLoanValue - InitMarginReq
* ExcessLiquidity = EquityWithLoanValue - MaintMarginReq
* BuyingPower = 4 x AvailableFunds (floored at 0), IBKR's figure for a margin account
* An order is rejected (201) when, filled at its estimated price, InitMarginReq after would
  exceed EquityWithLoanValue after and be higher than before (reducing orders always pass).
  Other working orders are not counted.

P&L (IBKR average cost)
-----------------------
Average cost includes commissions (buy: (cost + commission) / shares; short: (proceeds -
commission) / shares). Closing ``n`` shares realizes ``(price - avg) * n`` (long) or
``(avg - price) * n`` (short) minus the closing share of the commission; a flip closes then
opens. Unrealized = ``(market price - avg) * quantity``. RealizedPnL counts this account's
fills since it was created (not the seeded history).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ibkr_nb.commissions import stock_commission
from ibkr_nb.gateway.market import (
    ET,
    UNIVERSE,
    Instrument,
    Market,
    instrument,
    instrument_by_con_id,
    locate,
    next_session_close,
    session_bounds,
)

INITIAL_CASH = 1_000_000.0
ORDER_TYPES = ("MKT", "LMT", "STP", "STP LMT", "TRAIL")
STOP_TYPES = frozenset({"STP", "STP LMT", "TRAIL"})
_EPS = 1e-9
_EXCHANGE = {"NASDAQ": "ISLAND", "NYSE": "NYSE", "ARCA": "ARCA"}
STATE_VERSION = 1


def book_trade(
    position: float, avg_cost: float, quantity: float, price: float, fee: float
) -> tuple[float, float, float | None]:
    """Apply one trade to a position, IBKR average-cost style.

    ``position``/``quantity`` signed, ``fee`` >= 0. Returns ``(new_position, new_avg_cost,
    realized)`` where ``realized`` is None when the trade only opens or adds.
    """
    if abs(quantity) < _EPS:
        return position, avg_cost, None
    side = 1.0 if quantity > 0 else -1.0
    if abs(position) < _EPS or (position > 0) == (quantity > 0):
        new = position + quantity
        avg = (avg_cost * abs(position) + price * abs(quantity) + side * fee) / abs(new)
        return new, avg, None
    closed = min(abs(quantity), abs(position))
    fee_close = fee * closed / abs(quantity)
    realized = (price - avg_cost) * closed * (1.0 if position > 0 else -1.0) - fee_close
    new = position + quantity
    if abs(new) < _EPS:
        return 0.0, 0.0, realized
    if (new > 0) == (position > 0):
        return new, avg_cost, realized
    opened = abs(quantity) - closed
    avg = (price * opened + side * (fee - fee_close)) / opened
    return new, avg, realized


# --------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------


@dataclass
class OrderTicket:
    """One order as the server decoded it from placeOrder, and as the broker keeps it.

    Field names are ib_async ``Order`` attribute names in snake_case. ``raw`` holds every other
    field the client sent; the broker never interprets it and the server echoes it back.
    ``con_id``/``symbol`` identify the stock (either is enough; the broker fills the other).
    The broker updates ``status``, ``filled``, ``remaining``, ``avg_fill_price``,
    ``last_fill_price``, ``why_held``, ``trail_stop_price``, ``perm_id``, ``account``,
    ``submitted_at``, ``commission`` and ``completed_at``.
    """

    order_id: int
    client_id: int
    action: str  # "BUY" / "SELL"
    total_quantity: float
    order_type: str  # "MKT", "LMT", "STP", "STP LMT", "TRAIL"
    con_id: int = 0
    symbol: str = ""
    perm_id: int = 0
    account: str = ""
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = "DAY"  # "DAY" / "GTC"
    oca_group: str = ""
    oca_type: int = 0
    order_ref: str = ""
    transmit: bool = True
    parent_id: int = 0
    display_size: int = 0
    outside_rth: bool = False
    trailing_percent: float | None = None
    trail_stop_price: float | None = None
    what_if: bool = False
    status: str = "PendingSubmit"
    filled: float = 0.0
    remaining: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    why_held: str = ""
    submitted_at: datetime | None = None
    raw: dict = field(default_factory=dict)
    # additions beyond the ib_async Order names:
    commission: float = 0.0  # commission charged so far for this order (sum of executions)
    completed_at: datetime | None = None  # when it reached Filled/Cancelled/Inactive


@dataclass(frozen=True)
class ExecutionRecord:
    """One fill (TWS ``Execution``). ``side`` is "BOT"/"SLD"; ``time`` is tz-aware UTC.

    ``liquidity`` is TWS ``lastLiquidity``: 1 added (a resting limit order), 2 removed.
    """

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    account: str
    con_id: int
    symbol: str
    side: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    time: datetime
    exchange: str
    order_ref: str
    liquidity: int


@dataclass(frozen=True)
class CommissionRecord:
    """TWS ``CommissionReport`` for one execution; ``realized_pnl`` is None for opening fills."""

    exec_id: str
    commission: float
    currency: str = "USD"
    realized_pnl: float | None = None


@dataclass(frozen=True)
class MarginState:
    """What-if answer (TWS ``OrderState`` fields in snake_case). Money as floats in USD."""

    status: str
    init_margin_before: float
    maint_margin_before: float
    equity_with_loan_before: float
    init_margin_change: float
    maint_margin_change: float
    equity_with_loan_change: float
    init_margin_after: float
    maint_margin_after: float
    equity_with_loan_after: float
    commission: float
    min_commission: float
    max_commission: float
    commission_currency: str = "USD"
    warning_text: str = ""


@dataclass(frozen=True)
class TradeRecord:
    """One trade in the account's history, for the tax engine.

    ``quantity`` is signed (+ buy, - sell); ``time`` tz-aware UTC; ``commission`` positive USD;
    ``source`` is "seed" for the seeded portfolio's history and "fill" for executions (then
    ``exec_id`` names the execution and ``trade_id`` equals it). ``trade_id`` is unique and
    deterministic.
    """

    trade_id: str
    time: datetime
    symbol: str
    con_id: int
    quantity: float
    price: float
    commission: float
    currency: str = "USD"
    source: str = "seed"
    exec_id: str = ""


@dataclass(frozen=True)
class PositionRow:
    """A position (reqPositions) and portfolio row (updatePortfolio).

    ``average_cost`` includes commissions, like IBKR. ``realized_pnl`` counts the fills of this
    account since it was created (not the seeded history).
    """

    account: str
    con_id: int
    symbol: str
    quantity: float
    average_cost: float
    market_price: float
    market_value: float
    unrealized_pnl: float
    realized_pnl: float


# --------------------------------------------------------------------------------------------
# Events and errors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderUpdate:
    """An order's status or fields changed (send openOrder + orderStatus). ``ticket`` is a copy.

    When ``ticket.status`` is "Cancelled" the server sends error 202 "Order Canceled - reason:"
    + ``reason`` ("" for a client's cancel; e.g. "DAY order expired", "OCA group cancelled",
    "Parent order cancelled", "Bracket sibling filled", "Global cancel").
    """

    ticket: OrderTicket
    reason: str = ""


@dataclass(frozen=True)
class Fill:
    """An execution (send execDetails then commissionReport)."""

    execution: ExecutionRecord
    commission: CommissionRecord


@dataclass(frozen=True)
class AccountChanged:
    """Cash/positions changed (send account values, portfolio and position updates)."""

    con_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class WhatIf:
    """Answer to a what-if order (send openOrder with this margin state; nothing is stored)."""

    ticket: OrderTicket
    state: MarginState


Event = OrderUpdate | Fill | AccountChanged | WhatIf


class BrokerError(Exception):
    """An error the server reports as a TWS error message: ``code``, ``message``, ``order_id``."""

    def __init__(self, code: int, message: str, order_id: int = -1) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.order_id = order_id


class OrderRejected(BrokerError):
    """An order request was not accepted: placement, modification or cancel.

    ``ticket`` is the rejected ticket (status "Inactive" for 201), None for cancel errors.
    """

    def __init__(
        self,
        code: int,
        message: str,
        ticket: OrderTicket | None = None,
        order_id: int | None = None,
    ) -> None:
        if order_id is None:
            order_id = ticket.order_id if ticket is not None else -1
        super().__init__(code, message, order_id)
        self.ticket = ticket


class StateFileError(RuntimeError):
    """The ``--state`` file exists but cannot be read; the message names the file."""


def _normalise(ticket: OrderTicket) -> None:
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


def _reject(ticket: OrderTicket, reason: str) -> OrderRejected:
    return OrderRejected(201, "Order rejected - reason:" + reason, ticket)


# --------------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------------


@dataclass
class _Order:
    ticket: OrderTicket
    seq: int
    transmitted: bool = True
    triggered: bool = False
    expires_ts: float | None = None
    rested: bool = False  # was checked once and not marketable -> fills add liquidity


@dataclass
class _Position:
    quantity: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0  # from this account's fills (not seeded history)


def _digest(*parts: object) -> int:
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def _plain(obj: Any) -> dict:
    """A dataclass as a shallow dict (datetimes as ISO text) -- much faster than ``asdict``."""
    out = {}
    for name in obj.__dataclass_fields__:
        v = getattr(obj, name)
        out[name] = v.isoformat() if isinstance(v, datetime) else v
    return out


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def _ticket_from(d: dict) -> OrderTicket:
    d = dict(d)
    d["submitted_at"] = _dt(d.get("submitted_at"))
    d["completed_at"] = _dt(d.get("completed_at"))
    return OrderTicket(**d)


# --------------------------------------------------------------------------------------------
# The broker
# --------------------------------------------------------------------------------------------


class Broker:
    """A deterministic paper account (always ``DU...``) trading on a :class:`Market`.

    Same seed + same fixed clock + same sequence of calls -> identical ids, perm ids, exec ids,
    prices and fills. With ``state_file`` the account is loaded from that JSON file if it exists
    (the file's account id and history win over ``seed``/``account_id``) and saved atomically
    after every change.
    """

    def __init__(
        self,
        market: Market,
        seed: int,
        account_id: str | None = None,
        state_file: str | Path | None = None,
        *,
        rth_only: bool = True,
    ) -> None:
        """``rth_only``: orders without ``outside_rth`` fill only during 09:30-16:00 ET."""
        self.market = market
        self.clock = market.clock
        self.seed = int(seed)
        self.rth_only = rth_only
        self.state_file = Path(state_file) if state_file is not None else None
        if account_id is None:
            account_id = f"DU{_digest('account', self.seed) % 9_000_000 + 1_000_000}"
        if not account_id.startswith("DU"):
            raise ValueError(
                f"the paper gateway only runs paper accounts (DU...), not {account_id!r}"
            )
        self.account_id = account_id
        self._listeners: list[Callable[[Event], None]] = []
        self._working: dict[tuple[int, int], _Order] = {}
        self._completed: list[OrderTicket] = []
        self._used_ids: dict[int, set[int]] = {}
        self._max_order_id = 0
        self._seq = 0
        self._perm_base = 1_000_000_000 + _digest("perm", self.seed) % 900_000_000
        self._perm_next = self._perm_base
        self._exec_prefix = _digest("exec", self.seed) & 0xFFFFFFFF
        self._exec_base = _digest("exec-base", self.seed) % 0x80000000
        self._exec_count = 0
        self._trades: list[TradeRecord] = []
        self._executions: list[tuple[ExecutionRecord, CommissionRecord]] = []
        self._positions: dict[int, _Position] = {}
        self._cash = INITIAL_CASH
        self._reject_next: str | None = None
        self._ser_trades: list[str] = []
        self._ser_execs: list[str] = []
        self._ser_completed: list[str] = []
        if self.state_file is not None and self.state_file.exists():
            self._load(self.state_file)
        else:
            for trade in self._seed_history():
                self._book(trade, session=False)
            self._save()

    # ---- events ----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that unsubscribes."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe

    def _emit(self, events: list[Event]) -> list[Event]:
        for ev in events:
            for cb in list(self._listeners):
                cb(ev)
        return events

    # ---- ids -------------------------------------------------------------------------------

    @property
    def next_order_id(self) -> int:
        """Next valid order id (for nextValidId / reqIds): 1 + highest id used by any client."""
        return self._max_order_id + 1

    def _next_perm(self) -> int:
        perm = self._perm_next
        self._perm_next += 1
        return perm

    def _next_exec_id(self) -> str:
        self._exec_count += 1
        return f"{self._exec_prefix:08x}.{self._exec_base + self._exec_count:08x}.01.01"

    # ---- seeded portfolio -----------------------------------------------------------------

    def _seed_history(self) -> list[TradeRecord]:
        """~6 positions in 2-3 lots each: long-term (400-700 days) and short-term (40-330 days)
        lots, one position bought near its 2-year highs (a loss now), one partial sale."""
        rng = np.random.Generator(np.random.PCG64([self.seed & ((1 << 64) - 1), 0xB0B]))
        start = self.clock.now()
        symbols = sorted(UNIVERSE)
        order = [symbols[i] for i in rng.permutation(len(symbols))]
        raw: list[tuple[datetime, str, float]] = []  # (time, symbol, signed qty)

        def trade_time(days_back: float) -> datetime:
            day = (start - timedelta(days=days_back)).astimezone(ET).date()
            while day.weekday() >= 5:
                day -= timedelta(days=1)
            minute = int(rng.integers(0, 330))
            return datetime(day.year, day.month, day.day, 10, 0, tzinfo=ET) + timedelta(
                minutes=minute
            )

        def shares(when: datetime, symbol: str) -> float:
            price = self.market.price_at(symbol, when)
            value = float(rng.uniform(12_000, 45_000))
            return float(max(5, int(value / price / 5) * 5))

        # the loss position: bought at the highest closes of both windows
        current = {s: self.market.price_at(s, start) for s in order}
        loss_symbol = None
        for sym in order:
            lt = self._best_close(sym, start, 400, 700)
            st = self._best_close(sym, start, 40, 330)
            if lt[1] > current[sym] * 1.05 and st[1] > current[sym] * 1.05:
                loss_symbol = sym
                for d, _ in (lt, st):
                    when = datetime(d.year, d.month, d.day, 15, 30, tzinfo=ET)
                    raw.append((when, sym, shares(when, sym)))
                break
        others = [s for s in order if s != loss_symbol][: 6 - (loss_symbol is not None)]
        for n, sym in enumerate(others):
            lt = trade_time(float(rng.uniform(400, 700)))
            st = trade_time(float(rng.uniform(40, 330)))
            lt_qty = shares(lt, sym)
            raw.append((lt, sym, lt_qty))
            raw.append((st, sym, shares(st, sym)))
            if rng.random() < 0.5:
                extra = trade_time(float(rng.uniform(10, 720)))
                raw.append((extra, sym, shares(extra, sym)))
            if n == 0:  # one partial sale, 20-60 days ago, of half the long-term lot's size
                sell = trade_time(float(rng.uniform(20, 60)))
                raw.append((sell, sym, -float(max(5, int(lt_qty / 2 / 5) * 5))))
        raw.sort(key=lambda r: (r[0], r[1]))
        out = []
        for n, (when, sym, qty) in enumerate(raw, start=1):
            price = self.market.price_at(sym, when)
            inst = UNIVERSE[sym]
            out.append(
                TradeRecord(
                    trade_id=f"{self.account_id}-S{n:04d}",
                    time=when.astimezone(UTC),
                    symbol=sym,
                    con_id=inst.con_id,
                    quantity=qty,
                    price=price,
                    commission=stock_commission(qty, price),
                    source="seed",
                )
            )
        return out

    def _best_close(self, symbol: str, start: datetime, lo_days: int, hi_days: int):
        first = (start - timedelta(days=hi_days)).date()
        last = (start - timedelta(days=lo_days)).date()
        return max(self.market.daily_closes(symbol, first, last), key=lambda r: r[1])

    # ---- booking ---------------------------------------------------------------------------

    def _book(self, trade: TradeRecord, session: bool) -> float | None:
        pos = self._positions.setdefault(trade.con_id, _Position())
        pos.quantity, pos.avg_cost, realized = book_trade(
            pos.quantity, pos.avg_cost, trade.quantity, trade.price, trade.commission
        )
        if session and realized is not None:
            pos.realized += realized
        self._cash -= trade.quantity * trade.price + trade.commission
        self._trades.append(trade)
        return realized

    # ---- validation --------------------------------------------------------------------------

    def _resolve(self, ticket: OrderTicket) -> Instrument:
        inst = instrument_by_con_id(ticket.con_id) if ticket.con_id else None
        if inst is None and ticket.symbol:
            inst = instrument(ticket.symbol)
        if inst is None or (ticket.con_id and inst.con_id != ticket.con_id):
            raise OrderRejected(
                200, "No security definition has been found for the request", ticket
            )
        return inst

    def _validate(self, ticket: OrderTicket, inst: Instrument) -> None:
        if ticket.action not in ("BUY", "SELL"):
            raise _reject(ticket, f"Invalid action {ticket.action!r}: must be BUY or SELL")
        q = ticket.total_quantity
        if q is None or not math.isfinite(q) or q <= 0:
            raise _reject(ticket, f"Order quantity must be positive, got {q}")
        if ticket.order_type not in ORDER_TYPES:
            raise _reject(
                ticket,
                f"Unsupported order type {ticket.order_type!r} for this exchange and security "
                f"type (supported: {', '.join(ORDER_TYPES)})",
            )
        if ticket.tif not in ("DAY", "GTC"):
            raise _reject(ticket, f"Unsupported time in force {ticket.tif!r} (DAY or GTC)")
        typ = ticket.order_type
        need = []
        if typ in ("LMT", "STP LMT"):
            need.append(("limit price", ticket.lmt_price))
        if typ in ("STP", "STP LMT"):
            need.append(("stop price", ticket.aux_price))
        if typ == "TRAIL":
            if ticket.trailing_percent is not None and ticket.trailing_percent > 0:
                if ticket.trailing_percent >= 100:
                    raise _reject(ticket, "Trailing percent must be below 100")
            else:
                need.append(("trailing amount", ticket.aux_price))
        for name, value in need:
            if value is None or not math.isfinite(value) or value <= 0:
                raise _reject(ticket, f"Invalid {name} {value} for a {typ} order")
            ticks = value / inst.min_tick
            if abs(ticks - round(ticks)) > 1e-6:
                raise OrderRejected(
                    110,
                    "The price does not conform to the minimum price variation for this contract.",
                    ticket,
                )

    # ---- account arithmetic --------------------------------------------------------------

    def _mark(self, con_id: int) -> float:
        inst = instrument_by_con_id(con_id)
        return self.market.last_price(inst.symbol) if inst else 0.0

    def _margin(
        self, cash: float, quantities: dict[int, float], marks: dict[int, float]
    ) -> tuple[float, float, float, float, float]:
        """(long value, short value, init, maint, equity with loan)."""
        long_v = short_v = 0.0
        for con_id, q in quantities.items():
            v = q * marks[con_id]
            if v >= 0:
                long_v += v
            else:
                short_v -= v
        init = 0.5 * long_v + 0.5 * short_v
        maint = 0.25 * long_v + 0.30 * short_v
        return long_v, short_v, init, maint, cash + long_v - short_v

    def _projection(self, inst: Instrument, signed: float, price: float):
        """Margin figures before and after filling ``signed`` shares at ``price``."""
        qty = {c: p.quantity for c, p in self._positions.items() if abs(p.quantity) > _EPS}
        marks = {c: self._mark(c) for c in qty}
        marks[inst.con_id] = self.market.last_price(inst.symbol)
        before = self._margin(self._cash, qty, marks)
        fee = stock_commission(signed, price)
        after_qty = dict(qty)
        after_qty[inst.con_id] = after_qty.get(inst.con_id, 0.0) + signed
        after = self._margin(self._cash - signed * price - fee, after_qty, marks)
        return before, after, fee

    def _estimate_price(self, ticket: OrderTicket, inst: Instrument) -> float:
        q = self.market.quote(inst.symbol)
        buy = ticket.action == "BUY"
        if ticket.order_type in ("LMT", "STP LMT") and ticket.lmt_price:
            return ticket.lmt_price
        if ticket.order_type == "STP" and ticket.aux_price:
            return ticket.aux_price
        return q.ask if buy else q.bid

    def _check_buying_power(self, ticket: OrderTicket, inst: Instrument) -> None:
        signed = ticket.total_quantity if ticket.action == "BUY" else -ticket.total_quantity
        before, after, _ = self._projection(inst, signed, self._estimate_price(ticket, inst))
        init_after, elv_after = after[2], after[4]
        if init_after > elv_after + _EPS and init_after > before[2] + _EPS:
            raise _reject(
                ticket,
                "YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR EQUITY "
                f"WITH LOAN VALUE [{elv_after:.2f} USD] MUST EXCEED THE INITIAL MARGIN "
                f"[{init_after:.2f} USD]",
            )

    # ---- orders ----------------------------------------------------------------------------

    def reject_next_order(self, reason: str) -> None:
        """Control surface: the next new (non-what-if) order is rejected with 201 + reason."""
        self._reject_next = reason
        self._save()

    def _market_open(self, ts: float | None = None) -> bool:
        ts = self.clock.timestamp() if ts is None else ts
        idx, s = locate(ts)
        open_ts, close_ts = session_bounds(idx)
        return open_ts <= ts < close_ts

    def _can_trade(self, o: _Order, market_open: bool) -> bool:
        return market_open or not self.rth_only or o.ticket.outside_rth

    def _parent(self, o: _Order) -> _Order | None:
        if not o.ticket.parent_id:
            return None
        return self._working.get((o.ticket.client_id, o.ticket.parent_id))

    def _active(self, o: _Order) -> bool:
        """Transmitted and not waiting for a parent to fill."""
        if not o.transmitted:
            return False
        parent = self._parent(o)
        return parent is None or parent.ticket.status == "Filled"

    def _status_for(self, o: _Order, market_open: bool) -> str:
        if not o.transmitted:
            return "PendingSubmit"
        if not self._active(o):
            return "PreSubmitted"
        if o.ticket.order_type in STOP_TYPES and not o.triggered:
            return "PreSubmitted"
        if not self._can_trade(o, market_open):
            # held until the open; an order already working stays "Submitted" overnight
            return "Submitted" if o.ticket.status == "Submitted" else "PreSubmitted"
        return "Submitted"

    def _snapshot(self, o: _Order | OrderTicket, reason: str = "") -> OrderUpdate:
        t = o.ticket if isinstance(o, _Order) else o
        return OrderUpdate(copy.copy(t), reason)

    def place_order(self, ticket: OrderTicket) -> list[Event]:
        """Accept a new order, modify a working one (same client + order id), or answer what-if.

        New orders are only validated and queued here (status events); fills happen in
        :meth:`process`, which the server calls right after. Raises :class:`OrderRejected`:
        200 unknown contract, 201 bad order / buying power / ``reject_next_order``, 110 price
        off the tick grid, 103 duplicate order id, 105 modification changes contract or side,
        135 unknown parent order.
        """
        _normalise(ticket)
        key = (ticket.client_id, ticket.order_id)
        if ticket.what_if:
            return self._emit(self._what_if(ticket))
        if key in self._working:
            return self._emit(self._modify(self._working[key], ticket))
        if ticket.order_id in self._used_ids.get(ticket.client_id, ()):
            raise OrderRejected(103, "Duplicate order id", ticket)
        inst = self._resolve(ticket)
        ticket.con_id, ticket.symbol = inst.con_id, inst.symbol
        ticket.account = self.account_id
        try:
            if self._reject_next is not None:
                reason, self._reject_next = self._reject_next, None
                raise _reject(ticket, reason)
            self._validate(ticket, inst)
            if ticket.parent_id:
                pkey = (ticket.client_id, ticket.parent_id)
                done = [t for t in self._completed if (t.client_id, t.order_id) == pkey]
                if pkey not in self._working and not done:
                    raise OrderRejected(
                        135, f"Can't find order with id ={ticket.parent_id}", ticket
                    )
                if done and done[-1].status != "Filled":
                    raise _reject(ticket, "Parent order is being cancelled.")
            self._check_buying_power(ticket, inst)
        except OrderRejected as exc:
            if exc.code == 201:
                self._use_id(ticket)
                ticket.status = "Inactive"
                ticket.remaining = ticket.total_quantity
                ticket.submitted_at = ticket.completed_at = self.clock.now()
                ticket.perm_id = self._next_perm()
                self._completed.append(copy.copy(ticket))
                self._save()
            raise
        now = self.clock.now()
        self._use_id(ticket)
        self._seq += 1
        ticket.perm_id = self._next_perm()
        ticket.submitted_at = now
        ticket.filled = 0.0
        ticket.remaining = ticket.total_quantity
        ticket.commission = 0.0
        ticket.completed_at = None
        o = _Order(ticket=ticket, seq=self._seq, transmitted=bool(ticket.transmit))
        if ticket.tif == "DAY":
            o.expires_ts = next_session_close(now).timestamp()
        self._working[key] = o
        events: list[Event] = []
        if o.transmitted:
            events += self._transmit(o)
        else:
            ticket.status = "PendingSubmit"
        self._save()
        return self._emit(events)

    def _use_id(self, ticket: OrderTicket) -> None:
        self._used_ids.setdefault(ticket.client_id, set()).add(ticket.order_id)
        self._max_order_id = max(self._max_order_id, ticket.order_id)

    def _transmit(self, o: _Order) -> list[Event]:
        """Transmit ``o`` together with its held parent and held siblings/children."""
        group = [o]
        parent = self._parent(o)
        root = parent if parent is not None else o
        if parent is not None:
            group.append(parent)
        root_id = root.ticket.order_id
        for w in self._working.values():
            if w.ticket.client_id == o.ticket.client_id and w.ticket.parent_id == root_id:
                group.append(w)
        events: list[Event] = []
        market_open = self._market_open()
        unique = {id(w): w for w in group}.values()
        for w in sorted(unique, key=lambda x: x.seq):
            if w.transmitted and w is not o:
                continue
            w.transmitted = True
            w.ticket.transmit = True
            self._init_trail(w)
            w.ticket.status = self._status_for(w, market_open)
            events.append(self._snapshot(w))
        return events

    def _init_trail(self, o: _Order) -> None:
        t = o.ticket
        if t.order_type != "TRAIL" or t.trail_stop_price is not None or not self._active(o):
            return
        inst = UNIVERSE[t.symbol]
        last = self.market.last_price(t.symbol)
        t.trail_stop_price = self._trail_level(t, last, inst)

    @staticmethod
    def _trail_level(t: OrderTicket, last: float, inst: Instrument) -> float:
        if t.trailing_percent is not None and t.trailing_percent > 0:
            amount = last * t.trailing_percent / 100.0
        else:
            amount = t.aux_price or 0.0
        level = last + amount if t.action == "BUY" else last - amount
        inv = round(1.0 / inst.min_tick)
        return round(level * inv) / inv

    def _modify(self, o: _Order, new: OrderTicket) -> list[Event]:
        t = o.ticket
        inst = UNIVERSE[t.symbol]
        if (new.con_id and new.con_id != t.con_id) or (
            new.symbol and new.symbol.upper() != t.symbol
        ):
            raise OrderRejected(105, "Order being modified does not match original order.", new)
        if new.action != t.action:
            raise OrderRejected(105, "Order being modified does not match original order.", new)
        self._validate(new, inst)
        if new.total_quantity < t.filled - _EPS:
            raise _reject(new, "The order size cannot be reduced below the filled quantity")
        if new.order_type != t.order_type:
            o.triggered = False
            t.trail_stop_price = None
        for name in (
            "total_quantity", "order_type", "lmt_price", "aux_price", "tif", "oca_group",
            "oca_type", "order_ref", "display_size", "outside_rth", "trailing_percent", "raw",
        ):  # fmt: skip
            setattr(t, name, getattr(new, name))
        if new.trail_stop_price is not None:
            t.trail_stop_price = new.trail_stop_price
        if t.tif == "GTC":
            o.expires_ts = None
        elif o.expires_ts is None:
            o.expires_ts = next_session_close(self.clock.now()).timestamp()
        t.remaining = t.total_quantity - t.filled
        events: list[Event] = []
        if not o.transmitted:
            if new.transmit:
                events += self._transmit(o)
        else:
            self._init_trail(o)
            t.status = self._status_for(o, self._market_open())
            events.append(self._snapshot(o))
        if t.remaining <= _EPS:
            events += self._finish(o, "Filled")
        self._save()
        return events

    def _what_if(self, ticket: OrderTicket) -> list[Event]:
        inst = self._resolve(ticket)
        self._validate(ticket, inst)
        t = copy.copy(ticket)
        t.con_id, t.symbol, t.account = inst.con_id, inst.symbol, self.account_id
        t.status = "PreSubmitted"
        t.remaining = t.total_quantity
        signed = t.total_quantity if t.action == "BUY" else -t.total_quantity
        price = self._estimate_price(t, inst)
        before, after, fee = self._projection(inst, signed, price)
        _, _, ib, mb, eb = before
        _, _, ia, ma, ea = after
        warning = ""
        if ia > ea + _EPS and ia > ib + _EPS:
            warning = (
                "YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR EQUITY "
                f"WITH LOAN VALUE [{ea:.2f} USD] MUST EXCEED THE INITIAL MARGIN [{ia:.2f} USD]"
            )
        r = lambda x: round(x, 2)  # noqa: E731
        state = MarginState(
            status="PreSubmitted",
            init_margin_before=r(ib),
            maint_margin_before=r(mb),
            equity_with_loan_before=r(eb),
            init_margin_change=r(ia - ib),
            maint_margin_change=r(ma - mb),
            equity_with_loan_change=r(ea - eb),
            init_margin_after=r(ia),
            maint_margin_after=r(ma),
            equity_with_loan_after=r(ea),
            commission=fee,
            min_commission=fee,
            max_commission=fee,
            warning_text=warning,
        )
        return [WhatIf(t, state)]

    def cancel_order(self, order_id: int, client_id: int) -> list[Event]:
        """Cancel a working (or held) order -> OrderUpdate(Cancelled) (+ its bracket children).

        Raises :class:`OrderRejected` (``ticket`` None) 161 for a filled order, 10147 for an
        unknown, cancelled or rejected one.
        """
        o = self._working.get((client_id, order_id))
        if o is None:
            for t in reversed(self._completed):
                if (t.client_id, t.order_id) == (client_id, order_id) and t.status == "Filled":
                    raise OrderRejected(
                        161,
                        "Cancel attempted when order is not in a cancellable state. "
                        f"Order permId ={t.perm_id}",
                        order_id=order_id,
                    )
            raise OrderRejected(
                10147,
                f"OrderId {order_id} that needs to be cancelled is not found.",
                order_id=order_id,
            )
        events = self._finish(o, "Cancelled")
        self._save()
        return self._emit(events)

    def global_cancel(self) -> list[Event]:
        """Cancel every working or held order of every client."""
        events: list[Event] = []
        for o in sorted(self._working.values(), key=lambda w: w.seq):
            if (o.ticket.client_id, o.ticket.order_id) in self._working:
                events += self._finish(o, "Cancelled", "Global cancel")
        self._save()
        return self._emit(events)

    def _finish(self, o: _Order, status: str, reason: str = "") -> list[Event]:
        """Move ``o`` to completed with ``status``; cascade to children when cancelled."""
        t = o.ticket
        key = (t.client_id, t.order_id)
        if key not in self._working:
            return []
        del self._working[key]
        t.status = status
        t.completed_at = self.clock.now()
        self._completed.append(t)
        events: list[Event] = [self._snapshot(o, reason)]
        children = [
            w for w in self._working.values()
            if w.ticket.client_id == t.client_id and w.ticket.parent_id == t.order_id
        ]  # fmt: skip
        if status == "Cancelled":
            for w in children:
                events += self._finish(w, "Cancelled", "Parent order cancelled")
        elif status == "Filled":
            market_open = self._market_open()
            for w in sorted(children, key=lambda x: x.seq):
                if not w.transmitted:
                    continue
                self._init_trail(w)
                new_status = self._status_for(w, market_open)
                if new_status != w.ticket.status:
                    w.ticket.status = new_status
                    events.append(self._snapshot(w))
        return events

    def _reduce(self, o: _Order, qty: float, reason: str) -> list[Event]:
        t = o.ticket
        t.total_quantity = max(t.filled, t.total_quantity - qty)
        t.remaining = t.total_quantity - t.filled
        if t.remaining <= _EPS:
            if t.filled > _EPS:
                return self._finish(o, "Filled")
            return self._finish(o, "Cancelled", reason)
        return [self._snapshot(o)]

    # ---- matching --------------------------------------------------------------------------

    def process(self) -> list[Event]:
        """Match working orders against the market at ``clock.now()``; expire DAY orders.

        Each transmitted order gets at most one execution per call (children activated by a
        parent's fill are checked in the same call).
        """
        if not self._working:
            return []
        now_ts = self.clock.timestamp()
        market_open = self._market_open(now_ts)
        events: list[Event] = []
        touched: set[int] = set()
        seen: set[tuple[int, int]] = set()
        quotes: dict[str, Any] = {}
        while True:
            pending = [
                o for k, o in sorted(self._working.items(), key=lambda kv: kv[1].seq)
                if k not in seen and o.transmitted
            ]  # fmt: skip
            pending = [o for o in pending if self._active(o) or self._expired(o, now_ts)]
            if not pending:
                break
            for o in pending:
                key = (o.ticket.client_id, o.ticket.order_id)
                if key not in self._working:
                    continue
                seen.add(key)
                if self._expired(o, now_ts):
                    events += self._finish(o, "Cancelled", "DAY order expired")
                    continue
                status = self._status_for(o, market_open)
                if not self._can_trade(o, market_open):
                    if status != o.ticket.status:
                        o.ticket.status = status
                        events.append(self._snapshot(o))
                    continue
                sym = o.ticket.symbol
                if sym not in quotes:
                    quotes[sym] = self.market.quote(sym)
                events += self._evaluate(o, quotes[sym], market_open, touched)
        if touched:
            events.append(AccountChanged(tuple(sorted(touched))))
        if events:
            self._save()
        return self._emit(events)

    @staticmethod
    def _expired(o: _Order, now_ts: float) -> bool:
        return o.ticket.tif == "DAY" and o.expires_ts is not None and now_ts >= o.expires_ts

    def _evaluate(self, o: _Order, q, market_open: bool, touched: set[int]) -> list[Event]:
        t = o.ticket
        buy = t.action == "BUY"
        events: list[Event] = []
        if t.order_type in STOP_TYPES and not o.triggered:
            if t.order_type == "TRAIL":
                level = self._trail_level(t, q.last, UNIVERSE[t.symbol])
                if t.trail_stop_price is None:
                    t.trail_stop_price = level
                elif buy:
                    t.trail_stop_price = min(t.trail_stop_price, level)
                else:
                    t.trail_stop_price = max(t.trail_stop_price, level)
                stop = t.trail_stop_price
            else:
                stop = t.aux_price
            if not (q.last >= stop if buy else q.last <= stop):
                return events
            o.triggered = True
        status = self._status_for(o, market_open)
        if status != t.status:
            t.status = status
            events.append(self._snapshot(o))
        if t.order_type in ("LMT", "STP LMT"):
            if buy and q.ask <= t.lmt_price + _EPS:
                price = q.ask
            elif not buy and q.bid >= t.lmt_price - _EPS:
                price = q.bid
            else:
                o.rested = True
                return events
        else:
            price = q.ask if buy else q.bid
        size = q.ask_size if buy else q.bid_size
        qty = min(t.remaining, float(size))
        events += self._fill(o, qty, price, 1 if o.rested else 2, touched)
        return events

    def _fill(self, o: _Order, qty: float, price: float, liquidity: int, touched) -> list[Event]:
        t = o.ticket
        now = self.clock.now()
        cum = t.filled + qty
        avg = (t.avg_fill_price * t.filled + price * qty) / cum
        total_fee = stock_commission(cum, avg)
        fee = round(max(0.0, total_fee - t.commission), 8)
        signed = qty if t.action == "BUY" else -qty
        exec_id = self._next_exec_id()
        trade = TradeRecord(
            trade_id=exec_id,
            time=now,
            symbol=t.symbol,
            con_id=t.con_id,
            quantity=signed,
            price=price,
            commission=fee,
            source="fill",
            exec_id=exec_id,
        )
        realized = self._book(trade, session=True)
        touched.add(t.con_id)
        t.filled = cum
        t.remaining = max(0.0, t.total_quantity - cum)
        t.avg_fill_price = avg
        t.last_fill_price = price
        t.commission = total_fee
        inst = UNIVERSE[t.symbol]
        ex = ExecutionRecord(
            exec_id=exec_id,
            order_id=t.order_id,
            client_id=t.client_id,
            perm_id=t.perm_id,
            account=self.account_id,
            con_id=t.con_id,
            symbol=t.symbol,
            side="BOT" if t.action == "BUY" else "SLD",
            shares=qty,
            price=price,
            cum_qty=cum,
            avg_price=avg,
            time=now,
            exchange=_EXCHANGE.get(inst.primary_exchange, inst.primary_exchange),
            order_ref=t.order_ref,
            liquidity=liquidity,
        )
        cr = CommissionRecord(exec_id, fee, "USD", None if realized is None else round(realized, 8))
        self._executions.append((ex, cr))
        events: list[Event] = [Fill(ex, cr)]
        if t.remaining <= _EPS:
            events += self._finish(o, "Filled")
        else:
            events.append(self._snapshot(o))
        # OCA group and bracket siblings
        for w in sorted(list(self._working.values()), key=lambda x: x.seq):
            if w is o or (w.ticket.client_id, w.ticket.order_id) not in self._working:
                continue
            wt = w.ticket
            if t.oca_group and wt.oca_group == t.oca_group:
                if t.oca_type in (2, 3):
                    events += self._reduce(w, qty, "OCA group reduced")
                else:
                    events += self._finish(w, "Cancelled", "OCA group cancelled")
            elif t.parent_id and wt.parent_id == t.parent_id and wt.client_id == t.client_id:
                events += self._reduce(w, qty, "Bracket sibling filled")
        return events

    # ---- queries ---------------------------------------------------------------------------

    def open_orders(self, client_id: int | None = None) -> list[OrderTicket]:
        """Transmitted working orders (copies), all clients when ``client_id`` is None, in
        placement order. Held (``transmit=False``) orders are not included, as in TWS."""
        return [
            copy.copy(o.ticket)
            for o in sorted(self._working.values(), key=lambda w: w.seq)
            if o.transmitted and (client_id is None or o.ticket.client_id == client_id)
        ]

    def completed_orders(self) -> list[OrderTicket]:
        """Filled / Cancelled / Inactive orders (copies), in completion order."""
        return [copy.copy(t) for t in self._completed]

    def order(self, order_id: int, client_id: int) -> OrderTicket | None:
        """A copy of one order (working, held or completed), or None."""
        o = self._working.get((client_id, order_id))
        if o is not None:
            return copy.copy(o.ticket)
        for t in reversed(self._completed):
            if (t.client_id, t.order_id) == (client_id, order_id):
                return copy.copy(t)
        return None

    def executions(self) -> list[tuple[ExecutionRecord, CommissionRecord]]:
        """All executions of this account since it was created, oldest first."""
        return list(self._executions)

    def trade_history(self) -> list[TradeRecord]:
        """Seeded lot history followed by every fill, oldest first."""
        return list(self._trades)

    @property
    def cash(self) -> float:
        return self._cash

    def _row(self, con_id: int, p: _Position) -> PositionRow:
        """A position valued at the last price at ``clock.now()`` (flat: quantity 0, cost 0)."""
        inst = instrument_by_con_id(con_id)
        mark = self.market.last_price(inst.symbol)
        flat = abs(p.quantity) < _EPS
        return PositionRow(
            account=self.account_id,
            con_id=con_id,
            symbol=inst.symbol,
            quantity=0.0 if flat else p.quantity,
            average_cost=0.0 if flat else p.avg_cost,
            market_price=mark,
            market_value=0.0 if flat else p.quantity * mark,
            unrealized_pnl=0.0 if flat else (mark - p.avg_cost) * p.quantity,
            realized_pnl=p.realized,
        )

    def positions(self) -> list[PositionRow]:
        """Non-zero positions, by symbol, valued at the last price at ``clock.now()``."""
        rows = [self._row(c, p) for c, p in self._positions.items() if abs(p.quantity) >= _EPS]
        return sorted(rows, key=lambda r: r.symbol)

    def portfolio(self) -> list[PositionRow]:
        """Same rows as :meth:`positions`, plus closed positions with realized P&L today."""
        rows = [
            self._row(c, p)
            for c, p in self._positions.items()
            if abs(p.quantity) >= _EPS or abs(p.realized) > _EPS
        ]
        return sorted(rows, key=lambda r: r.symbol)

    def position_rows(self, con_ids) -> list[PositionRow]:
        """The rows of these contracts, flat ones included (quantity 0), as TWS reports a
        position a fill has just closed."""
        return [self._row(c, self._positions.get(c, _Position())) for c in con_ids]

    def account_values(self) -> dict[str, float]:
        """Account summary tags -> value in USD (see the module docstring for the model)."""
        rows = self.positions()
        long_v = sum(r.market_value for r in rows if r.quantity > 0)
        short_v = -sum(r.market_value for r in rows if r.quantity < 0)
        init = 0.5 * long_v + 0.5 * short_v
        maint = 0.25 * long_v + 0.30 * short_v
        nlv = self._cash + long_v - short_v
        available = nlv - init
        excess = nlv - maint
        unrealized = sum(r.unrealized_pnl for r in rows)
        realized = sum(p.realized for p in self._positions.values())
        values = {
            "NetLiquidation": nlv,
            "TotalCashValue": self._cash,
            "SettledCash": self._cash,
            "AccruedCash": 0.0,
            "GrossPositionValue": long_v + short_v,
            "StockMarketValue": long_v - short_v,
            "EquityWithLoanValue": nlv,
            "InitMarginReq": init,
            "MaintMarginReq": maint,
            "FullInitMarginReq": init,
            "FullMaintMarginReq": maint,
            "AvailableFunds": available,
            "FullAvailableFunds": available,
            "ExcessLiquidity": excess,
            "FullExcessLiquidity": excess,
            "BuyingPower": max(0.0, 4.0 * available),
            "Cushion": excess / nlv if nlv else 0.0,
            "Leverage": (long_v + short_v) / nlv if nlv else 0.0,
            "RealizedPnL": realized,
            "UnrealizedPnL": unrealized,
        }
        return {
            k: round(v, 2) if k not in ("Cushion", "Leverage") else round(v, 6)
            for k, v in values.items()
        }

    # ---- persistence -------------------------------------------------------------------------

    def _state_json(self) -> str:
        """The state document. Trades, executions and completed orders never change once
        recorded, so each is serialised once and cached; only the rest is re-encoded."""

        def extend(cache: list[str], items: list, encode) -> str:
            if len(cache) > len(items):
                cache.clear()
            for item in items[len(cache) :]:
                cache.append(encode(item))
            return ",".join(cache)

        dumps = _dumps
        trades = extend(self._ser_trades, self._trades, lambda t: dumps(_plain(t)))
        execs = extend(
            self._ser_execs,
            self._executions,
            lambda ec: "[" + dumps(_plain(ec[0])) + "," + dumps(_plain(ec[1])) + "]",
        )
        completed = extend(self._ser_completed, self._completed, lambda t: dumps(_plain(t)))
        head = {
            "version": STATE_VERSION,
            "account_id": self.account_id,
            "seed": self.seed,
            "initial_cash": INITIAL_CASH,
            "working": [
                {
                    "ticket": _plain(o.ticket),
                    "seq": o.seq,
                    "transmitted": o.transmitted,
                    "triggered": o.triggered,
                    "expires_ts": o.expires_ts,
                    "rested": o.rested,
                }
                for o in sorted(self._working.values(), key=lambda w: w.seq)
            ],
            "used_ids": {str(c): sorted(ids) for c, ids in self._used_ids.items()},
            "counters": {
                "seq": self._seq,
                "perm_next": self._perm_next,
                "exec_count": self._exec_count,
                "max_order_id": self._max_order_id,
            },
            "reject_next": self._reject_next,
            "session_realized": {
                str(c): p.realized for c, p in self._positions.items() if p.realized
            },
        }
        return (
            dumps(head)[:-1]
            + f',"trades":[{trades}],"executions":[{execs}],"completed":[{completed}]}}'
        )

    def _save(self) -> None:
        """Write the state file atomically (temp file in the same directory + rename)."""
        if self.state_file is None:
            return
        path = self.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self._state_json()
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _load(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
                raise ValueError(f"not a version-{STATE_VERSION} gateway state")
            account = state["account_id"]
            if not isinstance(account, str) or not account.startswith("DU"):
                raise ValueError(f"account {account!r} is not a paper account (DU...)")
            trade_names = {f.name for f in fields(TradeRecord)}
            trades = []
            for d in state["trades"]:
                d = {k: v for k, v in d.items() if k in trade_names}
                d["time"] = _dt(d["time"])
                trades.append(TradeRecord(**d))
            executions = []
            for e, c in state["executions"]:
                e = dict(e)
                e["time"] = _dt(e["time"])
                executions.append((ExecutionRecord(**e), CommissionRecord(**c)))
            working = {}
            for w in state["working"]:
                t = _ticket_from(w["ticket"])
                working[(t.client_id, t.order_id)] = _Order(
                    ticket=t,
                    seq=int(w["seq"]),
                    transmitted=bool(w["transmitted"]),
                    triggered=bool(w["triggered"]),
                    expires_ts=w["expires_ts"],
                    rested=bool(w["rested"]),
                )
            completed = [_ticket_from(d) for d in state["completed"]]
            used = {int(c): set(map(int, ids)) for c, ids in state["used_ids"].items()}
            counters = state["counters"]
            initial_cash = float(state["initial_cash"])
            session_realized = {
                int(c): float(v) for c, v in state.get("session_realized", {}).items()
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateFileError(
                f"cannot read the gateway state file {path}: {exc}. Fix or delete the file to "
                "start a fresh seeded account."
            ) from exc
        self.account_id = account
        self._cash = initial_cash
        self._positions = {}
        self._trades = []
        for t in trades:
            self._book(t, session=False)
        for c, r in session_realized.items():
            self._positions.setdefault(c, _Position()).realized = r
        self._executions = executions
        self._working = working
        self._completed = completed
        self._used_ids = used
        self._seq = int(counters["seq"])
        self._perm_next = int(counters["perm_next"])
        self._exec_count = int(counters["exec_count"])
        self._max_order_id = int(counters["max_order_id"])
        self._reject_next = state.get("reject_next")
