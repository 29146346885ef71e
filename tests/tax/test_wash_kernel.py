"""The compiled wash-sale sweep (`ibkr_nb.tax.wash_kernel`) and the lockstep numpy sweep (for
short histories, and where numba is not installed) give the same frames to the last bit; the
lockstep one is checked against a plain reference in test_wash_sweep.py."""

import sys
from unittest.mock import patch

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ibkr_nb.tax.lots import match_lots
from ibkr_nb.tax.wash import COMPILED_FROM, _Sweep


def assert_fallback_matches(trades: pd.DataFrame, method: str = "fifo") -> None:
    with patch("ibkr_nb.tax.wash.COMPILED_FROM", 0):  # however short the history
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


def test_compiled_sweep_runs_for_a_long_symbol_and_once_loaded():
    calls = []
    lockstep = _Sweep.run_lockstep

    def counted(self):
        calls.append(len(self.lot))
        lockstep(self)

    short = history(np.random.default_rng(3), 60, 90)
    long = history(np.random.default_rng(3), COMPILED_FROM * 12, 900)  # ~600 sales a symbol
    with patch.dict(sys.modules), patch.object(_Sweep, "run_lockstep", counted):
        sys.modules.pop("ibkr_nb.tax.wash_kernel", None)  # numba not loaded yet
        match_lots(short)
        assert len(calls) == 1
        match_lots(long)
        match_lots(short)  # now loaded: compiled
        assert len(calls) == 1


def test_fallback_sweep_equals_compiled_on_a_long_history():
    trades = history(np.random.default_rng(11), 2000, 900)
    assert (match_lots(trades).realized["adjustment_code"] == "W").sum() > 100
    assert_fallback_matches(trades)
