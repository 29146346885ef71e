"""Benchmark: FIFO tax lots with wash sales on 1,000,000 fills (2,000 symbols, 10 years).

Two generated histories: "realistic" (round trips with a mix of holding periods in an
up-drifting market: mostly gains, some wash sales; a tenth of the symbols are options with
multiplier 100 and a fifth trade in EUR at a daily USD rate) and "wash-heavy" (random position targets
re-traded every few days in a driftless market: about 80% of realized rows are wash sales,
the engine's worst case). For each it prints wall time and peak memory of `match_lots`, then
the speed ratio against a straightforward lot-by-lot pure-Python implementation of the same
rules on the same input, producing the same deliverable (realized rows and open lots as
DataFrames; checked to agree with `match_lots` column by column), run on a subset of symbols
and extrapolated if `--naive-symbols` is below `--symbols`, as it says; and, if the
`beancount` package is installed, the ratio against beancount's FIFO booking of the same
trades without wash sales (also on a subset).
Run: .venv/bin/python benchmarks/bench_tax.py [--fills N] [--symbols N] [--naive-symbols N]
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from ibkr_nb.tax.lots import OPEN_LOT_COLUMNS, REALIZED_COLUMNS, match_lots
from ibkr_nb.tax.trades import TRADE_COLUMNS  # trade_id .. commission first

SEED = 20240101
YEARS = 10


def generate(fills: int, symbols: int, seed: int = SEED) -> pd.DataFrame:
    """Wash-heavy long-only fills: per symbol a random target position, traded in steps.

    Each symbol gets fills/symbols fills on random business days over YEARS years, prices
    from a daily geometric random walk, commission $0.005/share with a $1 minimum.
    """
    rng = np.random.default_rng(seed)
    per = fills // symbols
    days = pd.bdate_range("2015-01-02", periods=YEARS * 252).to_numpy()
    n = per * symbols
    sym = np.repeat(np.arange(symbols), per)
    day_idx = np.sort(rng.integers(0, len(days), size=(symbols, per)), axis=1).ravel()
    seconds = rng.integers(9 * 3600 + 1800, 16 * 3600, size=n)
    when = np.sort(
        (days[day_idx] + seconds.astype("timedelta64[s]")).reshape(symbols, per), axis=1
    ).ravel()
    # Target positions: mostly held, sometimes flat, so lots open and close in runs.
    target = rng.integers(0, 40, size=(symbols, per)) * 25
    target[rng.random((symbols, per)) < 0.08] = 0
    for k in range(1, per):  # every fill changes the position
        same = target[:, k] == target[:, k - 1]
        target[same, k] = (target[same, k] + 25) % 1000
    qty = np.diff(target, axis=1, prepend=0).ravel().astype(float)
    steps = rng.normal(0.0003, 0.02, size=(symbols, len(days)))
    paths = 20 + 180 * rng.random((symbols, 1)) * np.exp(np.cumsum(steps, axis=1))
    price = np.round(paths[sym, day_idx] * (1 + rng.normal(0, 0.002, n)), 2)
    keep = qty != 0
    frame = pd.DataFrame(
        {
            "trade_id": np.char.add("F", np.arange(n).astype(str))[keep],
            "account": "U1234567",
            "symbol": np.char.add("S", np.char.zfill(sym.astype(str), 4))[keep],
            "datetime": pd.DatetimeIndex(when[keep]).tz_localize("America/New_York"),
            "quantity": qty[keep],
            "price": price[keep],
            "commission": np.maximum(1.0, 0.005 * np.abs(qty[keep])),
        }
    )
    return frame.sort_values(["datetime", "trade_id"], kind="stable").reset_index(drop=True)


def generate_realistic(fills: int, symbols: int, seed: int = SEED) -> pd.DataFrame:
    """Deterministic long-only round trips: buy 10-400 shares, sell them in one or two fills
    after a holding period that is a few days (25%), weeks (35%), months (25%) or over a
    year (15%); prices a daily geometric random walk drifting up 10% a year (25% volatility).
    Trips overlap; those that would close after the last day stay open. Commission as in
    `generate`. About `fills` fills (2.5 a trip)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-01-02", periods=YEARS * 252).to_numpy()
    trips = int(fills / 2.5)
    sym = rng.integers(0, symbols, trips)
    opened = rng.integers(0, len(days), trips)
    band = rng.choice(4, trips, p=[0.25, 0.35, 0.25, 0.15])
    held = rng.integers(np.array([0, 5, 40, 253])[band], np.array([5, 40, 253, 750])[band])
    size = rng.integers(1, 17, trips) * 25
    two = rng.random(trips) < 0.5  # sold in two fills, the first half then the rest
    first = np.where(two, size // 2, size)
    # Fills: trip, day index, quantity, seconds after midnight (buys before noon, sells after).
    trip = np.r_[np.arange(trips), np.arange(trips), np.flatnonzero(two)]
    closed = opened + held
    day_idx = np.r_[opened, closed, closed[two] + rng.integers(0, 10, two.sum())]
    qty = np.r_[size, -first, -(size - first)[two]].astype(float)
    seconds = np.r_[
        rng.integers(9 * 3600 + 1800, 12 * 3600, trips),
        rng.integers(12 * 3600, 16 * 3600, trips + two.sum()),
    ]
    keep = day_idx < len(days)
    trip, day_idx, qty, seconds = trip[keep], day_idx[keep], qty[keep], seconds[keep]
    steps = rng.normal(0.10 / 252, 0.25 / np.sqrt(252), size=(symbols, len(days)))
    paths = 20 + 180 * rng.random((symbols, 1)) * np.exp(np.cumsum(steps, axis=1))
    price = np.round(paths[sym[trip], day_idx] * (1 + rng.normal(0, 0.002, len(trip))), 2)
    n = len(trip)
    frame = pd.DataFrame(
        {
            "trade_id": np.char.add("R", np.arange(n).astype(str)),
            "account": "U1234567",
            "symbol": np.char.add("S", np.char.zfill(sym[trip].astype(str), 4)),
            "datetime": pd.DatetimeIndex(
                days[day_idx] + seconds.astype("timedelta64[s]")
            ).tz_localize("America/New_York"),
            "quantity": qty,
            "price": price,
            "commission": np.maximum(1.0, 0.005 * np.abs(qty)),
        }
    )
    return with_options_and_currencies(
        frame.sort_values(["datetime", "trade_id"], kind="stable").reset_index(drop=True), rng
    )


def with_options_and_currencies(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Every tenth symbol an equity option (multiplier 100, price / 50), every fifth a stock
    in EUR at a daily EUR/USD rate (a random walk around 1.10): the engine's data-driven
    multiplier and currency paths."""
    code = frame["symbol"].str[1:].astype(int).to_numpy()
    option = code % 10 == 3
    euro = code % 5 == 1
    day = frame["datetime"].dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    first = day.min()
    span = int((day.max() - first).astype(int)) + 1
    walk = 1.10 * np.exp(np.cumsum(rng.normal(0, 0.004, span)))
    return frame.assign(
        price=np.where(option, np.round(frame["price"] / 50, 2), frame["price"]),
        asset_category=np.where(option, "OPT", "STK"),
        multiplier=np.where(option, 100.0, 1.0),
        currency=np.where(euro, "EUR", "USD"),
        fx_rate=np.where(euro, walk[(day - first).astype(int)], 1.0),
    )


@dataclass(slots=True)
class NaiveLot:
    """A lot (or the part of one that absorbed a wash-sale loss) in the naive book."""

    qty: float  # shares
    unit: float  # cost per share, USD, commission included
    row: int  # the buy's row in `rows`: lot id and acquisition time
    day: int  # acquisition date, proleptic ordinal
    hps: int  # holding period start after wash-sale tacking, ordinal
    adj: float  # disallowed loss carried in, USD per share
    absorbed: bool  # these shares already absorbed a loss


def naive_fifo_wash(trades: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Straightforward lot-by-lot FIFO with the same wash-sale rules, in plain Python.

    Symbol by symbol, row by row: each sale takes lots from the front of a list; a loss
    first takes held lots bought in the 30 days before (in purchase order, splitting a lot
    where only some shares absorb), then reserves shares of purchases in the 30 days after.
    One record per realized piece, DataFrames built at the end with `match_lots`'s columns
    (realized, open lots). Long positions and one account only, as the generated data.
    """
    trades = trades.assign(
        multiplier=trades.get("multiplier", 1.0), fx_rate=trades.get("fx_rate", 1.0)
    )
    rows = list(trades[[*TRADE_COLUMNS[:7], "multiplier", "fx_rate"]].itertuples(index=False))
    day = [r.datetime.toordinal() for r in rows]
    by_symbol: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_symbol[r.symbol].append(i)
    realized = []
    held = []
    for idx in by_symbol.values():
        book: list[NaiveLot] = []
        reserved: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
        reserved_qty: dict[int, float] = defaultdict(float)
        for pos, i in enumerate(idx):
            r = rows[i]
            if r.quantity > 0:
                unit = (r.quantity * r.price * r.multiplier + r.commission) * r.fx_rate / r.quantity
                left = r.quantity
                for q, adj, hps in reserved.pop(i, []):
                    book.append(NaiveLot(q, unit, i, day[i], hps, adj, True))
                    left -= q
                if left > 1e-9:
                    book.append(NaiveLot(left, unit, i, day[i], day[i], 0.0, False))
                continue
            need = -r.quantity
            net = (need * r.price * r.multiplier - r.commission) * r.fx_rate / need
            sold = []
            while need > 1e-9:
                lot = book[0]
                take = min(need, lot.qty)
                sold.append((take, lot))
                lot.qty -= take
                need -= take
                if lot.qty <= 1e-9:
                    book.pop(0)
            for take, lot in sold:
                proceeds = take * net
                adj_in = take * lot.adj
                cost = take * lot.unit + adj_in
                gain = proceeds - cost
                disallowed = 0.0
                if gain < -1e-9:
                    want, per_share = take, -gain / take
                    k = 0
                    while k < len(book) and want > 1e-9:
                        other = book[k]
                        if not other.absorbed and other.row != lot.row and day[i] - other.day <= 30:
                            got = min(want, other.qty)
                            tacked = other.day - (day[i] - lot.hps)
                            book.insert(
                                k,
                                NaiveLot(
                                    got, other.unit, other.row, other.day, tacked, per_share, True
                                ),
                            )
                            other.qty -= got
                            want -= got
                            if other.qty <= 1e-9:
                                book.pop(k + 1)
                        k += 1
                    for j in idx[pos + 1 :]:
                        if want <= 1e-9 or day[j] - day[i] > 30:
                            break
                        if rows[j].quantity > 0:
                            got = min(want, rows[j].quantity - reserved_qty[j])
                            if got > 1e-9:
                                reserved[j].append((got, per_share, day[j] - (day[i] - lot.hps)))
                                reserved_qty[j] += got
                                want -= got
                    disallowed = per_share * (take - want)
                acquired, sold_on, start = (
                    date.fromordinal(day[lot.row]),
                    date.fromordinal(day[i]),
                    date.fromordinal(lot.hps),
                )
                held_from = start + timedelta(days=1)  # the day after acquisition
                long_term = (sold_on.year, sold_on.month, sold_on.day) >= (
                    held_from.year + 1,
                    held_from.month,
                    held_from.day,
                )
                realized.append(
                    (
                        r.account,
                        r.symbol,
                        rows[lot.row].trade_id,
                        r.trade_id,
                        "long",
                        take,
                        acquired,
                        sold_on,
                        start,
                        proceeds,
                        cost,
                        adj_in,
                        "W" if disallowed > 0 else "",
                        disallowed,
                        gain + disallowed,
                        "long" if long_term else "short",
                        rows[lot.row].datetime,
                        r.datetime,
                        0.0,  # permanently_disallowed: no IRA in the generated data
                        False,  # ira
                    )
                )
        for lot in book:
            b = rows[lot.row]
            held.append(
                (
                    b.account,
                    b.symbol,
                    b.trade_id,
                    "long",
                    lot.qty,
                    date.fromordinal(lot.day),
                    date.fromordinal(lot.hps),
                    lot.qty * (lot.unit + lot.adj),
                    np.nan,
                    lot.qty * lot.adj,
                    b.datetime,
                )
            )
    realized_frame = pd.DataFrame(realized, columns=REALIZED_COLUMNS)
    open_frame = pd.DataFrame(held, columns=OPEN_LOT_COLUMNS)
    for frame in (realized_frame, open_frame):
        for c in ("date_acquired", "date_sold", "holding_period_start"):
            if c in frame:
                frame[c] = pd.to_datetime(frame[c])
    return realized_frame, open_frame


def beancount_fifo_seconds(trades: pd.DataFrame) -> tuple[float, int]:
    """Seconds for beancount to parse and book the trades FIFO (no wash sales), and its
    error count. The ledger text is built before the clock starts."""
    from beancount import loader

    lines = [
        'option "booking_method" "FIFO"',
        "2000-01-01 open Assets:Cash",
        "2000-01-01 open Expenses:Commission",
        "2000-01-01 open Income:PnL",
    ]
    lines += [f"2000-01-01 open Assets:Broker:{s}" for s in trades["symbol"].unique()]
    for r in trades.itertuples(index=False):
        d = r.datetime.strftime("%Y-%m-%d")
        cash = -r.quantity * r.price - r.commission
        if r.quantity > 0:
            leg = f"  Assets:Broker:{r.symbol}  {r.quantity:g} {r.symbol} {{{r.price} USD}}"
            lines += [
                f'{d} * "buy"',
                leg,
                f"  Expenses:Commission  {r.commission:.4f} USD",
                f"  Assets:Cash  {cash:.4f} USD",
            ]
        else:
            leg = f"  Assets:Broker:{r.symbol}  {r.quantity:g} {r.symbol} {{}} @ {r.price} USD"
            lines += [
                f'{d} * "sell"',
                leg,
                f"  Expenses:Commission  {r.commission:.4f} USD",
                f"  Assets:Cash  {cash:.4f} USD",
                "  Income:PnL",
            ]
    text = "\n".join(lines) + "\n"
    t0 = time.perf_counter()
    _, errors, _ = loader.load_string(text)
    return time.perf_counter() - t0, len(errors)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_compiled_sweep() -> float:
    """CPU seconds to load the compiled wash-sale sweep (import numba, read the cached kernel):
    once per process, on the first match_lots with wash sales, like an import. Done here by a
    small such call so that the figures of the big runs are the engine's own."""
    trades = generate_realistic(2_500, 1)
    c0 = time.process_time()
    match_lots(trades, method="fifo", wash_sales=True)
    return time.process_time() - c0


def time_engine(name: str, trades: pd.DataFrame) -> tuple[float, float]:
    """Wall and CPU seconds of match_lots (FIFO, wash sales) on `trades`; prints them with
    peak RSS. (CPU time: the machine is shared, and wall time counts the waits for a core.)"""
    rss_before = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    result = match_lots(trades, method="fifo", wash_sales=True)
    engine_s, engine_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"[{name}] match_lots fifo + wash sales: {engine_s:.2f} s wall ({engine_cpu:.2f} s CPU), peak RSS "
        f"{peak_rss_mb():,.0f} MB (before: {rss_before:,.0f} MB); "
        f"{len(result.realized):,} realized rows, "
        f"{(result.realized['adjustment_code'] == 'W').sum():,} wash sales, "
        f"{len(result.open_lots):,} open lots"
    )
    print(
        f"[{name}] targets: <= 10 s: {'met' if engine_s <= 10 else 'MISSED'}; "
        f"<= 2048 MB peak: {'met' if peak_rss_mb() <= 2048 else 'MISSED'}"
    )
    return engine_s, engine_cpu


def compare_naive(
    name: str,
    trades: pd.DataFrame,
    naive_symbols: int,
    engine_s: float,
    engine_cpu: float,
    load_cpu: float,
) -> None:
    """Time the naive implementation on a subset of the symbols, check it gives match_lots's
    rows, and print the speed ratio (extrapolated linearly in symbols if a subset); in CPU
    time also with the one-time load of the compiled sweep (`load_cpu`) added."""
    symbols = sorted(trades["symbol"].unique())
    subset = trades[trades["symbol"].isin(symbols[:naive_symbols])].reset_index(drop=True)
    scale = len(trades) / len(subset)
    t0, c0 = time.perf_counter(), time.process_time()
    naive_realized, naive_open = naive_fifo_wash(subset)
    naive_s, naive_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    ours = match_lots(subset, method="fifo", wash_sales=True)
    ours_subset_s = time.perf_counter() - t0
    for theirs, mine in ((naive_realized, ours.realized), (naive_open, ours.open_lots)):
        pd.testing.assert_frame_equal(theirs, mine, check_dtype=False, rtol=0, atol=1e-6)
    print(
        f"[{name}] naive lot-by-lot Python, {min(naive_symbols, len(symbols))} symbols "
        f"({len(subset):,} fills): {naive_s:.2f} s; match_lots on the same subset "
        f"{ours_subset_s:.2f} s; both give the same {len(ours.realized):,} realized rows and "
        f"{len(ours.open_lots):,} open lots (every column; money within 1e-6 USD)"
    )
    extrapolated = (
        ""
        if scale == 1
        else f" extrapolated to all {len(trades):,} fills (x{scale:.1f}, linear in symbols)"
    )
    print(
        f"[{name}] naive{extrapolated}: {naive_s * scale:.1f} s -> speed-up "
        f"{naive_s * scale / engine_s:.1f}x (on the subset itself: {naive_s / ours_subset_s:.1f}x)"
    )
    print(
        f"[{name}] in CPU time: naive {naive_cpu * scale:.1f} s, match_lots {engine_cpu:.2f} s "
        f"-> speed-up {naive_cpu * scale / engine_cpu:.1f}x (with the one-time load of the "
        f"compiled sweep added: {naive_cpu * scale / (engine_cpu + load_cpu):.1f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=2_000)
    parser.add_argument("--naive-symbols", type=int, default=100)
    parser.add_argument("--beancount-symbols", type=int, default=20)
    args = parser.parse_args()

    load_cpu = load_compiled_sweep()
    print(
        f"loading the compiled wash-sale sweep (numba; once per process): {load_cpu:.2f} s CPU, "
        "not in match_lots's figures below (its ratios with it are shown too)"
    )
    histories, engine_s = {}, {}
    for name, make in (("realistic", generate_realistic), ("wash-heavy", generate)):
        t0 = time.perf_counter()
        trades = histories[name] = make(args.fills, args.symbols)
        print(
            f"[{name}] generated {len(trades):,} fills over {trades['symbol'].nunique():,} "
            f"symbols, {trades['datetime'].min():%Y-%m-%d} .. "
            f"{trades['datetime'].max():%Y-%m-%d} in {time.perf_counter() - t0:.1f} s "
            f"(seed {SEED})"
        )
        engine_s[name] = time_engine(name, trades)  # (wall, CPU)
    # The naive runs after every engine timing: its memory would inflate the peak RSS shown.
    for name, trades in histories.items():
        compare_naive(name, trades, args.naive_symbols, *engine_s[name], load_cpu)
    symbols = sorted(trades["symbol"].unique())  # the wash-heavy history from here on

    try:
        import beancount  # noqa: F401
    except ImportError:
        print("beancount not installed: no beancount comparison")
        return
    subset = trades[trades["symbol"].isin(symbols[: args.beancount_symbols])].reset_index(drop=True)
    bean_s, bean_errors = beancount_fifo_seconds(subset)
    t0 = time.perf_counter()
    match_lots(subset, method="fifo", wash_sales=False)
    ours_s = time.perf_counter() - t0
    scale = len(trades) / len(subset)
    t0 = time.perf_counter()
    match_lots(trades, method="fifo", wash_sales=False)
    ours_full_s = time.perf_counter() - t0
    print(
        f"beancount {beancount.__version__} FIFO booking (parse + book, no wash sales), "
        f"{args.beancount_symbols} symbols ({len(subset):,} fills): {bean_s:.2f} s, {bean_errors} errors; "
        f"match_lots without wash sales on the same subset {ours_s:.2f} s -> {bean_s / ours_s:.1f}x"
    )
    print(
        f"beancount extrapolated to all fills (x{scale:.1f}): {bean_s * scale:.1f} s; "
        f"match_lots without wash sales on all fills {ours_full_s:.2f} s -> {bean_s * scale / ours_full_s:.1f}x"
    )


if __name__ == "__main__":
    main()
