"""IBKR's Fixed commission schedules, shared by the paper gateway and the user's estimates.

US stocks and ETFs: USD 0.005 per share, at least USD 1.00 per order, at most 1% of trade value
(the 1% cap wins over the minimum for tiny orders).
US equity and index options: USD 0.65 per contract for a premium of USD 0.10 or more, 0.50 from
0.05 to 0.10, 0.25 below 0.05; at least USD 1.00 per order.
FX on IDEALPRO: 0.20 basis points (0.002 %) of the trade value, at least USD 2.00 per order.
Exchange, regulatory and pass-through fees are not modelled. Quantities may be signed; the
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
    """Commission (USD, >= 0) of one IDEALPRO order of ``quantity`` units of a pair quoted in
    USD at ``price`` (trade value = quantity x price USD); vectorized."""
    value = np.abs(np.asarray(quantity, dtype=float) * np.asarray(price, dtype=float))
    fee = np.where(value > 0, np.round(np.maximum(FX_RATE * value, FX_MIN), 8), 0.0)
    return float(fee) if fee.ndim == 0 else fee


def commission(sec_type: str, quantity, price):
    """The Fixed-schedule commission of an order by security type (STK, OPT, CASH)."""
    schedule = {"STK": stock_commission, "OPT": option_commission, "CASH": fx_commission}
    if sec_type not in schedule:
        raise ValueError(f"no commission schedule for {sec_type!r}; known: STK, OPT, CASH")
    return schedule[sec_type](quantity, price)
