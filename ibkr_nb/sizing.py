"""The planner's base position size, shared by risk (planning) and evaluation (back-testing)."""

from __future__ import annotations

import numpy as np


def base_quantity(price, confidence, max_position_size: float):
    """Shares to buy or short before limits: ``floor(max_position_size / price x confidence/100)``,
    at least 1 (vectorized). ``price`` > 0 in account currency, ``confidence`` 0-100.
    NaN or non-positive prices give 0.
    """
    price = np.asarray(price, dtype=float)
    confidence = np.asarray(confidence, dtype=float)
    with np.errstate(all="ignore"):
        raw = np.floor(max_position_size / price * confidence / 100.0)
    ok = np.isfinite(raw) & (price > 0)
    return np.where(ok, np.maximum(raw, 1.0), 0.0)
