"""Margin for the paper account (US Reg T for securities, exchange margin for futures), as pure
functions on :class:`Holding` rows. Money in USD; quantities signed (+ long, - short).

* Stocks: InitMarginReq 50 % of long and of short value; MaintMarginReq 25 % long, 30 % short.
* Long options: paid in full, no loan value: requirement (initial and maintenance) = 100 % of
  the option's market value.
* Short options (CBOE rule 12.3, IBKR's house rule for naked options): per contract, the
  option's market value + max(P % x underlying value - out-of-the-money amount,
  10 % x underlying value (calls) or 10 % x strike value (puts)), values x multiplier; P = 20
  for stock options, 15 for options on a broad-based index (SPX).
* Futures (ES, NQ on CME): a fixed amount per contract, :data:`FUTURES_MARGIN`; their notional
  does not count as position value, only their variation since entry (``FuturesPNL``).
* FX (IDEALPRO ``CASH``): positions are cash balances in their currencies, counted in the
  cash converted to USD; IBKR's extra per-pair FX margin is not modelled.

EquityWithLoanValue = cash + long stock/option value - short stock/option value + futures
variation. An order is refused (201) when, filled at its estimated price, InitMarginReq after
would exceed EquityWithLoanValue after and be higher than before (reducing orders always pass).
Other working orders are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .records import MarginState

EPS = 1e-9

# USD per contract: (initial, maintenance). Maintenance as CME published it for outright
# E-mini positions in 2024 (ES 12,650, NQ 18,700); initial = 110 % of maintenance, CME's
# ratio for speculators. CME changes these with volatility: they are figures, not live data.
FUTURES_MARGIN: dict[str, tuple[float, float]] = {
    "ES": (13_915.0, 12_650.0),
    "NQ": (20_570.0, 18_700.0),
}
SHORT_OPTION_PCT = {False: 0.20, True: 0.15}  # of the underlying: stock, broad-based index
SHORT_OPTION_MIN_PCT = 0.10


class Holding(NamedTuple):
    """One position for margin. ``value`` is USD per unit of quantity at the mark (price x
    multiplier); ``cost`` (futures) USD per contract at entry, without commissions;
    ``underlying`` (options) the underlying's price; ``index`` True for an option on a
    broad-based index; ``root`` the future's symbol (ES, NQ)."""

    sec_type: str
    quantity: float
    value: float
    cost: float = 0.0
    underlying: float = 0.0
    strike: float = 0.0
    right: str = ""
    multiplier: float = 1.0
    index: bool = False
    root: str = ""


class Margin(NamedTuple):
    """Margin figures in USD: long value, short value (positive; stocks and options), initial
    and maintenance requirements, equity with loan value, futures variation since entry."""

    long_value: float
    short_value: float
    init: float
    maint: float
    equity: float
    futures_pnl: float = 0.0


def short_option_requirement(h: Holding) -> float:
    """USD requirement of one short option contract (CBOE rule, see the module docstring)."""
    u, k, m = h.underlying, h.strike, h.multiplier
    otm = max(k - u, 0.0) if h.right == "C" else max(u - k, 0.0)
    floor = SHORT_OPTION_MIN_PCT * (u if h.right == "C" else k) * m
    return h.value + max(SHORT_OPTION_PCT[h.index] * u * m - otm * m, floor)


def requirement(h: Holding) -> tuple[float, float]:
    """(initial, maintenance) USD requirement of one holding."""
    q = abs(h.quantity)
    if h.sec_type == "FUT":
        init, maint = FUTURES_MARGIN[h.root]
        return q * init, q * maint
    if h.sec_type == "OPT":
        each = h.value if h.quantity > 0 else short_option_requirement(h)
        return q * each, q * each
    if h.sec_type == "CASH":
        return 0.0, 0.0
    v = q * h.value
    return (0.5 * v, 0.25 * v) if h.quantity > 0 else (0.5 * v, 0.30 * v)


def margin(cash: float, holdings: Iterable[Holding]) -> Margin:
    """Figures for ``cash`` (USD, every currency converted) and ``holdings``."""
    long_v = short_v = init = maint = futures = 0.0
    for h in holdings:
        if h.sec_type == "CASH":
            continue
        if h.sec_type == "FUT":
            futures += h.quantity * (h.value - h.cost)
        else:
            v = h.quantity * h.value
            if v >= 0:
                long_v += v
            else:
                short_v -= v
        i, m = requirement(h)
        init += i
        maint += m
    return Margin(long_v, short_v, init, maint, cash + long_v - short_v + futures, futures)


def refusal(before: Margin, after: Margin) -> str:
    """TWS's refusal text when the order would break the initial margin, else ""."""
    if after.init > after.equity + EPS and after.init > before.init + EPS:
        return (
            "YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED POSITION YOUR EQUITY "
            f"WITH LOAN VALUE [{after.equity:.2f} USD] MUST EXCEED THE INITIAL MARGIN "
            f"[{after.init:.2f} USD]"
        )
    return ""


def what_if_state(before: Margin, after: Margin, fee: float) -> MarginState:
    """The what-if answer (TWS ``OrderState``) for an order moving ``before`` to ``after``."""

    def r(x: float) -> float:
        return round(x, 2)

    return MarginState(
        status="PreSubmitted",
        init_margin_before=r(before.init),
        maint_margin_before=r(before.maint),
        equity_with_loan_before=r(before.equity),
        init_margin_change=r(after.init - before.init),
        maint_margin_change=r(after.maint - before.maint),
        equity_with_loan_change=r(after.equity - before.equity),
        init_margin_after=r(after.init),
        maint_margin_after=r(after.maint),
        equity_with_loan_after=r(after.equity),
        commission=fee,
        min_commission=fee,
        max_commission=fee,
        warning_text=refusal(before, after),
    )
