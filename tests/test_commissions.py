"""IBKR's Fixed schedule for US stocks, as the gateway charges it and the planner estimates it."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ibkr_nb.commissions import stock_commission


def test_fixed_schedule_figures():
    assert stock_commission(100, 50.0) == 1.00  # minimum
    assert stock_commission(1000, 50.0) == 5.00  # per share
    assert stock_commission(300, 120.0) == 1.50
    assert stock_commission(1, 10.0) == 0.10  # 1% of trade value caps the minimum
    assert stock_commission(10_000, 0.25) == 25.00  # 1% cap beats 0.005/share (50)
    assert stock_commission(-200, 10.0) == stock_commission(200, 10.0)
    assert stock_commission(0, 10.0) == 0.0


def test_vectorized_equals_scalar():
    q = np.array([100, 1000, 300, 1, 10_000, -200, 0])
    p = np.array([50.0, 50.0, 120.0, 10.0, 0.25, 10.0, 10.0])
    expected = [stock_commission(a, b) for a, b in zip(q, p, strict=True)]
    assert stock_commission(q, p).tolist() == expected


@given(q=st.integers(1, 1_000_000), p=st.floats(0.01, 5_000, allow_nan=False))
def test_commission_bounds(q, p):
    c = stock_commission(q, p)
    assert c <= 0.01 * q * p + 1e-6
    assert c >= min(1.0, 0.01 * q * p) - 1e-6
