"""US Reg T margin (no house add-ons) for the paper account, as pure functions.

``L`` = market value of long positions, ``S`` = absolute market value of short positions, at
the last price. InitMarginReq = 50% L + 50% S; MaintMarginReq = 25% L + 30% S;
EquityWithLoanValue = cash + L - S. An order is refused (201) when, filled at its estimated
price, InitMarginReq after would exceed EquityWithLoanValue after and be higher than before
(reducing orders always pass). Other working orders are not counted.
"""

from __future__ import annotations

from typing import NamedTuple

from .records import MarginState

EPS = 1e-9


class Margin(NamedTuple):
    """Margin figures in USD: long value, short value (positive), initial and maintenance
    requirements, equity with loan value."""

    long_value: float
    short_value: float
    init: float
    maint: float
    equity: float


def margin(cash: float, quantities: dict[int, float], marks: dict[int, float]) -> Margin:
    """Reg T figures for signed ``quantities`` by conId valued at ``marks`` (USD per share)."""
    long_v = short_v = 0.0
    for con_id, q in quantities.items():
        v = q * marks[con_id]
        if v >= 0:
            long_v += v
        else:
            short_v -= v
    init = 0.5 * long_v + 0.5 * short_v
    maint = 0.25 * long_v + 0.30 * short_v
    return Margin(long_v, short_v, init, maint, cash + long_v - short_v)


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
