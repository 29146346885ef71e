"""Derivative pricing for the paper gateway: Black-Scholes, a seeded volatility surface, carry.

Conventions: ``years`` is calendar time to expiry (days / 365); rates and yields are
continuously compounded per year; volatilities are annual fractions (0.2 = 20 %). Greeks are
TWS's: ``delta`` and ``gamma`` per 1.0 of the underlying, ``vega`` per 1 volatility point
(0.01), ``theta`` per calendar day. ``pv_dividend`` is the present value of the dividends the
yield pays until expiry, per unit of the underlying.

* Options: European Black-Scholes-Merton with the underlying's dividend yield.
* Volatility surface: ``base * level * (1 + skew * m + smile * m**2) * (1 + term * (T - 0.25))``
  with ``m = ln(K / F)``, the level, skew, smile and term slope drawn once per
  (seed, underlying), so a seed fixes every option price.
* Futures: ``F = S * exp((r - q) * T)`` (cost of carry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RATE = 0.045  # the simulated risk-free rate, continuously compounded
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_MIN_YEARS = 1.0 / (365.0 * 24.0)  # one hour: an expiring option keeps a time value


@dataclass(frozen=True, slots=True)
class Greeks:
    """An option's model value and sensitivities (see the module docstring for units)."""

    price: float
    delta: float
    gamma: float
    vega: float
    theta: float
    pv_dividend: float


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / _SQRT_2PI


def black_scholes(
    right: str, spot: float, strike: float, years: float, vol: float,
    rate: float = RATE, dividend_yield: float = 0.0,
) -> Greeks:  # fmt: skip
    """European option value and greeks; ``right`` is "C" or "P"."""
    t = max(years, _MIN_YEARS)
    v = max(vol, 1e-6)
    sq = v * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate - dividend_yield + 0.5 * v * v) * t) / sq
    d2 = d1 - sq
    disc_q = math.exp(-dividend_yield * t)
    disc_r = math.exp(-rate * t)
    gamma = disc_q * _pdf(d1) / (spot * sq)
    vega = spot * disc_q * _pdf(d1) * math.sqrt(t) / 100.0
    decay = -spot * disc_q * _pdf(d1) * v / (2.0 * math.sqrt(t))
    if right == "C":
        price = spot * disc_q * _cdf(d1) - strike * disc_r * _cdf(d2)
        delta = disc_q * _cdf(d1)
        theta = (
            decay - rate * strike * disc_r * _cdf(d2) + dividend_yield * spot * disc_q * _cdf(d1)
        )
    else:
        price = strike * disc_r * _cdf(-d2) - spot * disc_q * _cdf(-d1)
        delta = -disc_q * _cdf(-d1)
        theta = (
            decay + rate * strike * disc_r * _cdf(-d2) - dividend_yield * spot * disc_q * _cdf(-d1)
        )
    return Greeks(max(price, 0.0), delta, gamma, vega, theta / 365.0, spot * (1.0 - disc_q))


def implied_vol(
    right: str, price: float, spot: float, strike: float, years: float,
    rate: float = RATE, dividend_yield: float = 0.0,
) -> float:  # fmt: skip
    """The volatility at which Black-Scholes gives ``price`` (bisection), or NaN when the price
    is outside the no-arbitrage bounds."""
    lo, hi = 1e-4, 5.0
    if not (
        black_scholes(right, spot, strike, years, lo, rate, dividend_yield).price
        <= price
        <= black_scholes(right, spot, strike, years, hi, rate, dividend_yield).price
    ):
        return math.nan
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if black_scholes(right, spot, strike, years, mid, rate, dividend_yield).price < price:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True, slots=True)
class VolSurface:
    """A seeded smile: level, skew, smile curvature and term slope around ``base``."""

    base: float
    level: float
    skew: float
    smile: float
    term: float

    def vol(self, strike: float, forward: float, years: float) -> float:
        m = math.log(strike / forward)
        shape = 1.0 + self.skew * m + self.smile * m * m
        term = 1.0 + self.term * (max(years, 0.0) - 0.25)
        return max(0.03, self.base * self.level * shape * term)


def vol_surface(seed: int, con_id: int, base_vol: float) -> VolSurface:
    """The surface of the underlying ``con_id`` under ``seed`` (drawn once, deterministic)."""
    g = np.random.default_rng([seed & (2**64 - 1), con_id, 0x5EED])
    return VolSurface(
        base=base_vol,
        level=float(g.uniform(0.9, 1.1)),
        skew=float(g.uniform(-1.2, -0.4)),
        smile=float(g.uniform(0.5, 2.0)),
        term=float(g.uniform(-0.15, 0.05)),
    )


def forward_price(
    spot: float, years: float, rate: float = RATE, dividend_yield: float = 0.0
) -> float:
    """Cost-of-carry forward (and futures) price of ``spot``."""
    return spot * math.exp((rate - dividend_yield) * max(years, 0.0))
