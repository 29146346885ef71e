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

Persistence: with ``state_file`` the whole account is rewritten after every change
(:mod:`.persistence`).

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

* ``exercise`` (exerciseOptions) and expiry: :meth:`Broker.process` first settles every held
  option or future whose expiry (16:00 New York) has passed; the trades are
  :mod:`.exercise`'s, booked as commission-free executions of order id 0.

The account (cash per currency, positions, P&L, account values) is :mod:`.account`, margin
:mod:`.margin`, validation :mod:`.validation`, exercise and expiry :mod:`.exercise`, ids
:mod:`.ids`, the seeded portfolio :mod:`.seed` and the state file :mod:`.persistence`; records,
events and errors are :mod:`.records` (re-exported here). Algo orders (Adaptive, Twap, Vwap,
ArrivalPx) take their fills from :mod:`.algos` instead of the matching above.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .account import INITIAL_CASH, Account, Position, book_trade, order_fee
from .algos import AlgoDesk, check_algo, strategy
from .exercise import (
    EXERCISE,
    booked_prices,
    exercise_refusal,
    exercise_trades,
    expiry_timestamp,
    expiry_trades,
)
from .hours import has_own_hours, is_open
from .ids import IdAllocator, digest
from .margin import refusal, what_if_state
from .market import (
    ET,
    Instrument,
    Market,
    instrument,
    instrument_by_con_id,
    next_session_close,
    trading_phase,
)
from .persistence import SavedState, StateStore, WorkingRecord
from .records import (
    AccountChanged,
    BrokerError,
    CommissionRecord,
    Event,
    ExecutionRecord,
    Fill,
    MarginState,
    OrderRejected,
    OrderTicket,
    OrderUpdate,
    PositionRow,
    StateFileError,
    StateWriteError,
    TradeRecord,
    WhatIf,
)
from .seed import seed_history
from .validation import (
    MAX_FX_QUANTITY,
    MAX_ORDER_QUANTITY,
    STOP_TYPES,
    check_values,
    normalise,
    reject,
    resolve,
    validate,
)

__all__ = [
    "INITIAL_CASH",
    "AccountChanged",
    "Broker",
    "BrokerError",
    "CommissionRecord",
    "Event",
    "ExecutionRecord",
    "Fill",
    "MarginState",
    "OrderRejected",
    "OrderTicket",
    "OrderUpdate",
    "PositionRow",
    "StateFileError",
    "StateWriteError",
    "TradeRecord",
    "WhatIf",
    "book_trade",
]

_EPS = 1e-9
LIMIT_TYPES = frozenset({"LMT", "STP LMT"})
_EXCHANGE = {"NASDAQ": "ISLAND", "NYSE": "NYSE", "ARCA": "ARCA"}


def execution_venue(inst: Instrument) -> str:
    """The exchange an execution reports: options on CBOE, the others where they are listed
    (Nasdaq stocks as ISLAND, as TWS names it)."""
    if inst.sec_type == "OPT":
        return "CBOE"
    return _EXCHANGE.get(inst.primary_exchange, inst.primary_exchange)


_Order = WorkingRecord


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
        max_order_quantity: float = MAX_ORDER_QUANTITY,
        max_fx_quantity: float = MAX_FX_QUANTITY,
    ) -> None:
        """``rth_only``: orders without ``outside_rth`` fill only during 09:30-16:00 ET.
        ``max_order_quantity`` (shares, contracts) and ``max_fx_quantity`` (units of an FX
        pair's base currency): larger orders are refused with 383 (TWS's size limits)."""
        self.max_order_quantity = max_order_quantity
        self.max_fx_quantity = max_fx_quantity
        self.market = market
        self.clock = market.clock
        self.seed = int(seed)
        self.rth_only = rth_only
        self.store = StateStore(state_file)
        if account_id is None:
            account_id = f"DU{digest('account', self.seed) % 9_000_000 + 1_000_000}"
        if not account_id.startswith("DU"):
            raise ValueError(
                f"the paper gateway only runs paper accounts (DU...), not {account_id!r}"
            )
        self._listeners: list[Callable[[Event], None]] = []
        self._working: dict[tuple[int, int], _Order] = {}
        self._completed: list[OrderTicket] = []
        self._ids = IdAllocator(self.seed)
        self._seq = 0
        self._executions: list[tuple[ExecutionRecord, CommissionRecord]] = []
        self._reject_next: str | None = None
        self._algos = AlgoDesk(market)
        self.account = Account(account_id, market)
        self.store.acquire()
        self.restored = self.store.exists()  # True: the account came from the state file
        try:
            if self.restored:
                self._restore(self.store.load())
            else:
                for trade in seed_history(market, self.seed, account_id):
                    self.account.book(trade, session=False)
                self.store.save(self._saved_state())
        except BaseException:
            self.store.release()
            raise

    def close(self) -> None:
        """Release the state file's lock (the account stays saved)."""
        self.store.release()

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def state_file(self) -> Path | None:
        return self.store.path

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
        return self._ids.next_order_id

    # ---- margin ----------------------------------------------------------------------------

    def _projection(self, inst: Instrument, signed: float, price: float):
        """Margin figures before and after filling ``signed`` units at ``price``, and the fee."""
        fee = order_fee(inst, signed, price)
        trade = TradeRecord("", self.clock.now(), inst.symbol, inst.con_id, signed, price, fee)
        before, after = self.account.projection(trade)
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
        text = refusal(before, after)
        if text:
            raise reject(ticket, text)

    # ---- orders ----------------------------------------------------------------------------

    def reject_next_order(self, reason: str) -> None:
        """Control surface: the next new (non-what-if) order is rejected with 201 + reason."""
        self._reject_next = reason
        self._save()

    def _phase(self, ts: float | None = None) -> str:
        """ "regular", "extended" or "closed" (see :func:`.market.trading_phase`)."""
        return trading_phase(self.clock.timestamp() if ts is None else ts)

    def _can_trade(self, o: _Order, phase: str) -> bool:
        """Regular hours: any order. Extended hours: limit orders with ``outside_rth`` (a
        market order waits for the open, as in TWS). Closed: nothing (unless not rth_only).
        FX pairs and futures: whenever their own market is open (:mod:`.hours`)."""
        if phase == "regular" or not self.rth_only:
            return True
        sec_type = instrument(o.ticket.symbol).sec_type
        if has_own_hours(sec_type):
            return is_open(sec_type, self.clock.timestamp())
        return phase == "extended" and o.ticket.outside_rth and o.ticket.order_type in LIMIT_TYPES

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

    def _status_for(self, o: _Order, phase: str) -> str:
        if not o.transmitted:
            return "PendingSubmit"
        if not self._active(o):
            return "PreSubmitted"
        if o.ticket.order_type in STOP_TYPES and not o.triggered:
            return "PreSubmitted"
        if not self._can_trade(o, phase):
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
        off the tick grid, 103 duplicate order id, 104 modifying a filled order, 105
        modification changes contract or side, 135 unknown parent order, 383 over the size
        limit; :class:`StateWriteError` (201) when the state file cannot be written.
        """
        normalise(ticket)
        check_values(ticket, self.max_order_quantity, self.max_fx_quantity)
        key = (ticket.client_id, ticket.order_id)
        if ticket.what_if:
            return self._emit(self._what_if(ticket))
        if key in self._working:
            return self._emit(self._modify(self._working[key], ticket))
        if self._ids.is_used(ticket.client_id, ticket.order_id):
            done = self.order(ticket.order_id, ticket.client_id)
            if done is not None and done.status == "Filled":
                raise OrderRejected(104, "Can't modify a filled order.", ticket)
            raise OrderRejected(103, "Duplicate order id", ticket)
        inst = resolve(ticket)
        ticket.con_id, ticket.symbol = inst.con_id, inst.symbol
        ticket.account = self.account_id
        try:
            if self._reject_next is not None:
                reason, self._reject_next = self._reject_next, None
                raise reject(ticket, reason)
            validate(ticket, inst)
            check_algo(ticket, self.clock.now())
            if ticket.parent_id:
                pkey = (ticket.client_id, ticket.parent_id)
                done = [t for t in self._completed if (t.client_id, t.order_id) == pkey]
                if pkey not in self._working and not done:
                    raise OrderRejected(
                        135, f"Can't find order with id ={ticket.parent_id}", ticket
                    )
                if done and done[-1].status != "Filled":
                    raise reject(ticket, "Parent order is being cancelled.")
            self._check_buying_power(ticket, inst)
        except OrderRejected as exc:
            if exc.code == 201:
                self._ids.use(ticket.client_id, ticket.order_id)
                ticket.status = "Inactive"
                ticket.remaining = ticket.total_quantity
                ticket.submitted_at = ticket.completed_at = self.clock.now()
                ticket.perm_id = self._ids.next_perm()
                self._completed.append(copy.copy(ticket))
                self._save()
            raise
        now = self.clock.now()
        self._ids.use(ticket.client_id, ticket.order_id)
        self._seq += 1
        ticket.perm_id = self._ids.next_perm()
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
        phase = self._phase()
        unique = {id(w): w for w in group}.values()
        for w in sorted(unique, key=lambda x: x.seq):
            if w.transmitted and w is not o:
                continue
            w.transmitted = True
            w.ticket.transmit = True
            self._init_trail(w)
            w.ticket.status = self._status_for(w, phase)
            events.append(self._snapshot(w))
        return events

    def _init_trail(self, o: _Order) -> None:
        t = o.ticket
        if t.order_type != "TRAIL" or t.trail_stop_price is not None or not self._active(o):
            return
        inst = instrument(t.symbol)
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
        inst = instrument(t.symbol)
        if (new.con_id and new.con_id != t.con_id) or (
            new.symbol and new.symbol.upper() != t.symbol
        ):
            raise OrderRejected(105, "Order being modified does not match original order.", new)
        if new.action != t.action:
            raise OrderRejected(105, "Order being modified does not match original order.", new)
        validate(new, inst)
        if new.total_quantity < t.filled - _EPS:
            raise reject(new, "The order size cannot be reduced below the filled quantity")
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
            t.status = self._status_for(o, self._phase())
            events.append(self._snapshot(o))
        if t.remaining <= _EPS:
            events += self._finish(o, "Filled")
        self._save()
        return events

    def _what_if(self, ticket: OrderTicket) -> list[Event]:
        inst = resolve(ticket)
        validate(ticket, inst)
        t = copy.copy(ticket)
        t.con_id, t.symbol, t.account = inst.con_id, inst.symbol, self.account_id
        t.status = "PreSubmitted"
        t.remaining = t.total_quantity
        signed = t.total_quantity if t.action == "BUY" else -t.total_quantity
        before, after, fee = self._projection(inst, signed, self._estimate_price(t, inst))
        return [WhatIf(t, what_if_state(before, after, fee))]

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
            phase = self._phase()
            for w in sorted(children, key=lambda x: x.seq):
                if not w.transmitted:
                    continue
                self._init_trail(w)
                new_status = self._status_for(w, phase)
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
        now_ts = self.clock.timestamp()
        events: list[Event] = []
        touched: set[int] = set()
        expiries = self.account.expiries
        if expiries and min(map(expiry_timestamp, expiries.values())) <= now_ts:
            events += self._expire(now_ts, touched)
        if not self._working:
            return self._account_changed(events, touched)
        phase = self._phase(now_ts)
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
                status = self._status_for(o, phase)
                if not self._can_trade(o, phase):
                    if status != o.ticket.status:
                        o.ticket.status = status
                        events.append(self._snapshot(o))
                    continue
                sym = o.ticket.symbol
                if sym not in quotes:
                    quotes[sym] = self.market.quote(sym)
                events += self._evaluate(o, quotes[sym], phase, touched)
        return self._account_changed(events, touched)

    def _account_changed(self, events: list[Event], touched: set[int]) -> list[Event]:
        """Close a batch of events: one AccountChanged for the contracts touched, then save."""
        if touched:
            events.append(AccountChanged(tuple(sorted(touched))))
        if events:
            self._save()
        return self._emit(events)

    # ---- exercise and expiry (see :mod:`.exercise`) --------------------------------------------

    def exercise(
        self, client_id: int, con_id: int, action: int, contracts: float, override: bool
    ) -> list[Event]:
        """``exerciseOptions``: exercise (action 1) or lapse (2) ``contracts`` long options.

        Books the trades of :func:`.exercise.exercise_trades` (or the lapse) as executions
        of order id 0 for ``client_id``, with zero commission. Raises :class:`BrokerError`
        321 naming the problem (no such long position, out of the money without override,
        a European option before expiry, ...).
        """
        inst = instrument_by_con_id(con_id)
        if inst is None:
            raise BrokerError(200, f"No security definition has been found for conId {con_id}")
        position = self.account.positions.get(con_id, Position())
        held = position.quantity
        underlying = self.market.last_price(inst.underlying) if inst.underlying else 0.0
        today = self.clock.now().astimezone(ET).strftime("%Y%m%d")
        text = exercise_refusal(inst, action, contracts, held, underlying, override, today)
        if text:
            raise BrokerError(321, f"Error validating request: exerciseOptions: {text}")
        if action == EXERCISE:
            trades = exercise_trades(inst, contracts, underlying)
        else:
            trades = [(inst, -contracts, 0.0)]
        touched: set[int] = set()
        prices = booked_prices(trades, position.avg_cost)
        events = self._book_settlement(trades, prices, client_id, touched)
        return self._account_changed(events, touched)

    def _expire(self, now_ts: float, touched: set[int]) -> list[Event]:
        """Settle every held option or future whose expiry has passed (auto-exercise)."""
        events: list[Event] = []
        for con_id, expiry in sorted(self.account.expiries.items()):
            ts = expiry_timestamp(expiry)
            if ts > now_ts:
                continue
            inst = instrument_by_con_id(con_id)
            when = datetime.fromtimestamp(ts, UTC)
            underlying = self.market.quote_at(inst.underlying, when).last
            position = self.account.positions[con_id]
            trades = expiry_trades(inst, position.quantity, underlying)
            prices = booked_prices(trades, position.avg_cost)
            events += self._book_settlement(trades, prices, 0, touched)
        return events

    def _book_settlement(
        self, trades, prices: list[float], client_id: int, touched: set[int]
    ) -> list[Event]:
        """Book exercise, lapse or expiry ``trades`` (at the account's ``prices``) as
        commission-free executions of order 0."""
        events: list[Event] = []
        now = self.clock.now()
        for (inst, quantity, price), booked in zip(trades, prices, strict=True):
            exec_id = self._ids.next_exec_id()
            trade = TradeRecord(
                exec_id, now, inst.symbol, inst.con_id, quantity, booked, 0.0,
                currency=inst.currency, source="exercise", exec_id=exec_id,
            )  # fmt: skip
            realized = self.account.book(trade, session=True)
            touched.add(inst.con_id)
            shares = abs(quantity)
            ex = ExecutionRecord(
                exec_id, 0, client_id, 0, self.account_id, inst.con_id, inst.symbol,
                "BOT" if quantity > 0 else "SLD", shares, price, shares, price, now,
                execution_venue(inst), "", 0,
            )  # fmt: skip
            cr = CommissionRecord(
                exec_id, 0.0, "USD", None if realized is None else round(realized, 8)
            )
            self._executions.append((ex, cr))
            events.append(Fill(ex, cr))
        return events

    @staticmethod
    def _expired(o: _Order, now_ts: float) -> bool:
        return o.ticket.tif == "DAY" and o.expires_ts is not None and now_ts >= o.expires_ts

    def _evaluate(self, o: _Order, q, phase: str, touched: set[int]) -> list[Event]:
        t = o.ticket
        buy = t.action == "BUY"
        events: list[Event] = []
        if t.order_type in STOP_TYPES and not o.triggered:
            if t.order_type == "TRAIL":
                level = self._trail_level(t, q.last, instrument(t.symbol))
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
        status = self._status_for(o, phase)
        if status != t.status:
            t.status = status
            events.append(self._snapshot(o))
        if strategy(t):
            return events + self._algo_fills(o, touched)
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

    def _algo_fills(self, o: _Order, touched: set[int]) -> list[Event]:
        """An algo order's child fills due now, and its end once its window is over
        (see :mod:`.algos`)."""
        step = self._algos.step(o, o.ticket, self.clock.timestamp(), self.clock.fixed)
        key = (o.ticket.client_id, o.ticket.order_id)
        events: list[Event] = []
        for child in step.fills:
            if key in self._working:
                events += self._fill(
                    o, child.quantity, child.price, child.liquidity, touched, child.when
                )
        if step.cancel and key in self._working:
            events += self._finish(o, "Cancelled", step.cancel)
        return events

    def _fill(
        self, o: _Order, qty: float, price: float, liquidity: int, touched, when=None
    ) -> list[Event]:
        """Book one execution of ``o`` (at ``when``, an algo child's time; else now)."""
        t = o.ticket
        now = when or self.clock.now()
        cum = t.filled + qty
        avg = (t.avg_fill_price * t.filled + price * qty) / cum
        inst = instrument(t.symbol)
        total_fee = order_fee(inst, cum, avg)
        fee = round(max(0.0, total_fee - t.commission), 8)
        signed = qty if t.action == "BUY" else -qty
        exec_id = self._ids.next_exec_id()
        trade = TradeRecord(
            trade_id=exec_id,
            time=now,
            symbol=t.symbol,
            con_id=t.con_id,
            quantity=signed,
            price=price,
            commission=fee,
            currency=inst.currency,
            source="fill",
            exec_id=exec_id,
        )
        realized = self.account.book(trade, session=True)
        touched.add(t.con_id)
        t.filled = cum
        t.remaining = max(0.0, t.total_quantity - cum)
        t.avg_fill_price = avg
        t.last_fill_price = price
        t.commission = total_fee
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
            exchange=execution_venue(inst),
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
        return list(self.account.trades)

    @property
    def cash(self) -> float:
        """Cash balance in USD (every currency: ``account.balances``)."""
        return self.account.cash

    def positions(self) -> list[PositionRow]:
        """Non-zero positions, by symbol, valued at the last price at ``clock.now()``."""
        return self.account.position_list()

    def portfolio(self) -> list[PositionRow]:
        """Same rows as :meth:`positions`, plus closed positions with realized P&L today."""
        return self.account.portfolio()

    def position_rows(self, con_ids) -> list[PositionRow]:
        """The rows of these contracts, flat ones included (quantity 0)."""
        return self.account.position_rows(con_ids)

    def account_values(self) -> dict[str, float]:
        """Account summary tags -> value in USD (see :meth:`.account.Account.values`)."""
        return self.account.values()

    # ---- persistence -------------------------------------------------------------------------

    def _saved_state(self) -> SavedState:
        counters = self._ids.state()
        del counters["used_ids"]
        return SavedState(
            account_id=self.account_id,
            seed=self.seed,
            initial_cash=INITIAL_CASH,
            trades=self.account.trades,
            executions=self._executions,
            working=sorted(self._working.values(), key=lambda w: w.seq),
            completed=self._completed,
            used_ids=self._ids.used,
            counters={"seq": self._seq, **counters},
            reject_next=self._reject_next,
            session_realized={c: p.realized for c, p in self.account.positions.items()},
        )

    def _save(self) -> None:
        """Write the state file (nothing without one). When the write fails, the account goes
        back to the last saved state and :class:`StateWriteError` is raised: nothing is
        half-booked."""
        if self.store.path is None:
            return
        try:
            self.store.save(self._saved_state())
        except OSError as exc:
            self._restore(self.store.load())
            raise StateWriteError(self.store.path, exc) from exc

    def _restore(self, state: SavedState) -> None:
        self.account = Account(state.account_id, self.market, state.initial_cash)
        for t in state.trades:
            self.account.book(t, session=False)
        for c, r in state.session_realized.items():
            self.account.positions.setdefault(c, Position()).realized = r
        self._executions = state.executions
        self._working = {(w.ticket.client_id, w.ticket.order_id): w for w in state.working}
        self._completed = state.completed
        self._ids.restore(state.used_ids, state.counters)
        self._seq = state.counters["seq"]
        self._reject_next = state.reject_next
