"""Paper gateway figures: connect time, market-order round trip, streaming load.

Targets (issue 2): connect <= 0.5 s; placeOrder -> Filled median <= 5 ms on loopback;
200 streaming subscriptions at 4 ticks/s each with the gateway under half a core.
The gateway runs as a separate process (``ibkr-nb gateway``) so its CPU time is its own.

    .venv/bin/python benchmarks/bench_gateway.py
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time

from ib_async import IB, MarketOrder, Stock

SYMBOLS = [
    "AAPL",
    "MSFT",
    "AMZN",
    "NVDA",
    "GOOGL",
    "META",
    "TSLA",
    "JPM",
    "JNJ",
    "XOM",
    "KO",
    "PEP",
    "WMT",
    "PG",
    "DIS",
    "INTC",
    "CSCO",
    "BAC",
    "NFLX",
    "AMD",
    "ORCL",
    "IBM",
    "SPY",
    "QQQ",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gateway(*extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cli = [sys.executable, "-m", "ibkr_nb.cli", "gateway", "--port", str(port), *extra]
    process = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process.stdout.readline()  # "paper gateway: ... listening"
    return process, port


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_connect(port: int, runs: int = 15) -> list[float]:
    times = []
    for i in range(runs):
        ib = IB()
        start = time.perf_counter()
        ib.connect("127.0.0.1", port, clientId=100 + i, timeout=5)
        times.append(time.perf_counter() - start)
        ib.disconnect()
    return times


def bench_round_trip(port: int, orders: int = 300) -> list[float]:
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=1, timeout=5)
    contract = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))[0]
    times = []
    for i in range(orders):
        order = MarketOrder("BUY" if i % 2 == 0 else "SELL", 10)
        start = time.perf_counter()
        trade = ib.placeOrder(contract, order)
        while trade.orderStatus.status != "Filled":
            ib.waitOnUpdate(timeout=2)
        times.append(time.perf_counter() - start)
    ib.disconnect()
    return times


def bench_streaming(port: int, pid: int, subscriptions: int = 200, seconds: float = 10.0):
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=2, timeout=5)
    contracts = ib.qualifyContracts(*[Stock(s, "SMART", "USD") for s in SYMBOLS])
    ticks = 0

    def count(tickers):
        nonlocal ticks
        ticks += sum(len(t.ticks) for t in tickers)

    ib.pendingTickersEvent += count
    for i in range(subscriptions):
        ib.reqMktData(contracts[i % len(contracts)])
    ib.sleep(1.0)
    ticks = 0
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    ib.sleep(seconds)
    cpu1, wall1 = cpu_seconds(pid), time.perf_counter()
    ib.disconnect()
    elapsed = wall1 - wall0
    return (cpu1 - cpu0) / elapsed, ticks / elapsed / subscriptions


def main() -> None:
    process, port = start_gateway("--seed", "7", "--clock", "2026-11-24T15:30:00Z")
    try:
        connect = bench_connect(port)
        trips = bench_round_trip(port)
    finally:
        process.terminate()
        process.wait()
    print(
        f"connect:     median {statistics.median(connect) * 1000:7.1f} ms, "
        f"max {max(connect) * 1000:7.1f} ms   (target <= 500 ms)"
    )
    print(
        f"round trip:  median {statistics.median(trips) * 1000:7.2f} ms, "
        f"p90 {statistics.quantiles(trips, n=10)[-1] * 1000:7.2f} ms over {len(trips)} "
        f"market orders   (target median <= 5 ms)"
    )

    process, port = start_gateway("--seed", "7")  # a running clock, so prices move
    try:
        cores, rate = bench_streaming(port, process.pid)
    finally:
        process.terminate()
        process.wait()
    print(
        f"streaming:   200 subscriptions, {rate:4.2f} tick events/s each, gateway CPU "
        f"{cores:.3f} of a core   (target 4 ticks/s each under 0.5 core)"
    )


if __name__ == "__main__":
    main()
