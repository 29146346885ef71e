"""IB algo orders in the paper account: when and at what price Adaptive, Twap, Vwap and
ArrivalPx orders fill. :data:`.validation.ALGOS` checks the strategy and its parameters; this
module plans each order's child fills; the broker books them like any fill (commissions,
positions, execDetails, orderStatus with filled / remaining).

* **Adaptive** fills at once, as its base order type (MKT, or LMT within its limit), at most
  the displayed size a step, at a price between the bid and the ask set by
  ``adaptivePriority``: Urgent gives up 10 % of the spread less than crossing it, Normal
  trades at the midpoint, Patient 75 % of the spread toward the near side. Prices are on a
  half-tick grid, rounded against the trader.
* **Twap, Vwap, ArrivalPx** fill in children spread over a window: ``startTime`` to
  ``endTime`` (TWS forms ``HH:MM:SS [zone]`` for today or ``YYYYMMDD HH:MM:SS [zone]``; zone
  default US/Eastern), by default from the order's arrival to the session's close. The window
  is cut into ``N`` slices (10; ArrivalPx by ``riskAversion``: Get Done 2, Aggressive 4,
  Neutral 6, Passive 10; never more than the order's units nor one a second); slice ``k``
  runs at the start of its interval, ``start + k * (end - start) / N``: the first child goes
  at arrival, the last before the end (ahead of a DAY order's expiry at the close).

  - Twap: equal children, priced by ``strategyType``: Marketable crosses the spread,
    Matching Midpoint at the mid, Matching Same Side at the near side, Matching Last at the
    last trade.
  - Vwap: children in proportion to the market's volume in each slice's interval (its
    U-shaped intraday profile), priced at the last trade.
  - ArrivalPx: equal children crossing the spread.

  ``maxPctVol`` (Vwap, ArrivalPx) caps a child at that fraction of its slice's volume; no
  child takes more than the displayed size on its side, nor (LMT) trades through the limit.
  What a slice cannot fill moves to the next. When the last slice has run with quantity left,
  the rest is cancelled (fills kept; ``Cancelled`` with the reason) unless
  ``allowPastEndTime=1`` (ArrivalPx: or ``forceCompletion=1``): then one more slice a step.

Time: with a running clock a slice runs once the clock reaches its time. With a frozen clock
each step (``Broker.process`` call) runs the next slice at its own simulated time, as streams
tick on simulated time while orders see the frozen clock: the same seed, clock and requests
give the same fills on every run. Executions carry the slice's time. A plan lives in memory:
after a restart from the state file, what remains is planned again over the rest of the window.
"""

from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from .market import ET, Market, Quote, instrument, next_session_close
from .records import OrderTicket
from .replies import parse_end_datetime
from .validation import reject

PACED = ("Twap", "Vwap", "ArrivalPx")
SLICES = 10
_ARRIVAL_SLICES = {"Get Done": 2, "Aggressive": 4, "Neutral": 6, "Passive": 10}
_ADAPTIVE_GIVE = {"Urgent": 0.1, "Normal": 0.5, "Patient": 0.75}  # of the spread, off the far side
_TIME_ONLY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s+(\S+))?$")


@dataclass(frozen=True)
class Child:
    """One child fill: ``quantity`` (> 0) at ``price`` at ``when`` (UTC); ``liquidity`` is
    TWS's lastLiquidity (1 added, 2 removed)."""

    when: datetime
    quantity: float
    price: float
    liquidity: int


@dataclass(frozen=True)
class AlgoStep:
    """What an algo order does at one step: its child fills, and ``cancel`` (the reason) when
    its window is over with quantity left."""

    fills: tuple[Child, ...] = ()
    cancel: str = ""


def params(ticket: OrderTicket) -> dict[str, str]:
    """The order's algo parameters, tag -> value."""
    return {p.get("tag", ""): str(p.get("value", "")) for p in ticket.raw.get("algoParams") or []}


def strategy(ticket: OrderTicket) -> str:
    """The algo this module executes ("" for any other order: its base type applies)."""
    name = ticket.raw.get("algoStrategy") or ""
    if ticket.order_type in ("MKT", "LMT") and (name in PACED or name == "Adaptive"):
        return name
    return ""


def parse_algo_time(text: str, now: datetime) -> datetime | None:
    """An algo's startTime / endTime in UTC (None when empty). Raises ValueError naming it."""
    text = text.strip()
    if not text:
        return None
    m = _TIME_ONLY.match(text)
    if m is None:
        return parse_end_datetime(text, now)
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    try:
        zone = ZoneInfo(m.group(4)) if m.group(4) else ET
    except (ValueError, LookupError, OSError):
        raise ValueError(f"unknown time zone {m.group(4)!r} in {text!r}") from None
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{text!r} is not a time of day")
    day = now.astimezone(zone)
    return day.replace(hour=hour, minute=minute, second=second, microsecond=0).astimezone(UTC)


def check_algo(ticket: OrderTicket, now: datetime) -> None:
    """A paced algo's startTime / endTime must be times, the end after the start (201)."""
    if strategy(ticket) not in PACED:
        return
    tags = params(ticket)
    try:
        start = parse_algo_time(tags.get("startTime", ""), now)
        end = parse_algo_time(tags.get("endTime", ""), now)
    except ValueError as exc:
        raise reject(ticket, f"{strategy(ticket)} time: {exc}") from None
    if start is not None and end is not None and end <= start:
        raise reject(
            ticket,
            f"{strategy(ticket)} endTime {tags['endTime']!r} is not after its startTime "
            f"{tags['startTime']!r}",
        )


@dataclass
class _Plan:
    signature: tuple
    start_ts: float
    step: float  # seconds per slice
    targets: list[float]  # quantity due by the end of each slice (cumulative, this plan)
    base: float  # filled before this plan
    done: int = 0  # slices run


class AlgoDesk:
    """Plans and steps the algo orders of one broker (see the module docstring)."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self._plans: dict[int, _Plan] = {}

    def step(self, order, ticket: OrderTicket, now_ts: float, fixed: bool) -> AlgoStep:
        """The fills ``ticket`` (an order :func:`strategy` names) makes now. ``order`` is the
        broker's record of it: its plan is kept while that record lives."""
        if strategy(ticket) == "Adaptive":
            child = self._adaptive(ticket, now_ts)
            return AlgoStep((child,) if child else ())
        plan = self._plan(order, ticket, now_ts)
        tags = params(ticket)
        past_end = tags.get("allowPastEndTime") == "1" or tags.get("forceCompletion") == "1"
        n = len(plan.targets)
        due = _due_slices(plan, n, past_end, now_ts, fixed)
        children = []
        filled = ticket.filled
        for k in due:
            want = ticket.total_quantity - filled
            if k < n:
                want = min(want, plan.base + plan.targets[k] - filled)
            child = self._child(ticket, plan, k, want)
            if child is not None:
                children.append(child)
                filled += child.quantity
            if filled >= ticket.total_quantity:
                break
        if due:
            plan.done = k + 1
        left = ticket.total_quantity - filled
        cancel = ""
        if plan.done >= n and left > 0 and not past_end:
            end = datetime.fromtimestamp(plan.start_ts + n * plan.step, ET)
            cancel = (
                f"{strategy(ticket)} window ended at {end:%H:%M:%S} with {left:g} of "
                f"{ticket.total_quantity:g} unfilled (allowPastEndTime=0)"
            )
        return AlgoStep(tuple(children), cancel)

    # ---- planning ------------------------------------------------------------------------

    def _plan(self, order, ticket: OrderTicket, now_ts: float) -> _Plan:
        signature = (ticket.total_quantity, ticket.order_type, ticket.lmt_price, str(ticket.raw))
        plan = self._plans.get(id(order))
        if plan is not None and plan.signature == signature:
            return plan
        now = datetime.fromtimestamp(now_ts, UTC)
        tags = params(ticket)
        start = max(parse_algo_time(tags.get("startTime", ""), now) or now, now)
        end = parse_algo_time(tags.get("endTime", ""), now) or next_session_close(start)
        remaining = ticket.total_quantity - ticket.filled
        n = SLICES
        if strategy(ticket) == "ArrivalPx":
            n = _ARRIVAL_SLICES.get(tags.get("riskAversion", ""), SLICES)
        span = max((end - start).total_seconds(), 0.0)
        n = max(1, min(n, int(remaining), int(span)))  # at most a child a second
        step = max(span / n, 1.0)
        weights = [1.0] * n
        if strategy(ticket) == "Vwap":
            weights = [max(v, 1) for v in self._slice_volumes(ticket, start.timestamp(), step, n)]
        total = sum(weights)
        targets, cum = [], 0.0
        for w in weights:
            cum += w
            targets.append(math.floor(remaining * cum / total))
        targets[-1] = remaining
        plan = _Plan(signature, start.timestamp(), step, targets, ticket.filled)
        if id(order) not in self._plans:
            weakref.finalize(order, self._plans.pop, id(order), None)
        self._plans[id(order)] = plan
        return plan

    def _slice_volumes(self, ticket: OrderTicket, start_ts: float, step: float, n: int):
        """Shares the market trades in each slice (0 across a session boundary)."""
        cum = [self._quote(ticket, start_ts + k * step).volume for k in range(n + 1)]
        return [max(b - a, 0) for a, b in zip(cum, cum[1:], strict=False)]

    # ---- pricing -------------------------------------------------------------------------

    def _quote(self, ticket: OrderTicket, ts: float) -> Quote:
        return self.market.quote_at(ticket.symbol, datetime.fromtimestamp(ts, UTC))

    def _child(self, ticket: OrderTicket, plan: _Plan, k: int, want: float) -> Child | None:
        """The child of slice ``k`` for up to ``want`` units, or None when none can fill."""
        if want <= 0:
            return None
        ts = plan.start_ts + k * plan.step
        q = self._quote(ticket, ts)
        buy = ticket.action == "BUY"
        name = strategy(ticket)
        kind = params(ticket).get("strategyType", "Marketable") if name == "Twap" else ""
        if name == "Vwap" or kind == "Matching Last":
            price, liquidity = q.last, 2
        elif kind == "Matching Midpoint":
            price, liquidity = (q.bid + q.ask) / 2.0, 1
        elif kind == "Matching Same Side":
            price, liquidity = (q.bid if buy else q.ask), 1
        else:  # Marketable Twap, ArrivalPx
            price, liquidity = (q.ask if buy else q.bid), 2
        if not _within_limit(ticket, price):
            return None
        quantity = min(want, float(q.ask_size if buy else q.bid_size))
        pct = params(ticket).get("maxPctVol")
        if pct and name != "Twap":
            volume = self._slice_volumes(ticket, ts, plan.step, 1)[0]
            quantity = min(quantity, math.floor(float(pct) * volume))
        if quantity <= 0:
            return None
        return Child(datetime.fromtimestamp(ts, UTC), quantity, round(price, 10), liquidity)

    def _adaptive(self, ticket: OrderTicket, now_ts: float) -> Child | None:
        q = self._quote(ticket, now_ts)
        buy = ticket.action == "BUY"
        half = instrument(ticket.symbol).min_tick / 2.0
        give = _ADAPTIVE_GIVE.get(params(ticket).get("adaptivePriority", ""), 0.5)
        improvement = math.floor((q.ask - q.bid) * give / half + 1e-9) * half
        price = round(q.ask - improvement if buy else q.bid + improvement, 10)
        if not _within_limit(ticket, price):
            return None
        quantity = min(
            ticket.total_quantity - ticket.filled, float(q.ask_size if buy else q.bid_size)
        )
        liquidity = 2 if improvement == 0 else 1
        return Child(datetime.fromtimestamp(now_ts, UTC), quantity, price, liquidity)


def _due_slices(plan: _Plan, n: int, past_end: bool, now_ts: float, fixed: bool) -> list[int]:
    """The slices to run now: the next one (frozen clock), or every one whose time has come
    (running clock); past the last only with ``past_end``."""
    k = plan.done
    if fixed:
        return [k] if k < n or past_end else []
    due = []
    while (k < n or past_end) and plan.start_ts + k * plan.step <= now_ts:
        due.append(k)
        k += 1
    return due


def _within_limit(ticket: OrderTicket, price: float) -> bool:
    if ticket.order_type != "LMT":
        return True
    if ticket.action == "BUY":
        return price <= ticket.lmt_price + 1e-9
    return price >= ticket.lmt_price - 1e-9
