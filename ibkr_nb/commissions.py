"""IBKR's Fixed commission schedule, shared by the paper gateway and the user's estimates.

US stocks and ETFs: USD 0.005 per share, at least USD 1.00 per order, at most 1% of trade value
(the 1% cap wins over the minimum for tiny orders). Exchange, regulatory and pass-through fees are
not modelled. Quantities may be signed; the commission is always >= 0 (USD).
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
