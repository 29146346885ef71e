"""The paper account's records, events and errors: plain data shared by every broker module.

Field names follow ib_async's objects in snake_case; money in USD; quantities signed where said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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


class StateWriteError(OrderRejected):
    """The state file could not be written: the change was rolled back and the request fails
    (sent as error 201 for an order)."""

    def __init__(self, path: object, exc: OSError, order_id: int = -1) -> None:
        super().__init__(
            201,
            f"Order rejected - reason:the paper gateway could not save its state file {path} "
            f"({exc.strerror or exc}); nothing was booked. Free disk space or fix the "
            "file's permissions, then send the order again.",
            order_id=order_id,
        )
