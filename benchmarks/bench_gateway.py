"""Paper gateway figures: connect time, market-order round trip, streaming load.

Targets (issue 2): connect <= 0.5 s; placeOrder -> Filled median <= 5 ms on loopback;
200 streaming subscriptions at 4 ticks/s each with the gateway under half a core.
The gateway runs as a separate process (``ibkr-nb gateway``) so its CPU time is its own.

    .venv/bin/python benchmarks/bench_gateway.py
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter

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
    # the access log (stderr) is discarded: an unread pipe would fill and stall the gateway
    process = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
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
        ib.sleep(1 / 40)  # under ib_async's 45 requests/s; reads what came in meanwhile
        filled = asyncio.get_event_loop().create_future()
        start = time.perf_counter()
        trade = ib.placeOrder(contract, order)
        trade.filledEvent += lambda _trade, done=filled: done.done() or done.set_result(None)
        ib.run(asyncio.wait_for(filled, 2))
        times.append(time.perf_counter() - start)
    ib.disconnect()
    return times


def bench_streaming(port: int, pid: int, subscriptions: int = 200, seconds: float = 10.0):
    """Gateway CPU (cores), and per subscription: updates/s and tick messages/s (by reqId).

    The subscriptions are spread over clients of at most 100 lines each (TWS's allowance)."""
    clients = []
    for n in range(-(-subscriptions // 100)):
        ib = IB()
        ib.connect("127.0.0.1", port, clientId=2 + n, timeout=5)
        clients.append(ib)
    contracts = clients[0].qualifyContracts(*[Stock(s, "SMART", "USD") for s in SYMBOLS])
    messages: Counter[tuple[int, int]] = Counter()
    updates: set[tuple[int, int, int]] = set()  # (client, reqId, quarter second) with ticks

    def counting(handler, n: int):
        def count(req_id, *args):
            messages[n, req_id] += 1
            updates.add((n, req_id, int(time.monotonic() * 4)))
            return handler(req_id, *args)

        return count

    for n, ib in enumerate(clients):
        for name in ("priceSizeTick", "tickSize", "tickString"):
            setattr(ib.wrapper, name, counting(getattr(ib.wrapper, name), n))
    for i in range(subscriptions):
        clients[i // 100].reqMktData(contracts[i % len(contracts)])
    # ib_async sends at most 45 requests a second: wait until every request is out
    while any(ib.client._msgQ for ib in clients):
        clients[0].sleep(0.1)
    clients[0].sleep(1.0)
    messages.clear()
    updates.clear()
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    clients[0].sleep(seconds)
    cpu1, wall1 = cpu_seconds(pid), time.perf_counter()
    for ib in clients:
        ib.disconnect()
    elapsed = wall1 - wall0
    per_subscription = sum(messages.values()) / elapsed / subscriptions
    update_rate = len(updates) / elapsed / subscriptions
    return (cpu1 - cpu0) / elapsed, update_rate, per_subscription, len(messages)


def main() -> None:
    process, port = start_gateway("--memory", "--seed", "7", "--clock", "2026-11-24T15:30:00Z")
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

    process, port = start_gateway("--memory", "--seed", "7")  # a running clock: prices move
    try:
        cores, update_rate, rate, active = bench_streaming(port, process.pid)
    finally:
        process.terminate()
        process.wait()
    print(
        f"streaming:   {active} subscriptions ticking, {update_rate:4.2f} updates/s and "
        f"{rate:4.2f} tick messages/s each, gateway CPU {cores:.3f} of a core   "
        f"(target 200 at 4 updates/s each under 0.5 core)"
    )


if __name__ == "__main__":
    main()
