"""IBKR's Fixed schedules (stocks, options, FX), as the gateway charges them and the planner
estimates them."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibkr_nb.commissions import (
    commission,
    futures_commission,
    fx_commission,
    option_commission,
    stock_commission,
)


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


def test_option_schedule_figures():
    assert option_commission(1, 2.50) == 1.00  # 0.65, raised to the minimum
    assert option_commission(10, 2.50) == 6.50
    assert option_commission(10, 0.07) == 5.00  # 0.50 a contract from 0.05 to 0.10
    assert option_commission(10, 0.03) == 2.50  # 0.25 below 0.05
    assert option_commission(-4, 1.0) == option_commission(4, 1.0) == 2.60
    assert option_commission(0, 1.0) == 0.0


def test_fx_schedule_figures():
    assert fx_commission(20_000, 1.08) == 2.00  # 0.43 USD, raised to the minimum
    assert fx_commission(10_000_000, 1.10) == 220.00  # 0.2 bp of 11 million
    assert fx_commission(-1_000_000, 1.25) == fx_commission(1_000_000, 1.25)


def test_commission_by_security_type():
    assert commission("STK", 100, 50.0) == stock_commission(100, 50.0)
    assert commission("OPT", 10, 2.5) == 6.50
    assert commission("CASH", 20_000, 1.08) == 2.00
    assert commission("FUT", 2, 5800.0) == 4.50
    with pytest.raises(ValueError, match="no commission schedule for 'IND'"):
        commission("IND", 1, 5000.0)


def test_futures_schedule_figures():
    # 0.85 commission + 1.38 CME exchange fee + 0.02 NFA fee, per contract, any price
    assert futures_commission(1) == 2.25
    assert futures_commission(-3, 20_500.0) == 6.75
    assert futures_commission(0) == 0.0
    assert futures_commission(np.array([1, 10])).tolist() == [2.25, 22.5]


@given(q=st.integers(1, 10_000), p=st.floats(0.01, 500, allow_nan=False))
def test_option_commission_per_contract_bounds(q, p):
    c = option_commission(q, p)
    assert max(0.25 * q, 1.0) - 1e-9 <= c <= max(0.65 * q, 1.0) + 1e-9
