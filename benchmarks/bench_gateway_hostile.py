"""Paper gateway under hostile load: half-open sockets and a client asking for huge histories.

Target (issue 9): with 300 idle half-open sockets and one client requesting 10 years of
1-minute bars, another client's market-order round trip stays <= 5 ms median and the gateway's
memory under 200 MB. A second phase replaces the 1-minute request (which TWS, and the gateway,
refuse at once with 162) by 10 years of daily bars, which the gateway does compute: a few
sessions at a time, between other clients' messages.

The gateway runs as its own process (``ibkr-nb gateway --memory``); so does the heavy client.

    .venv/bin/python benchmarks/bench_gateway_hostile.py
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time

from bench_gateway import bench_round_trip, start_gateway

HALF_OPEN = 300
HEAVY = """
import sys
from ib_async import IB, Stock
from ib_async.wrapper import RequestError
port, bar_size = int(sys.argv[1]), sys.argv[2]
ib = IB()
ib.RaiseRequestErrors = True
ib.connect("127.0.0.1", port, clientId=77, timeout=10)
contract = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))[0]
print("ready", flush=True)
while True:
    try:
        bars = ib.reqHistoricalData(contract, "", "10 Y", bar_size, "TRADES", True, timeout=0)
        print("bars", len(bars), flush=True)
    except RequestError as exc:
        print("error", exc.code, flush=True)
"""


class HalfOpen:
    """Keeps ``count`` sockets open that never finish the API handshake (reopening those the
    gateway closes, as a flood would)."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.socks: list[socket.socket] = []
        self.reopened = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open(self, i: int) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        if i % 2:
            s.sendall(b"API\0")  # half a handshake
        s.setblocking(False)
        return s

    def run(self) -> None:
        self.socks = [self.open(i) for i in range(self.count)]
        while not self.stop.wait(0.2):
            for i, s in enumerate(self.socks):
                try:
                    closed = s.recv(1) == b""
                except BlockingIOError:
                    closed = False
                except OSError:
                    closed = True
                if closed:
                    s.close()
                    self.socks[i] = self.open(i)
                    self.reopened += 1
        for s in self.socks:
            s.close()


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return int(fields["VmRSS"][0]) / 1024, int(fields["VmHWM"][0]) / 1024


def phase(bar_size: str) -> None:
    gateway, port = start_gateway("--memory", "--seed", "7", "--clock", "2026-11-24T15:30:00Z")
    flood = HalfOpen(port, HALF_OPEN)
    flood.thread.start()
    heavy = subprocess.Popen(
        [sys.executable, "-c", HEAVY, str(port), bar_size],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # ib_async logs every 162
        text=True,
    )
    try:
        assert heavy.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        trips = bench_round_trip(port, orders=200)
        now, peak = rss_mb(gateway.pid)
    finally:
        heavy.kill()
        out = heavy.communicate()[0].splitlines()
        flood.stop.set()
        flood.thread.join()
        gateway.terminate()
        gateway.wait()
    answers = [line for line in out if line.startswith(("bars", "error"))]
    print(
        f"10 Y of {bar_size:6s} bars: {len(answers)} answers ({answers[0] if answers else '-'}); "
        f"{HALF_OPEN} half-open sockets ({flood.reopened} reopened after the 5 s timeout)"
    )
    print(
        f"  round trip: median {statistics.median(trips) * 1000:6.2f} ms, "
        f"p90 {statistics.quantiles(trips, n=10)[-1] * 1000:6.2f} ms over {len(trips)} market "
        f"orders   (target median <= 5 ms)"
    )
    print(f"  gateway memory: {now:6.1f} MB now, {peak:6.1f} MB peak   (target < 200 MB)")


def alone() -> None:
    """The same round trip with nothing else going on: the machine's own figure."""
    gateway, port = start_gateway("--memory", "--seed", "7", "--clock", "2026-11-24T15:30:00Z")
    try:
        trips = bench_round_trip(port, orders=200)
    finally:
        gateway.terminate()
        gateway.wait()
    print(
        f"no load: round trip median {statistics.median(trips) * 1000:6.2f} ms, "
        f"p90 {statistics.quantiles(trips, n=10)[-1] * 1000:6.2f} ms (the baseline to compare)"
    )


def main() -> None:
    alone()
    phase("1 min")
    phase("1 day")


if __name__ == "__main__":
    main()
