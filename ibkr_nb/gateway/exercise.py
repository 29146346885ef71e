"""Option exercise, lapse and expiry, as the trades they book (pure functions, no account).

* Exercise (``exerciseOptions`` action 1) of ``n`` long contracts: the option leaves the account
  at price 0 and the underlying stock is booked at the strike, ``n`` x multiplier shares bought
  (call) or sold (put). Options on an index (SPX) settle in cash: the option leaves at its
  intrinsic value (underlying - strike for a call, strike - underlying for a put), which the
  account receives x multiplier. No commission on either leg (IBKR charges none for exercise).
  The executions show the strike and 0, as TWS reports them; the account books the option's
  premium into the stock instead (:func:`booked_prices`), so the option realizes nothing.
* Lapse (action 2): the option leaves at price 0.
* Out of the money (intrinsic value below USD 0.01, the OCC's exercise-by-exception threshold)
  an option is exercised only with ``override`` 1; in the money it lapses only with
  ``override`` 1. SPX options are European: exercised only at expiry.
* Expiry: once the clock passes 16:00 New York time on the expiry date, options in the money
  by USD 0.01 or more are exercised and the others lapse, at the underlying's price at that
  moment; futures (ES, NQ) settle in cash at the index's price then.
"""

from __future__ import annotations

from datetime import datetime, time
from functools import lru_cache

from .instruments import LISTED, Instrument
from .market import ET

EXERCISE, LAPSE = 1, 2
EXERCISE_THRESHOLD = 0.01  # USD of intrinsic value per share: OCC exercise by exception
EUROPEAN = frozenset({"SPX"})
EXPIRY_TIME = time(16, 0)


@lru_cache(maxsize=1024)
def expiry_timestamp(expiry: str) -> float:
    """POSIX seconds of 16:00 New York time on ``expiry`` (YYYYMMDD)."""
    day = datetime.strptime(expiry, "%Y%m%d").date()
    return datetime.combine(day, EXPIRY_TIME, ET).timestamp()


def intrinsic(option: Instrument, underlying: float) -> float:
    """Intrinsic value per share of ``option`` with its underlying at ``underlying``."""
    if option.right == "C":
        return max(underlying - option.strike, 0.0)
    return max(option.strike - underlying, 0.0)


def in_the_money(option: Instrument, underlying: float) -> bool:
    return intrinsic(option, underlying) >= EXERCISE_THRESHOLD - 1e-9


def exercise_trades(
    option: Instrument, contracts: float, underlying: float
) -> list[tuple[Instrument, float, float]]:
    """(instrument, signed quantity, price) of exercising ``contracts`` (> 0) long options."""
    under = LISTED[option.underlying]
    if under.sec_type == "IND":
        return [(option, -contracts, round(intrinsic(option, underlying), 2))]
    shares = contracts * option.multiplier
    return [(option, -contracts, 0.0), (under, shares if option.right == "C" else -shares, option.strike)]  # fmt: skip


def expiry_trades(
    inst: Instrument, quantity: float, underlying: float
) -> list[tuple[Instrument, float, float]]:
    """What expiry books for a held position of ``quantity`` (signed) in ``inst``: futures
    close at the underlying's price; long options in the money are exercised, short ones in
    the money assigned (the mirror trades), the others lapse at price 0."""
    if inst.sec_type == "FUT":
        return [(inst, -quantity, round(underlying / inst.min_tick) * inst.min_tick)]
    if not in_the_money(inst, underlying):
        return [(inst, -quantity, 0.0)]
    if quantity > 0:
        return exercise_trades(inst, quantity, underlying)
    return [(i, -q, p) for i, q, p in exercise_trades(inst, -quantity, underlying)]


def booked_prices(trades: list[tuple[Instrument, float, float]], avg_cost: float) -> list[float]:
    """The prices at which the account books exercise or assignment ``trades`` of an option
    held at ``avg_cost`` (per contract, commissions included): the option leaves at its average
    cost, realizing nothing, and its premium moves into the stock -- added to the strike for a
    call, taken off for a put, long or short (IRS Pub. 550; IBKR's cost basis). Lapses,
    cash settlements and futures book at their execution prices."""
    if len(trades) != 2:
        return [price for _, _, price in trades]
    (option, _, _), (_, _, strike) = trades
    premium = avg_cost / option.multiplier
    return [premium, strike + premium if option.right == "C" else strike - premium]


def exercise_refusal(
    option: Instrument, action: int, contracts: float, held: float, underlying: float,
    override: bool, today: str,
) -> str:  # fmt: skip
    """Why an ``exerciseOptions`` request cannot be carried out, "" when it can.
    ``held`` is the signed position; ``today`` YYYYMMDD in New York."""
    name = option.symbol
    if option.sec_type != "OPT":
        return f"{name} is not an option; only options can be exercised or lapsed"
    if action not in (EXERCISE, LAPSE):
        return f"exerciseAction {action} is not 1 (exercise) or 2 (lapse)"
    if contracts <= 0 or contracts != int(contracts):
        return f"exerciseQuantity must be a positive whole number of contracts, got {contracts:g}"
    if held < contracts:
        return (
            f"the account holds {held:g} long {name} contract(s), fewer than the {contracts:g} "
            "to exercise or lapse; only long options can be"
        )
    if today > option.expiry:
        return f"{name} expired on {option.expiry}"
    itm = in_the_money(option, underlying)
    if action == EXERCISE:
        if option.underlying in EUROPEAN and today != option.expiry:
            return f"{name} is European-style: it can only be exercised on {option.expiry}"
        if not itm and not override:
            return (
                f"{name} is out of the money (underlying {underlying:.2f}, strike "
                f"{option.strike:g}); send override=1 to exercise it anyway"
            )
    else:
        if today != option.expiry:
            return f"{name} can only lapse on its last trading day, {option.expiry}"
        if itm and not override:
            return (
                f"{name} is in the money (underlying {underlying:.2f}, strike "
                f"{option.strike:g}); send override=1 to let it lapse anyway"
            )
    return ""
