"""IBKR's Fixed commission schedules, shared by the paper gateway and the user's estimates.

US stocks and ETFs: USD 0.005 per share, at least USD 1.00 per order, at most 1% of trade value
(the 1% cap wins over the minimum for tiny orders).
US equity and index options: USD 0.65 per contract for a premium of USD 0.10 or more, 0.50 from
0.05 to 0.10, 0.25 below 0.05; at least USD 1.00 per order.
FX on IDEALPRO: 0.20 basis points (0.002 %) of the trade value in USD, at least USD 2.00 per
order.
US futures (CME E-mini ES and NQ): USD 0.85 per contract (Fixed, up to 1,000 contracts a month)
plus IBKR's published CME Globex exchange fee for E-mini equity futures, USD 1.38 per contract
(non-member), plus the NFA regulatory fee, USD 0.02 per contract: USD 2.25 per contract.
Other exchange, regulatory and pass-through fees (stocks, options) are not modelled. Quantities may be signed; the
commission is always >= 0 (USD).
"""

from __future__ import annotations

import numpy as np

COMMISSION_PER_SHARE = 0.005
COMMISSION_MIN = 1.00
COMMISSION_MAX_PCT = 0.01


def stock_commission(quantity, price):
    """Commission (USD, >= 0) of one order of ``quantity`` shares at ``price``; vectorized.

    Scalars give a float, arrays or Series an array. For partial fills apply this to the order's
    *cumulative* quantity and average price and charge the difference to each execution.
    """
    q = np.abs(np.asarray(quantity, dtype=float))
    p = np.abs(np.asarray(price, dtype=float))
    fee = np.minimum(
        np.maximum(COMMISSION_PER_SHARE * q, COMMISSION_MIN), COMMISSION_MAX_PCT * q * p
    )
    fee = np.where(q > 0, np.round(fee, 8), 0.0)
    return float(fee) if fee.ndim == 0 else fee


OPTION_MIN = 1.00
FX_RATE = 0.00002  # 0.20 basis points of trade value
FX_MIN = 2.00


def option_commission(contracts, premium):
    """Commission (USD, >= 0) of one order of ``contracts`` options at ``premium`` per share
    (not per contract); vectorized like :func:`stock_commission`."""
    q = np.abs(np.asarray(contracts, dtype=float))
    p = np.abs(np.asarray(premium, dtype=float))
    per_contract = np.where(p >= 0.10, 0.65, np.where(p >= 0.05, 0.50, 0.25))
    fee = np.where(q > 0, np.round(np.maximum(per_contract * q, OPTION_MIN), 8), 0.0)
    return float(fee) if fee.ndim == 0 else fee


def fx_commission(quantity, price):
    """Commission (USD, >= 0) of one IDEALPRO order whose trade value is ``quantity`` x
    ``price`` USD (a pair quoted in USD: units x rate; a USD-based pair such as USD.JPY: the
    USD units x 1.0); vectorized."""
    value = np.abs(np.asarray(quantity, dtype=float) * np.asarray(price, dtype=float))
    fee = np.where(value > 0, np.round(np.maximum(FX_RATE * value, FX_MIN), 8), 0.0)
    return float(fee) if fee.ndim == 0 else fee


FUTURES_PER_CONTRACT = 0.85
FUTURES_EXCHANGE_FEE = 1.38  # CME Globex, E-mini equity futures (ES, NQ), non-member
FUTURES_REGULATORY_FEE = 0.02  # NFA


def futures_commission(contracts, price=None):
    """Commission plus exchange and regulatory fees (USD, >= 0) of one order of ``contracts``
    E-mini equity futures: USD 2.25 a contract whatever the price; vectorized."""
    q = np.abs(np.asarray(contracts, dtype=float))
    per_contract = FUTURES_PER_CONTRACT + FUTURES_EXCHANGE_FEE + FUTURES_REGULATORY_FEE
    fee = np.round(per_contract * q, 8)
    return float(fee) if fee.ndim == 0 else fee


def commission(sec_type: str, quantity, price):
    """The Fixed-schedule commission of an order by security type (STK, OPT, CASH, FUT); for
    CASH ``quantity`` x ``price`` is the trade value in USD."""
    schedule = {
        "STK": stock_commission,
        "OPT": option_commission,
        "CASH": fx_commission,
        "FUT": futures_commission,
    }
    if sec_type not in schedule:
        raise ValueError(f"no commission schedule for {sec_type!r}; known: {', '.join(schedule)}")
    return schedule[sec_type](quantity, price)
