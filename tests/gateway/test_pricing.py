"""Black-Scholes, implied volatility, the seeded surface and carry: properties and known values."""

from __future__ import annotations

import math

from hypothesis import assume, given
from hypothesis import strategies as st

from ibkr_nb.gateway.pricing import (
    RATE,
    black_scholes,
    forward_price,
    implied_vol,
    vol_surface,
)

spots = st.floats(5.0, 6000.0)
moneyness = st.floats(0.6, 1.4)
years = st.floats(2.0 / 365.0, 2.0)
vols = st.floats(0.05, 1.5)
yields = st.floats(0.0, 0.04)


def test_a_textbook_value():
    """Hull's example 15.6: S=42, K=40, r=10 %, sigma=20 %, T=0.5 -> call 4.76, put 0.81."""
    call = black_scholes("C", 42.0, 40.0, 0.5, 0.2, rate=0.10)
    put = black_scholes("P", 42.0, 40.0, 0.5, 0.2, rate=0.10)
    assert round(call.price, 2) == 4.76
    assert round(put.price, 2) == 0.81
    assert 0 < call.delta < 1 and -1 < put.delta < 0


@given(spots, moneyness, years, vols, yields)
def test_put_call_parity(spot, m, t, vol, q):
    strike = spot * m
    call = black_scholes("C", spot, strike, t, vol, RATE, q)
    put = black_scholes("P", spot, strike, t, vol, RATE, q)
    parity = spot * math.exp(-q * t) - strike * math.exp(-RATE * t)
    assert math.isclose(call.price - put.price, parity, rel_tol=1e-9, abs_tol=1e-7 * spot)
    assert math.isclose(call.delta - put.delta, math.exp(-q * t), rel_tol=1e-9)
    assert math.isclose(call.gamma, put.gamma, rel_tol=1e-9)


@given(spots, moneyness, years, vols, yields)
def test_implied_vol_recovers_the_volatility(spot, m, t, vol, q):
    strike = spot * m
    price = black_scholes("C", spot, strike, t, vol, RATE, q).price
    vega = black_scholes("C", spot, strike, t, vol, RATE, q).vega
    assume(vega > 1e-4 * spot)  # deep in/out of the money the price says nothing about vol
    assert math.isclose(implied_vol("C", price, spot, strike, t, RATE, q), vol, abs_tol=1e-6)


def test_implied_vol_of_an_impossible_price_is_nan():
    assert math.isnan(implied_vol("C", 0.0, 100.0, 50.0, 0.5))  # below intrinsic value
    assert math.isnan(implied_vol("P", 500.0, 100.0, 100.0, 0.5))  # above the strike


@given(spots, moneyness, years, vols)
def test_greeks_are_finite_differences(spot, m, t, vol):
    strike = spot * m
    g = black_scholes("C", spot, strike, t, vol)
    h = spot * 1e-4
    up, down = (
        black_scholes("C", spot + h, strike, t, vol),
        black_scholes("C", spot - h, strike, t, vol),
    )
    assert math.isclose(g.delta, (up.price - down.price) / (2 * h), abs_tol=1e-4)
    bumped = black_scholes("C", spot, strike, t, vol + 0.01)
    assert math.isclose(g.vega, bumped.price - g.price, rel_tol=0.05, abs_tol=1e-3 * spot)
    later = black_scholes("C", spot, strike, t - 1 / 365, vol)
    assume(t > 3 / 365)
    assert math.isclose(g.theta, later.price - g.price, rel_tol=0.1, abs_tol=1e-3 * spot)


def test_surface_is_seeded_and_skewed():
    a, b = vol_surface(7, 416904, 0.15), vol_surface(7, 416904, 0.15)
    assert a == b and vol_surface(8, 416904, 0.15) != a
    forward = 5000.0
    assert a.vol(4500.0, forward, 0.25) > a.vol(5000.0, forward, 0.25)  # put skew
    assert all(a.vol(k, forward, t) >= 0.03 for k in (1000.0, 5000.0, 9000.0) for t in (0, 2))


@given(spots, years, yields)
def test_futures_carry(spot, t, q):
    f = forward_price(spot, t, RATE, q)
    assert math.isclose(f, spot * math.exp((RATE - q) * t))
    assert forward_price(spot, 0.0) == spot
