"""Benchmark: evaluating 100,000 decisions against 10 years of daily bars for 500 symbols.

Target: `evaluate` (forward returns at 1, 5 and 20 sessions, hit rate, deciles, calibration,
Brier score, simulated P&L) <= 2 s. Prints the wall time of `forward_returns` and of the whole
`evaluate` (best of --repeat runs), then the ratio against a plain per-row Python reference
(bisect over session close times, a dict of closes, the shared scalar sizing and commission
functions) measured in the same run on --reference-decisions decisions and extrapolated to all
of them; the reference's rows are checked to agree with `forward_returns` and `simulated_pnl`.
Run: .venv/bin/python benchmarks/bench_evaluation.py [--decisions N] [--symbols N] [--years N]
"""

from __future__ import annotations

import argparse
import math
import time
from bisect import bisect_left
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ibkr_nb.commissions import stock_commission
from ibkr_nb.evaluation import HORIZONS, evaluate, forward_returns, simulated_pnl
from ibkr_nb.sizing import base_quantity

SEED = 20261203
NEW_YORK = ZoneInfo("America/New_York")


def generate(decisions: int, symbols: int, years: int, seed: int = SEED):
    """Bars: every symbol on every weekday (a geometric random walk); decisions at random
    times over the whole span (weekends, nights and the last days included, so some rows
    cannot be evaluated), random side and confidence, created_at in UTC."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2016-01-04", periods=years * 252)
    names = np.char.add("S", np.char.zfill(np.arange(symbols).astype(str), 3))
    steps = rng.normal(0.0003, 0.02, size=(symbols, len(days)))
    close = np.round(20 + 180 * rng.random((symbols, 1)) * np.exp(np.cumsum(steps, axis=1)), 2)
    bars = pd.DataFrame(
        {
            "symbol": np.repeat(names, len(days)),
            "date": np.tile(days.tz_localize("America/New_York"), symbols),
            "open": close.ravel(),
            "high": close.ravel(),
            "low": close.ravel(),
            "close": close.ravel(),
            "volume": 1_000_000,
        }
    )
    start = days[0].tz_localize("UTC").value
    span = (days[-1] + pd.Timedelta(days=3)).tz_localize("UTC").value - start
    created = start + rng.integers(0, span, size=decisions)
    sym = rng.integers(0, symbols, size=decisions)
    frame = pd.DataFrame(
        {
            "decision_id": np.char.add("D", np.arange(decisions).astype(str)),
            "ticker": names[sym],
            "decision": rng.choice(np.array(["BUY", "SELL", "HOLD"]), size=decisions),
            "confidence": np.round(rng.uniform(0, 100, size=decisions), 1),
            "current_price": close[sym, len(days) // 2],
            "stop_loss": np.nan,
            "take_profit": np.nan,
            "reasoning": "bench",
            "created_at": pd.to_datetime(created, utc=True),
        }
    )
    return frame, bars


def reference_book(bars: pd.DataFrame):
    """Per-row Python: session close times (epoch seconds), first session's midnight, and a
    dict (symbol, session number) -> close."""
    calendar = sorted({ts.date() for ts in bars["date"].tolist()})
    closes_at = [
        datetime(d.year, d.month, d.day, 16, tzinfo=NEW_YORK).timestamp() for d in calendar
    ]
    first_open = datetime(*calendar[0].timetuple()[:3], tzinfo=NEW_YORK).timestamp()
    number = {d: i for i, d in enumerate(calendar)}
    close = {
        (s.upper(), number[t.date()]): c
        for s, t, c in zip(
            bars["symbol"].tolist(), bars["date"].tolist(), bars["close"].tolist(), strict=True
        )
        if c > 0
    }
    return closes_at, first_open, close


def reference(decisions: pd.DataFrame, book, horizons, max_position_size):
    """Per-row Python: (directional return, net P&L) per (decision, horizon), NaN if none."""
    closes_at, first_open, close = book
    sides = {"BUY": 1, "SELL": -1, "HOLD": 0}
    out = []
    for ticker, action, confidence, price, created in zip(
        decisions["ticker"].tolist(),
        decisions["decision"].tolist(),
        decisions["confidence"].tolist(),
        decisions["current_price"].tolist(),
        decisions["created_at"].tolist(),
        strict=True,
    ):
        side = sides[action.upper()]
        t = created.timestamp()
        i = bisect_left(closes_at, t)
        entry = close.get((ticker.upper(), i)) if t >= first_open else None
        for h in horizons:
            exit_ = close.get((ticker.upper(), i + h)) if entry is not None else None
            if exit_ is None or side == 0:
                out.append((math.nan, math.nan if exit_ is None else 0.0))
                continue
            q = side * base_quantity(price, confidence, max_position_size)
            fee = stock_commission(q, entry) + stock_commission(q, exit_)
            out.append((side * (exit_ / entry - 1), q * (exit_ - entry) - fee))
    return np.array(out, dtype=float).reshape(-1, 2)


def best_of(repeat: int, fn):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--reference-decisions", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    decisions, bars = generate(args.decisions, args.symbols, args.years)
    print(
        f"{len(decisions):,} decisions, {len(bars):,} bars "
        f"({args.symbols} symbols x {len(bars) // args.symbols:,} sessions), horizons {HORIZONS}"
    )
    t_forward, forward = best_of(args.repeat, lambda: forward_returns(decisions, bars))
    t_all, result = best_of(args.repeat, lambda: evaluate(decisions, bars))
    evaluated = (forward["reason"] == "").mean()
    print(f"forward_returns: {t_forward:.3f} s  ({evaluated:.1%} of rows evaluated)")
    print(
        f"evaluate (all tables): {t_all:.3f} s  (target <= 2 s: {'met' if t_all <= 2 else 'MISSED'})"
    )

    subset = decisions.iloc[: args.reference_decisions]
    t0 = time.perf_counter()
    book = reference_book(bars)
    t_book = time.perf_counter() - t0
    ref = reference(subset, book, HORIZONS, 10_000.0)
    t_ref = time.perf_counter() - t0 - t_book
    ours = forward_returns(subset, bars)
    pnl = simulated_pnl(ours)
    np.testing.assert_allclose(ref[:, 0], ours["directional_return"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        ref[:, 1], pnl["net_pnl"].to_numpy(), rtol=1e-9, atol=1e-9, err_msg="net P&L differs"
    )
    scaled = t_book + t_ref * len(decisions) / len(subset)
    print(
        f"per-row Python reference: indexing the bars {t_book:.2f} s, {len(subset):,} decisions "
        f"{t_ref:.3f} s (agrees row by row); scaled to {len(decisions):,} decisions: {scaled:.1f} s"
    )
    print(f"ratio reference / evaluate: {scaled / t_all:.1f}x")


if __name__ == "__main__":
    main()
