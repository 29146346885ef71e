"""Plan -> orders: idempotency by ``orderRef``, write-ahead intents, status tracking, what-if.

Every order carries ``orderRef`` = its idempotency key: a decision's id (bracket legs add
``:stop`` / ``:target``), or the caller's ``order_ref``, or a generated one. A key is sent at
most once: before transmitting, the ledger's intents and the broker's open orders, completed
orders and executions are searched for it. The intent is written to the ledger *before* the
order goes out, so a crash in between is resolved by ``reconcile`` (which adopts what the broker
has under that key) and never by sending again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pandas as pd
from ib_async import LimitOrder, MarketOrder, Order, StopLimitOrder, StopOrder

from . import frames
from .errors import OrderRejected
from .gates import session_denial
from .ledger import OPENING, now_utc
from .risk import check_orders, order_value_problem

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger("ibkr_nb.execution")

ORDER_TYPES = ("MKT", "LMT", "STP", "STP LMT", "TRAIL")
ANOTHER_SESSION = "another live session (notebook) is sending this orderRef right now"
RETRY_AFTER_DROP = range(3)  # waits for a batch's final states: the first, two after a drop
RESULT_COLUMNS = [
    "decision_id",
    "order_ref",
    "symbol",
    "action",
    "quantity",
    "order_type",
    "limit_price",
    "order_id",
    "status",
    "filled",
    "remaining",
    "avg_fill_price",
    "commission",
    "reason",
]
"""``status``: the broker's (Filled, Submitted, PreSubmitted, Cancelled, Inactive), or
``dry_run`` (would be sent), ``rejected`` (a gate or the broker refused; ``reason`` says which),
``duplicate`` (this key was sent before; nothing sent now), ``timeout`` (no final state in time).
``quantity`` signed; ``commission`` in the account currency."""


@dataclass
class OrderSpec:
    """One order as a person or a plan states it; ``quantity`` signed (+ buy, - sell)."""

    symbol: str
    quantity: float
    order_type: str = "MKT"
    limit_price: float | None = None
    stop_price: float | None = None
    trail_amount: float | None = None
    trail_percent: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    bracket_quantity: float | None = None  # shares the stop and target legs close
    tif: str = "DAY"
    outside_rth: bool = False
    order_ref: str = ""
    decision_id: str = ""
    contract: object | None = field(default=None, repr=False)

    def legs(self) -> list[tuple[str, str, float, dict]]:
        """``(order_ref, order_type, signed quantity, prices)`` for the parent and its legs.

        The stop leg is a STP at ``stop_loss``, or a TRAIL when a trail is given on a parent
        that is not itself a TRAIL; legs close ``bracket_quantity`` shares (default: all)."""
        legs = [(self.order_ref, self.order_type, self.quantity, self._prices())]
        closing = -math.copysign(self.bracket_quantity or abs(self.quantity), self.quantity)
        trailing = self.order_type != "TRAIL" and (
            self.trail_amount is not None or self.trail_percent is not None
        )
        if trailing:
            trail = {"trail_amount": self.trail_amount, "trail_percent": self.trail_percent}
            legs.append((f"{self.order_ref}:stop", "TRAIL", closing, trail))
        elif self.stop_loss is not None:
            legs.append((f"{self.order_ref}:stop", "STP", closing, {"stop_price": self.stop_loss}))
        if self.take_profit is not None:
            legs.append(
                (f"{self.order_ref}:target", "LMT", closing, {"limit_price": self.take_profit})
            )
        return legs

    def _prices(self) -> dict:
        return {
            "limit_price": self.limit_price,
            "stop_price": self.stop_price,
            "trail_amount": self.trail_amount if self.order_type == "TRAIL" else None,
            "trail_percent": self.trail_percent if self.order_type == "TRAIL" else None,
        }


def new_order_ref() -> str:
    """A generated idempotency key for a manual order without one."""
    return f"nb-{uuid.uuid4().hex[:12]}"


def validate_spec(spec: OrderSpec, limits) -> OrderSpec:
    """Normalise the order type and refuse values that must never be sent (``OrderRejected``)."""
    order_type = (spec.order_type or "MKT").upper()
    if order_type not in ORDER_TYPES:
        raise OrderRejected(
            "ORDER_TYPE", f"ORDER_TYPE: {order_type!r} is not one of {', '.join(ORDER_TYPES)}."
        )
    prices = {
        "limit_price": spec.limit_price,
        "stop_price": spec.stop_price,
        "stop_loss": spec.stop_loss,
        "take_profit": spec.take_profit,
        "trail_amount": spec.trail_amount,
        "trail_percent": spec.trail_percent,
    }
    problem = order_value_problem(spec.quantity, prices, limits)
    if problem:
        raise OrderRejected(*problem)
    needs = {
        "LMT": ["limit_price"],
        "STP": ["stop_price"],
        "STP LMT": ["limit_price", "stop_price"],
    }
    for name in needs.get(order_type, []):
        if prices[name] is None:
            raise OrderRejected("PRICE", f"PRICE: a {order_type} order needs {name}.")
    if order_type == "TRAIL" and spec.trail_amount is None and spec.trail_percent is None:
        raise OrderRejected("PRICE", "PRICE: a TRAIL order needs trail as an amount or percent.")
    side = 1 if spec.quantity > 0 else -1
    reference = spec.limit_price
    if reference is not None:
        if spec.stop_loss is not None and side * (reference - spec.stop_loss) <= 0:
            raise OrderRejected("STOP_LOSS", "STOP_LOSS: the stop loss is on the wrong side.")
        if spec.take_profit is not None and side * (spec.take_profit - reference) <= 0:
            raise OrderRejected("TAKE_PROFIT", "TAKE_PROFIT: the target is on the wrong side.")
    return replace(spec, order_type=order_type, quantity=float(spec.quantity))


def build_order(
    order_type: str, quantity: float, prices: dict, account: str, spec: OrderSpec
) -> Order:
    """An ib_async Order from a signed quantity (+ buy, - sell)."""
    action, size = ("BUY", quantity) if quantity > 0 else ("SELL", -quantity)
    common = {
        "tif": spec.tif.upper(),
        "outsideRth": spec.outside_rth,
        "account": account,
    }
    if order_type == "MKT":
        return MarketOrder(action, size, **common)
    if order_type == "LMT":
        return LimitOrder(action, size, prices["limit_price"], **common)
    if order_type == "STP":
        return StopOrder(action, size, prices["stop_price"], **common)
    if order_type == "STP LMT":
        return StopLimitOrder(action, size, prices["limit_price"], prices["stop_price"], **common)
    order = Order(action=action, totalQuantity=size, orderType="TRAIL", **common)
    if prices.get("trail_percent") is not None:
        order.trailingPercent = prices["trail_percent"]
    else:
        order.auxPrice = prices["trail_amount"]
    return order


def specs_from_plan(plan: pd.DataFrame) -> list[OrderSpec]:
    """Order specs for the plan's ``planned`` rows (entry LMT plus bracket legs)."""

    def num(value) -> float | None:
        return None if value is None or pd.isna(value) else float(value)

    specs = []
    for row in plan[plan["status"] == "planned"].itertuples(index=False):
        opened = abs(row.position_after) if row.position_after * row.quantity > 0 else 0
        specs.append(
            OrderSpec(
                symbol=row.symbol,
                quantity=float(row.quantity),
                order_type=row.order_type or "LMT",
                limit_price=num(row.limit_price),
                stop_loss=num(row.stop_loss),
                take_profit=num(row.take_profit),
                trail_percent=num(row.trail_percent),
                bracket_quantity=min(abs(row.quantity), opened) or None,
                order_ref=row.order_ref,
                decision_id=row.decision_id,
            )
        )
    return specs


@dataclass
class _Sent:
    spec: OrderSpec
    trades: list = field(default_factory=list)


class Executor:
    """Sends specs through one session with the gates, the ledger and idempotency."""

    def __init__(self, session: Session, *, allow_live: bool, progress: Callable | None = None):
        self.session = session
        self.ledger = session.ledger
        self.allow_live = allow_live
        self.progress = progress or (lambda text: None)

    # -- idempotency -------------------------------------------------------------------------

    def broker_refs(self) -> dict[str, object]:
        """orderRef -> Trade for every order the broker knows of (open, completed, executed)."""
        ib = self.session.ib
        self.session.request("reqAllOpenOrders")
        self.session.request("reqCompletedOrders", False)
        self.session.request("reqExecutions")
        known: dict[str, object] = {}
        for trade in ib.trades():
            if trade.order.orderRef:
                known.setdefault(trade.order.orderRef, trade)
        for fill in ib.fills():
            if fill.execution.orderRef:
                known.setdefault(fill.execution.orderRef, None)
        return known

    def already_sent(self, refs: list[str], at_broker: dict) -> dict[str, str]:
        """ref -> why it must not be sent again (ledger intent or the broker has it)."""
        sent: dict[str, str] = {}
        for ref in refs:
            if ref in at_broker:
                sent[ref] = "the broker already has an order with this orderRef"
        intents = self.ledger.known_refs(refs)
        for row in intents.itertuples(index=False):
            if row.status in ("acknowledged", "adopted") and row.order_ref not in sent:
                sent[row.order_ref] = f"the ledger has it as {row.status} (order {row.order_id})"
        return sent

    # -- sending -----------------------------------------------------------------------------

    def intent_rows(self, spec: OrderSpec, contract, position_before: float) -> list[dict]:
        """The ledger's intent rows of an order: the parent and each bracket leg."""
        return [
            {
                "order_ref": ref,
                "decision_id": spec.decision_id or None,
                "parent_ref": spec.order_ref if ref != spec.order_ref else None,
                "account": self.session.account,
                "symbol": contract.symbol,
                "action": "BUY" if qty > 0 else "SELL",
                "quantity": qty,
                "order_type": order_type,
                "limit_price": prices.get("limit_price"),
                "stop_price": prices.get("stop_price"),
                "trail_percent": prices.get("trail_percent"),
                "tif": spec.tif,
                "notional": abs(qty) * (spec.limit_price or 0.0) if ref == spec.order_ref else 0.0,
                "position_before": position_before,
            }
            for ref, order_type, qty, prices in spec.legs()
        ]

    def send(self, orders: list[tuple[OrderSpec, float]]) -> tuple[list[_Sent], list[OrderSpec]]:
        """Write and claim the intents of every ``(spec, position_before)`` in one transaction,
        transmit each claimed parent and its legs, then mark them transmitted in one
        transaction (a DuckDB file costs tens of ms per open, too much per order). Returns the
        sent orders and the specs left alone because another live session is sending them."""
        session = self.session
        contracts = [spec.contract or session.contract(spec.symbol) for spec, _ in orders]
        claimed = set(
            self.ledger.record_intents(
                pd.DataFrame(
                    [
                        row
                        for (spec, before), contract in zip(orders, contracts, strict=True)
                        for row in self.intent_rows(spec, contract, before)
                    ]
                )
            )
        )
        mine = [
            (s, c) for (s, _), c in zip(orders, contracts, strict=True) if s.order_ref in claimed
        ]
        batch = []
        for number, (spec, contract) in enumerate(mine, 1):
            self.progress(
                f"[{number}/{len(mine)}] {spec.order_ref}: {spec.quantity:+g} {spec.symbol}"
            )
            batch.append(self.transmit(spec, contract))
        placed = [t.order for sent in batch for t in sent.trades]
        self.ledger.mark_intent(
            [o.orderRef for o in placed],
            "transmitted",
            order_id=[o.orderId for o in placed],
            transmitted_at=now_utc(),
        )
        return batch, [spec for spec, _ in orders if spec.order_ref not in claimed]

    def transmit(self, spec: OrderSpec, contract) -> _Sent:
        """Place the parent and its legs (only the last leg transmits the bracket)."""
        session = self.session
        legs = spec.legs()
        orders = [build_order(t, q, p, session.account, spec) for _, t, q, p in legs]
        session.ensure_connected()
        parent_id = session.ib.client.getReqId()
        for i, ((ref, *_), order) in enumerate(zip(legs, orders, strict=True)):
            order.orderRef = ref
            order.orderId = parent_id if i == 0 else session.ib.client.getReqId()
            if i:
                order.parentId = parent_id
            order.transmit = i == len(orders) - 1
        return _Sent(spec, [session.ib.placeOrder(contract, order) for order in orders])

    def settle(self, batch: list[_Sent], timeout: float) -> None:
        """Wait for final states; re-send (once) any key the broker never received, e.g. when
        the connection dropped mid-batch; then store statuses and fills in the ledger."""
        self.wait_final(batch, timeout)
        at_broker = self.broker_refs()
        lost = [s for s in batch if s.spec.order_ref not in at_broker]
        for sent in lost:
            log.warning("order %s never reached the broker; sending it again", sent.spec.order_ref)
        if lost:
            again, _ = self.send([(s.spec, math.nan) for s in lost])  # claimed: ours already
            for sent, resent in zip(lost, again, strict=True):
                sent.trades = resent.trades
            self.wait_final(lost, timeout)
            at_broker = self.broker_refs()
        for sent in batch:  # after a reconnect the broker's state lives in new Trade objects
            sent.trades = [at_broker.get(t.order.orderRef) or t for t in sent.trades]
        known = [t.order for s in batch for t in s.trades if t.order.orderRef in at_broker]
        self.ledger.mark_intent(
            [o.orderRef for o in known], "acknowledged", order_id=[o.orderId for o in known]
        )
        self.record(batch)

    def wait_final(self, batch: list[_Sent], timeout: float) -> None:
        """Wait until the batch's parents reach a final state (or ``timeout``), across drops.

        After a reconnect the broker's state lives in the new connection's Trade objects; an
        order sent into the dropped socket has none and is not waited for. ib_async cancels a
        wait on any connection's error (a dropped one flushing its throttled queue, too), so
        a ``ConnectionError`` means: reconnect if needed and wait again."""
        for _ in RETRY_AFTER_DROP:
            self.session.ensure_connected()
            current = {t.order.orderRef: t for t in self.session.ib.trades() if t.order.orderRef}
            waiting = [current[s.spec.order_ref] for s in batch if s.spec.order_ref in current]
            try:
                wait_until_done(self.session.ib, waiting, timeout)
                return
            except ConnectionError:
                log.warning("a connection dropped while waiting for %d orders", len(waiting))

    def record(self, batch: list[_Sent]) -> None:
        """Store status histories and fills of the batch in the ledger (one transaction each)."""
        trades = [t for s in batch for t in s.trades]
        refs = {t.order.orderRef for t in trades}
        self.ledger.record_order_status(order_status_rows(trades))
        fills = [
            f
            for f in self.session.ib.fills()
            if f.execution.orderRef in refs and f.execution.acctNumber == self.session.account
        ]
        if fills:
            self.ledger.record_fills(*ledger_fills(frames.executions_frame(fills), "session"))


def wait_until_done(ib, trades: list, timeout: float) -> None:
    """Event-driven wait: the listener is attached before the loop runs, so a reply that
    arrives all at once cannot slip past (as it can with ``IB.waitOnUpdate``)."""
    pending = [t for t in trades if not t.isDone()]
    if not pending:
        return
    finished = asyncio.get_event_loop().create_future()

    def check(_trade=None) -> None:
        if all(t.isDone() for t in pending) and not finished.done():
            finished.set_result(None)

    for t in pending:
        t.statusEvent += check
    try:
        ib.run(asyncio.wait_for(finished, timeout))
    except TimeoutError:
        pass
    finally:
        for t in pending:
            t.statusEvent -= check


def order_status_rows(trades) -> pd.DataFrame:
    """Every status each trade went through (its log), for the ledger's history."""
    rows = []
    for t in trades:
        o, s = t.order, t.orderStatus
        for entry in t.log:
            rows.append(
                {
                    "order_ref": o.orderRef,
                    "order_id": o.orderId,
                    "perm_id": o.permId,
                    "account": o.account,
                    "symbol": t.contract.symbol,
                    "status": entry.status,
                    "filled": float(s.filled),
                    "remaining": float(s.remaining),
                    "avg_fill_price": frames.clean(s.avgFillPrice) if s.filled else math.nan,
                    "message": entry.message,
                    "at": entry.time,
                }
            )
    return pd.DataFrame(rows)


def ledger_fills(executions: pd.DataFrame, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ledger's fills and commissions from an ``executions_frame``."""
    fills = executions.assign(source=source, flag="")
    commissions = executions[["exec_id", "commission", "realized_pnl", "currency"]]
    return fills, commissions


def result_rows(batch: list[_Sent], wait: float) -> list[dict]:
    """One row per transmitted parent order, with its final state."""
    rows = []
    for sent in batch:
        trade = sent.trades[0]
        s = trade.orderStatus
        errors = [e.message for e in trade.log if e.errorCode]
        status = s.status if trade.isDone() or s.status else "timeout"
        reason = errors[-1] if errors and status in ("Cancelled", "Inactive") else ""
        if status == "PreSubmitted":
            reason = "waiting for the market to open"
        elif not trade.isDone() and status == "Submitted":
            reason = f"working after {wait:g} s"
        elif status == "PendingSubmit":
            reason = (
                "the broker never confirmed it (the connection dropped twice); nothing filled. "
                "Run execute again: it sends only what the broker does not have"
            )
        commission = sum(
            f.commissionReport.commission
            for t in sent.trades
            for f in t.fills
            if f.commissionReport.execId
        )
        rows.append(
            spec_row(
                sent.spec,
                order_id=trade.order.orderId,
                status="rejected" if status in ("Inactive",) and errors else status,
                filled=float(s.filled) * (1 if sent.spec.quantity > 0 else -1),
                remaining=float(s.remaining),
                avg_fill_price=frames.clean(s.avgFillPrice) if s.filled else math.nan,
                commission=commission,
                reason=reason,
            )
        )
    return rows


def spec_row(spec: OrderSpec, **values) -> dict:
    row = {
        "decision_id": spec.decision_id,
        "order_ref": spec.order_ref,
        "symbol": spec.symbol,
        "action": "BUY" if spec.quantity > 0 else "SELL",
        "quantity": spec.quantity,
        "order_type": spec.order_type,
        "limit_price": spec.limit_price if spec.limit_price is not None else math.nan,
        "order_id": None,
        "status": "",
        "filled": 0.0,
        "remaining": abs(spec.quantity),
        "avg_fill_price": math.nan,
        "commission": math.nan,
        "reason": "",
    }
    row.update(values)
    return row


# -- the three entry points the session offers ------------------------------------------------


def execute_plan(
    session: Session,
    plan: pd.DataFrame,
    *,
    dry_run: bool,
    allow_live: bool,
    wait: float,
    progress: Callable | None = None,
) -> pd.DataFrame:
    """Send a plan's ``planned`` rows once each; one result row per plan row (RESULT_COLUMNS)."""
    executor = Executor(session, allow_live=allow_live, progress=progress)
    rows: dict[str, dict] = {}
    for row in plan[plan["status"] != "planned"].itertuples(index=False):
        rows[row.order_ref] = {
            **spec_row(
                OrderSpec(row.symbol, 0.0, order_ref=row.order_ref, decision_id=row.decision_id)
            ),
            "action": row.action,
            "order_type": "",
            "status": row.status,
            "reason": row.reason,
        }
    specs = specs_from_plan(plan)
    counts = Counter(s.order_ref for s in specs)
    repeated = sorted(ref for ref, count in counts.items() if count > 1)
    if repeated:
        raise OrderRejected(
            "ORDER_REF",
            f"ORDER_REF: the plan has planned rows with the same order_ref ({', '.join(repeated)}), "
            "so they would be one order twice; nothing was sent. Give each decision its own "
            "decision_id (a concatenated plan repeats them).",
        )
    denial = session_gate(session, allow_live)
    at_broker = executor.broker_refs() if specs and not denial else {}
    sent_before = executor.already_sent([s.order_ref for s in specs], at_broker)
    to_send: list[tuple[OrderSpec, float]] = []
    for spec in specs:
        if denial:
            rows[spec.order_ref] = spec_row(spec, status="rejected", reason=denial)
            continue
        if spec.order_ref in sent_before:
            found = at_broker.get(spec.order_ref)
            rows[spec.order_ref] = spec_row(
                spec,
                status="duplicate",
                order_id=found.order.orderId if found is not None else None,
                reason=f"not sent again: {sent_before[spec.order_ref]}",
            )
            continue
        try:
            spec = validate_spec(spec, session.limits)
            contract = session.contract(spec.symbol)
            _, order_type, qty, prices = spec.legs()[0]
            state = session.what_if(
                contract, build_order(order_type, qty, prices, session.account, spec)
            )
        except OrderRejected as exc:
            rows[spec.order_ref] = spec_row(spec, status="rejected", reason=str(exc))
            continue
        if dry_run:
            rows[spec.order_ref] = spec_row(
                spec,
                status="dry_run",
                commission=frames.clean(state.commission),
                reason="not sent: dry run (execute(..., dry_run=False) sends it)",
            )
            continue
        to_send.append((spec, _position(plan, spec)))
    batch, elsewhere = executor.send(to_send) if to_send else ([], [])
    for spec in elsewhere:
        rows[spec.order_ref] = spec_row(
            spec, status="duplicate", reason=f"not sent: {ANOTHER_SESSION}"
        )
    if batch:
        executor.settle(batch, wait)
        for result in result_rows(batch, wait):
            rows[result["order_ref"]] = result
    ordered = [rows[ref] for ref in plan["order_ref"] if ref in rows]
    return pd.DataFrame(ordered, columns=RESULT_COLUMNS)


def _position(plan: pd.DataFrame, spec: OrderSpec) -> float:
    match = plan.loc[plan["order_ref"] == spec.order_ref, "position_before"]
    return float(match.iloc[0]) if len(match) else math.nan


def session_gate(session: Session, allow_live: bool) -> str:
    """The session-wide denial message, or "" (see ``gates.session_denial``)."""
    denial = session_denial(session.trading_context(allow_live), "order")
    return denial[1] if denial else ""


def place_spec(session: Session, spec: OrderSpec, *, allow_live: bool, wait: float) -> pd.DataFrame:
    """One manual order through the limits, idempotency, what-if, intent and transmission."""
    executor = Executor(session, allow_live=allow_live)
    refs = [ref for ref, *_ in spec.legs()]
    at_broker = executor.broker_refs()
    sent_before = executor.already_sent(refs, at_broker)
    if spec.order_ref in sent_before:
        log.warning("order %s not sent again: %s", spec.order_ref, sent_before[spec.order_ref])
        existing = [t for ref in refs if (t := at_broker.get(ref)) is not None]
        return frames.orders_frame(existing)
    contract = spec.contract or session.contract(spec.symbol)
    spec = replace(spec, contract=contract, symbol=contract.symbol)
    check = check_manual_order(session, spec, contract)
    if check["rule"]:
        raise OrderRejected(check["rule"], check["reason"])
    _, order_type, qty, prices = spec.legs()[0]
    session.what_if(contract, build_order(order_type, qty, prices, session.account, spec))
    position = session.positions()
    before = float(position.loc[position["symbol"] == contract.symbol, "quantity"].sum())
    sent_now, elsewhere = executor.send([(spec, before)])
    if elsewhere:
        log.warning("order %s not sent: %s", spec.order_ref, ANOTHER_SESSION)
        return frames.orders_frame([])
    [sent] = sent_now
    executor.settle([sent], wait)
    parent = sent.trades[0]
    errors = [entry.message for entry in parent.log if entry.errorCode]
    if parent.orderStatus.status in ("Cancelled", "Inactive", "ApiCancelled") and errors:
        raise OrderRejected(
            "BROKER", f"{contract.symbol} order {parent.order.orderId} was refused: {errors[-1]}"
        )
    return frames.orders_frame(sent.trades)


def check_manual_order(session: Session, spec: OrderSpec, contract) -> pd.Series:
    """``risk.check_orders`` for one manual order with this account's positions, NAV and the
    live quote: a row with ``notional``, ``pct_nav``, ``rule`` and ``reason`` ("" = passes)."""

    def price(value) -> float:
        return math.nan if value is None else float(value)

    order = {
        "symbol": contract.symbol,
        "quantity": spec.quantity,
        "limit_price": price(spec.limit_price),
        "stop_loss": price(spec.stop_loss),
        "take_profit": price(spec.take_profit),
    }
    return check_orders(
        pd.DataFrame([order]),
        session.positions(),
        session.account_summary(),
        session.limits,
        quotes=session.quote([contract]),
    ).iloc[0]


def reconcile_ledger(session: Session) -> pd.DataFrame:
    """Executions and order states from the broker into the ledger; adopt pending intents; book
    positions the ledger cannot explain as flagged opening lots at IBKR's average cost."""
    ledger = session.ledger
    executor = Executor(session, allow_live=False)
    at_broker = executor.broker_refs()
    executions = session.executions()
    added = ledger.record_fills(*ledger_fills(executions, "reconcile")) if len(executions) else 0
    trades = [t for t in at_broker.values() if t is not None]
    ledger.record_order_status(order_status_rows(trades))
    intents = ledger.intents()
    open_refs = intents.loc[intents["status"].isin(["pending", "transmitted"]), "order_ref"]
    adopted = [ref for ref in open_refs if ref in at_broker]
    ledger.mark_intent(
        adopted,
        "acknowledged",
        order_id=[
            t.order.orderId if (t := at_broker[ref]) is not None else None for ref in adopted
        ],
    )
    opening = _unexplained_positions(session, ledger)
    if len(opening):
        ledger.record_fills(opening)
    return pd.DataFrame(
        {
            "what": ["fills added", "intents adopted", "opening lots booked"],
            "count": [added, len(adopted), len(opening)],
        }
    )


def _unexplained_positions(session: Session, ledger) -> pd.DataFrame:
    """Flagged opening fills for the part of each broker position the ledger's fills miss."""
    broker = session.positions()
    broker = broker[broker["account"] == session.account]
    booked = ledger.positions()
    booked = booked[booked["account"] == session.account].set_index("symbol")["quantity"]
    gap = broker.assign(missing=broker["quantity"] - broker["symbol"].map(booked).fillna(0.0))
    gap = gap[gap["missing"].abs() > 1e-9]
    # before every fill the ledger has of the symbol: the position was there first
    fills = ledger.fills()
    first = pd.to_datetime(fills["time"], utc=True).groupby(fills["symbol"]).min()
    now = pd.Timestamp(session.ib.reqCurrentTime())
    first_fill = pd.to_datetime(
        pd.Series([first.get(symbol) for symbol in gap["symbol"]], index=gap.index, dtype=object),
        utc=True,
    )
    stamp = first_fill.where(first_fill < now, now) - pd.Timedelta(seconds=1)
    return pd.DataFrame(
        {
            "exec_id": [
                f"opening:{session.account}:{symbol}:{when:%Y%m%dT%H%M%S%f}"
                for symbol, when in zip(gap["symbol"], stamp, strict=True)
            ],
            "order_ref": "",
            "account": session.account,
            "symbol": gap["symbol"].to_numpy(),
            "con_id": gap["con_id"].to_numpy(),
            "quantity": gap["missing"].to_numpy(),
            "price": gap["average_cost"].to_numpy(),
            "currency": gap["currency"].to_numpy(),
            "time": stamp.to_numpy(),
            "source": OPENING,
            "flag": "opening lot at IBKR's average cost: the ledger's fills do not explain it",
        }
    )
