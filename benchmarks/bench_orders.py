"""Orders from AI decisions (issue 8): planning, a batch against the paper gateway, the ledger.

Targets: planning 100,000 decisions <= 1 s; a batch of 200 orders never trips pacing (no error
100) and completes within 1.3x of the time the 50 messages/s limit allows for the messages it
sends (what-if + placeOrder per order, plus the idempotency lookups, counted at the socket);
ledger: 1,000,000 fills inserted <= 10 s, ``open_lots()`` on them <= 3 s.
The gateway runs as a separate process (``ibkr-nb gateway``, frozen clock, market open).

    .venv/bin/python benchmarks/bench_orders.py [--decisions N] [--orders N] [--fills N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_gateway import SYMBOLS, start_gateway  # noqa: E402

import ibkr_nb  # noqa: E402
from ibkr_nb.decisions import validate_decisions  # noqa: E402
from ibkr_nb.gateway.server import PACING_LIMIT  # noqa: E402
from ibkr_nb.risk import RiskLimits, plan_orders  # noqa: E402

NOW = pd.Timestamp("2026-11-24 15:30", tz="UTC")


def ratio(value: float, target: float) -> str:
    return f"{value / target:.2f}x of target ({'ok' if value <= target else 'MISSED'})"


def generated_decisions(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` decisions on ``n // 4`` symbols: BUY / SELL / HOLD, half with a bracket."""
    symbols = np.array([f"S{i:05d}" for i in range(max(n // 4, 1))])
    price = np.round(rng.uniform(5, 500, n), 2)
    action = rng.choice(["BUY", "SELL", "HOLD"], n, p=[0.45, 0.35, 0.2])
    side = np.where(action == "SELL", -1, 1)
    with_stop = rng.random(n) < 0.5
    return pd.DataFrame(
        {
            "decision_id": [f"d{i}" for i in range(n)],
            "ticker": rng.choice(symbols, n),
            "decision": action,
            "confidence": rng.uniform(0, 100, n).round(1),
            "current_price": price,
            "stop_loss": np.where(with_stop, np.round(price * (1 - side * 0.05), 2), np.nan),
            "take_profit": np.where(with_stop, np.round(price * (1 + side * 0.1), 2), np.nan),
            "reasoning": "generated",
            "created_at": NOW - pd.to_timedelta(rng.integers(0, 3600, n), unit="s"),
        }
    )


def bench_planning(n: int) -> None:
    rng = np.random.default_rng(8)
    raw = generated_decisions(n, rng)
    symbols = raw["ticker"].unique()
    held = rng.choice(symbols, min(len(symbols), 2_000), replace=False)
    positions = pd.DataFrame({"symbol": held, "quantity": rng.integers(-200, 400, len(held))})
    lots = pd.DataFrame(
        {
            "symbol": held,
            "quantity": 100.0,
            "cost_basis": 100.0 * rng.uniform(5, 500, len(held)),
            "date_acquired": pd.Timestamp("2025-06-01"),
            "holding_period_start": pd.Timestamp("2025-06-01"),
        }
    )
    realized = pd.DataFrame(
        {"symbol": held[:500], "date_sold": pd.Timestamp("2026-11-10"), "gain_loss": -50.0}
    )
    account = {"NetLiquidation": 5e7, "AvailableFunds": 2e7}
    limits = RiskLimits(max_orders_per_batch=n, max_batch_notional=1e12, max_daily_notional=1e12)
    start = time.perf_counter()
    valid, rejects = validate_decisions(raw, now=NOW)
    validated = time.perf_counter() - start
    times = []
    for _ in range(3):
        start = time.perf_counter()
        plan = plan_orders(
            valid, positions, account, limits, lots=lots, realized=realized, today=NOW
        )
        times.append(time.perf_counter() - start)
    counts = plan["status"].value_counts().to_dict()
    print(f"== planning {n:,} decisions ({len(symbols):,} symbols, {len(held):,} held)")
    print(f"   validate_decisions: {validated:.3f} s ({len(rejects)} rejects)")
    print(f"   plan_orders: median {statistics.median(times):.3f} s of 3 runs; {counts}")
    print(f"   target <= 1 s: {ratio(statistics.median(times), 1.0)}")


def bench_batch(n: int) -> None:
    process, port = start_gateway("--seed", "7", "--clock", "2026-11-24T15:30:00Z")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            session = ibkr_nb.connect(
                port=port,
                client_id=7,
                ibkr_nb_db=f"{tmp}/ledger.duckdb",
                ibkr_kill_switch=f"{tmp}/KILL",
                max_orders_per_batch=n,
                max_batch_notional=1e9,
                max_daily_notional=1e9,
            )
            pacing: list[str] = []
            session.ib.errorEvent += lambda r, code, text, c: code == 100 and pacing.append(text)
            quotes = session.quote(SYMBOLS)
            price = quotes.set_index("symbol")["last"]
            one_each = pd.DataFrame(  # confidence 0: one share each (the size is at least 1)
                {
                    "decision_id": [f"warm-{s}" for s in SYMBOLS],
                    "ticker": SYMBOLS,
                    "decision": "BUY",
                    "confidence": 0.0,
                    "current_price": price.loc[SYMBOLS].to_numpy(),
                }
            )
            template = session.plan(one_each)
            template = template[template["status"] == "planned"]
            rounds = -(-n // len(template))
            plan = pd.concat(
                [
                    template.assign(
                        decision_id=template["decision_id"] + f"-{k}",
                        order_ref=template["decision_id"] + f"-{k}",
                    )
                    for k in range(rounds)
                ],
                ignore_index=True,
            ).head(n)
            sent_before = session.ib.client.conn.numMsgSent
            start = time.perf_counter()
            result = session.execute(plan, dry_run=False, wait=30)
            elapsed = time.perf_counter() - start
            messages = session.ib.client.conn.numMsgSent - sent_before
            allowed = messages / PACING_LIMIT
            states = result["status"].value_counts().to_dict()
            print(f"== a batch of {n} orders against the paper gateway")
            print(f"   results: {states}; error 100 (pacing): {len(pacing)}")
            print(
                f"   {messages} messages sent ({messages / n:.2f} per order) in {elapsed:.2f} s; "
                f"the {PACING_LIMIT} msg/s limit allows {allowed:.2f} s"
            )
            print(f"   target <= 1.3x: {elapsed / allowed:.2f}x ({ratio(elapsed / allowed, 1.3)})")
            session.disconnect()
    finally:
        process.terminate()
        process.wait(5)


def bench_ledger(n: int) -> None:
    rng = np.random.default_rng(9)
    symbols = np.array([f"S{i:04d}" for i in range(2_000)])
    sym = rng.choice(symbols, n)
    # per symbol alternate buys and smaller sells, so positions stay long and lots close
    order = np.argsort(sym, kind="stable")
    step = np.empty(n, dtype=np.int64)
    step[order] = np.arange(n) - np.searchsorted(sym[order], sym[order])
    quantity = np.where(step % 3 == 2, -rng.integers(1, 50, n), rng.integers(25, 100, n))
    fills = pd.DataFrame(
        {
            "exec_id": [f"0000e1.{i:08x}.01.01" for i in range(n)],
            "order_ref": "",
            "account": "DU1234567",
            "symbol": sym,
            "quantity": quantity.astype(float),
            "price": np.round(rng.uniform(10, 500, n), 2),
            "currency": "USD",
            "exchange": "NASDAQ",
            "time": pd.Timestamp("2016-01-04 15:00", tz="UTC")
            + pd.to_timedelta(np.arange(n) * 300, unit="s"),
            "source": "bench",
        }
    )
    commissions = pd.DataFrame(
        {"exec_id": fills["exec_id"], "commission": 1.0, "realized_pnl": np.nan, "currency": "USD"}
    )
    with tempfile.TemporaryDirectory() as tmp:
        ledger = ibkr_nb.Ledger(f"{tmp}/ledger.duckdb")
        start = time.perf_counter()
        added = ledger.record_fills(fills, commissions)
        inserted = time.perf_counter() - start
        start = time.perf_counter()
        lots = ledger.open_lots()
        lot_time = time.perf_counter() - start
        start = time.perf_counter()
        ledger.open_lots()
        cached = time.perf_counter() - start
        size = Path(ledger.path).stat().st_size / 1e6
    print(f"== ledger: {n:,} fills on 2,000 symbols ({size:.0f} MB file)")
    print(f"   record_fills (with commissions): {inserted:.2f} s, {added:,} added")
    print(f"   target <= 10 s: {ratio(inserted, 10.0)}")
    print(f"   open_lots(): {lot_time:.2f} s ({len(lots):,} open lots); again (cached) {cached:.2f} s")
    print(f"   target <= 3 s: {ratio(lot_time, 3.0)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--fills", type=int, default=1_000_000)
    args = parser.parse_args()
    bench_planning(args.decisions)
    bench_batch(args.orders)
    bench_ledger(args.fills)


if __name__ == "__main__":
    main()
