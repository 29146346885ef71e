"""The planner's base position size, shared by the risk planner and the decision evaluation."""

from __future__ import annotations

import numpy as np


def base_quantity(price, confidence, max_position_size=10_000.0):
    """Shares to trade before any risk cap: ``max(1, floor(max_position_size / price *
    confidence / 100))``; vectorized.

    ``price`` in USD per share (> 0), ``confidence`` in 0-100, ``max_position_size`` in USD.
    The result is unsigned (the caller applies the side). Where a price or confidence is not
    usable (NaN, inf, price <= 0, confidence outside 0-100) or the size is not finite, the
    result is 0, so the caller can reject that row. Scalars give an int, arrays an int64 array.
    """
    p = np.asarray(price, dtype=float)
    c = np.asarray(confidence, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        raw = np.floor(max_position_size / p * c / 100)
    usable = np.isfinite(p) & (p > 0) & np.isfinite(c) & (c >= 0) & (c <= 100) & np.isfinite(raw)
    usable &= raw < 2.0**62  # an absurd size (a price near zero) would overflow int64
    out = np.where(usable, np.maximum(1.0, np.where(usable, raw, 0.0)), 0.0).astype(np.int64)
    return int(out) if out.ndim == 0 else out
