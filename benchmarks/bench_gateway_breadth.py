"""Paper gateway under a broad streaming load: 100 instruments tick-by-tick and 20 depth books.

Targets (issue 12): with 100 instruments streaming tick-by-tick (24 stocks AllLast, 6 FX pairs
BidAsk, 70 SPX options BidAsk, each priced by Black-Scholes from the index) and 20 market-depth
subscriptions, the gateway uses <= 0.3 core and a market order's round trip (placeOrder ->
Filled) stays <= 5 ms median. The gateway is a separate process with a running clock, so
prices move and every stream ticks.

    .venv/bin/python benchmarks/bench_gateway_breadth.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections import Counter

from bench_gateway import SYMBOLS, bench_round_trip, cpu_seconds, start_gateway
from ib_async import IB, Forex, Index, Option, Stock

PAIRS = ("EURUSD", "USDJPY", "GBPUSD", "USDCHF", "USDCAD", "AUDUSD")
OPTIONS = 70
DEPTH = 20


def contracts(ib: IB) -> list[tuple[object, str]]:
    """(contract, tick type) for the 100 tick-by-tick streams."""
    stocks = ib.qualifyContracts(*[Stock(s, "SMART", "USD") for s in SYMBOLS])
    fx = ib.qualifyContracts(*[Forex(p) for p in PAIRS])
    spx = ib.qualifyContracts(Index("SPX", "CBOE"))[0]
    [chain] = [
        c
        for c in ib.reqSecDefOptParams("SPX", "", "IND", spx.conId)
        if c.exchange == "SMART" and c.tradingClass == "SPX"
    ]
    [ticker] = ib.reqTickers(spx)
    spot = ticker.marketPrice()
    near = sorted(chain.strikes, key=lambda k: abs(k - spot))[: OPTIONS // 2]
    expiry = sorted(chain.expirations)[1]
    options = ib.qualifyContracts(
        *[Option("SPX", expiry, k, r, "SMART", tradingClass="SPX") for k in near for r in "CP"]
    )
    return (
        [(c, "AllLast") for c in stocks]
        + [(c, "BidAsk") for c in fx]
        + [(c, "BidAsk") for c in options]
    )


def stream(port: int, seconds: float) -> None:
    """The streaming client (run in its own process, so that decoding 800 messages a second
    does not delay the order client): subscribe, print "ready", stream, print the rates."""
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=3, timeout=10)
    streams = contracts(ib)
    ticks: Counter[int] = Counter()
    depth: Counter[int] = Counter()

    def counting(handler, counter):
        def count(req_id, *args):
            counter[req_id] += 1
            return handler(req_id, *args)

        return count

    for name in ("tickByTickAllLast", "tickByTickBidAsk"):
        setattr(ib.wrapper, name, counting(getattr(ib.wrapper, name), ticks))
    ib.wrapper.updateMktDepthL2 = counting(ib.wrapper.updateMktDepthL2, depth)
    for contract, tick_type in streams:
        ib.reqTickByTickData(contract, tick_type)
    for contract, _ in streams[:DEPTH]:
        ib.reqMktDepth(contract, numRows=5)
    while ib.client._msgQ:  # ib_async sends at most 45 requests a second
        ib.sleep(0.1)
    ib.sleep(1.0)
    ticks.clear()
    depth.clear()
    print("ready", flush=True)
    start = time.perf_counter()
    ib.sleep(seconds)
    elapsed = time.perf_counter() - start
    ib.disconnect()
    rates = (sum(ticks.values()) / elapsed, sum(depth.values()) / elapsed, len(ticks), len(depth))
    print(json.dumps(rates), flush=True)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--stream":
        stream(int(sys.argv[2]), float(sys.argv[3]))
        return
    # a running clock, so prices move; in memory: the benchmark measures the simulation, not the
    # disk (a state file is saved, fsynced, after every fill)
    gateway, port = start_gateway("--seed", "7", "--memory")
    streamer = subprocess.Popen(
        [sys.executable, __file__, "--stream", str(port), "20"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert streamer.stdout.readline().strip() == "ready", "the streaming client failed"
        cpu0, wall0 = cpu_seconds(gateway.pid), time.perf_counter()
        time.sleep(8.0)
        cores = (cpu_seconds(gateway.pid) - cpu0) / (time.perf_counter() - wall0)
        trips = bench_round_trip(port, orders=200)  # while everything keeps streaming
        tick_rate, depth_rate, tick_streams, depth_books = json.loads(streamer.stdout.readline())
        streamer.wait(30)
    finally:
        streamer.kill()
        gateway.terminate()
        gateway.wait()
    print(
        f"breadth:     {tick_streams} tick-by-tick streams ({tick_rate:6.1f} ticks/s) and "
        f"{depth_books} depth books ({depth_rate:6.1f} rows/s): gateway CPU {cores:.3f} of a "
        f"core   (target 100 + 20 under 0.3 core, ratio {cores / 0.3:.2f})"
    )
    print(
        f"round trip:  median {statistics.median(trips) * 1000:7.2f} ms, "
        f"p90 {statistics.quantiles(trips, n=10)[-1] * 1000:7.2f} ms over {len(trips)} "
        f"market orders while streaming   (target median <= 5 ms, ratio "
        f"{statistics.median(trips) * 1000 / 5:.2f})"
    )


if __name__ == "__main__":
    main()
