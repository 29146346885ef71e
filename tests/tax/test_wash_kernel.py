"""The compiled wash-sale sweep (`ibkr_nb.tax.wash_kernel`) and the lockstep numpy sweep it
falls back to where numba is not installed give the same frames to the last bit (each is
checked against a plain reference in test_wash_sweep.py; this holds the fallback to it)."""

import sys
from unittest.mock import patch

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ibkr_nb.tax.lots import match_lots


def assert_fallback_matches(trades: pd.DataFrame, method: str = "fifo") -> None:
    got = match_lots(trades, method=method)
    with patch.dict(sys.modules, {"ibkr_nb.tax.wash_kernel": None}):  # import fails
        want = match_lots(trades, method=method)
    pd.testing.assert_frame_equal(got.realized, want.realized, check_exact=True)
    pd.testing.assert_frame_equal(got.open_lots, want.open_lots, check_exact=True)


def history(rng: np.random.Generator, n: int, days: int) -> pd.DataFrame:
    """Random fills in three symbols and two accounts: shorts, flips, chains of wash sales."""
    return pd.DataFrame(
        {
            "trade_id": [f"T{i}" for i in range(n)],
            "account": rng.choice(["U1", "U2"], n),
            "symbol": rng.choice(["A", "B", "C"], n),
            "quantity": rng.integers(-30, 31, n) / 2 + 0.25,
            "price": rng.integers(500, 1500, n) / 100,
            "commission": 0.35,
            "datetime": pd.Timestamp("2023-11-01 10:00", tz="America/New_York")
            + pd.to_timedelta(np.sort(rng.integers(0, days, n)), unit="D")
            + pd.to_timedelta(np.arange(n), unit="s"),
        }
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 80),
    st.integers(1, 200),
    st.sampled_from(["fifo", "lifo", "highest_cost", "average"]),
)
def test_fallback_sweep_equals_compiled(seed, n, days, method):
    assert_fallback_matches(history(np.random.default_rng(seed), n, days), method)


def test_fallback_sweep_equals_compiled_on_a_long_history():
    trades = history(np.random.default_rng(11), 2000, 900)
    assert (match_lots(trades).realized["adjustment_code"] == "W").sum() > 100
    assert_fallback_matches(trades)
