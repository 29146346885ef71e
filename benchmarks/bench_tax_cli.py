"""Benchmark: `ibkr-nb tax` on a generated 1,000,000-trade IBKR statement, as an Activity
Statement CSV and as a Flex Query XML: wall time and peak memory (RSS) of the CLI process,
run as a child process so its peak is its own.

The statement: 2,000 symbols over several years, buys and sells in rounds (codes O / C,
`Order` rows only, commissions), one account, USD. Files go to a temporary folder that is
removed afterwards.
Run: .venv/bin/python benchmarks/bench_tax_cli.py [--trades N] [--symbols N] [--format csv|xml|both]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 11


def generate(trades: int, symbols: int) -> pd.DataFrame:
    """Round trips per symbol: a buy, then a sale of all of it, on business days."""
    rng = np.random.default_rng(SEED)
    per = max(2, trades // symbols // 2 * 2)
    n = per * symbols
    days = pd.bdate_range("2016-01-04", periods=per * 3)
    day = np.sort(rng.choice(len(days), size=(symbols, per), replace=True), axis=1).ravel()
    seconds = rng.integers(34_200, 57_600, size=n)
    when = days.to_numpy()[day] + seconds.astype("timedelta64[s]")
    size = rng.integers(1, 40, size=(symbols, per // 2)) * 5
    qty = np.stack([size, -size], axis=2).reshape(symbols, per).ravel().astype(float)
    price = np.round(20 + 180 * rng.random(n), 2)
    order = np.lexsort((np.arange(n), when))
    frame = pd.DataFrame(
        {
            "symbol": np.char.add("S", np.repeat(np.arange(symbols), per).astype(str)),
            "when": when,
            "quantity": qty,
            "price": price,
            "commission": np.round(np.maximum(1.0, 0.005 * np.abs(qty)), 2),
        }
    )
    # within a symbol, keep the buy before its sale: sort by symbol order then time
    frame["when"] = frame.groupby("symbol")["when"].transform(lambda w: np.sort(w.to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def write_activity_csv(frame: pd.DataFrame, path: Path) -> None:
    code = np.where(frame["quantity"] > 0, "O", "C")
    lines = (
        "Trades,Data,Order,Stocks,USD,U1,"
        + frame["symbol"]
        + ',"'
        + frame["when"].dt.strftime("%Y-%m-%d, %H:%M:%S")
        + '",-,'
        + frame["quantity"].map("{:g}".format)
        + ","
        + frame["price"].map("{:g}".format)
        + ","
        + (-frame["quantity"] * frame["price"]).round(2).map("{:g}".format)
        + ","
        + (-frame["commission"]).map("{:g}".format)
        + ",,,"  # no Basis or Realized P/L: nothing of IBKR's to reconcile
        + code
    )
    with path.open("w") as f:
        f.write(
            "Statement,Header,Field Name,Field Value\nStatement,Data,Title,Activity Statement\n"
        )
        f.write(
            "Trades,Header,DataDiscriminator,Asset Category,Currency,Account,Symbol,Date/Time,"
            "Exchange,Quantity,T. Price,Proceeds,Comm/Fee,Basis,Realized P/L,Code\n"
        )
        f.write("\n".join(lines))
        f.write("\n")


def write_flex_xml(frame: pd.DataFrame, path: Path) -> None:
    oc = np.where(frame["quantity"] > 0, "O", "C")
    rows = (
        '<Trade accountId="U1" currency="USD" fxRateToBase="1" assetCategory="STK" symbol="'
        + frame["symbol"]
        + '" tradeID="'
        + pd.Series(np.arange(len(frame)).astype(str))
        + '" dateTime="'
        + frame["when"].dt.strftime("%Y%m%d;%H%M%S")
        + '" quantity="'
        + frame["quantity"].map("{:g}".format)
        + '" tradePrice="'
        + frame["price"].map("{:g}".format)
        + '" ibCommission="'
        + (-frame["commission"]).map("{:g}".format)
        + '" openCloseIndicator="'
        + oc
        + '" multiplier="1" levelOfDetail="EXECUTION" />'
    )
    with path.open("w") as f:
        f.write('<FlexQueryResponse><FlexStatements count="1"><FlexStatement accountId="U1">')
        f.write('<AccountInformation accountId="U1" currency="USD" /><Trades>\n')
        f.write("\n".join(rows))
        f.write("\n</Trades></FlexStatement></FlexStatements></FlexQueryResponse>\n")


def run_cli(statement: Path, out: Path) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of the child, and the CLI's last summary
    line. (CPU time: the machine is shared, and wall time counts the waits for a core.)"""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ibkr_nb.cli", "tax", str(statement), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"the CLI failed ({done.returncode}): {done.stderr.strip()}")
    if peak <= before:
        print("  (peak RSS not above an earlier child's: the figure below is an upper bound)")
    return wall, cpu, peak / 1024, done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=2_000)
    parser.add_argument("--format", choices=["csv", "xml", "both"], default="both")
    args = parser.parse_args()
    frame = generate(args.trades, args.symbols)
    formats = ["csv", "xml"] if args.format == "both" else [args.format]
    with tempfile.TemporaryDirectory(prefix="bench-tax-") as tmp:
        for fmt in formats:
            path = Path(tmp) / f"statement.{fmt}"
            (write_activity_csv if fmt == "csv" else write_flex_xml)(frame, path)
            size = path.stat().st_size / 2**20
            wall, cpu, peak, last = run_cli(path, Path(tmp) / f"out-{fmt}")
            print(
                f"{fmt}: {len(frame):,} trades, {size:,.0f} MiB file: CLI {wall:.1f} s "
                f"({cpu:.1f} s CPU), "
                f"peak RSS {peak:,.0f} MiB ({peak / 1024:.2f} GiB; target <= 2 GiB)"
            )
            print(f"  {last}")


if __name__ == "__main__":
    main()
