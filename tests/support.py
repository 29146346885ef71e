"""Helpers shared by the tests: the fixed clock and seed, and ib_async clients of a gateway."""

from __future__ import annotations

import itertools
import socket
import struct
import time
from datetime import UTC, datetime

from ib_async import IB, Index, Option

from ibkr_nb.gateway.protocol import decode_fields, encode_message, frame

# A Tuesday, 10:30 in New York: the market is open.
CLOCK = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
SEED = 7
_client_ids = itertools.count(1000)  # above every fixed id a test uses


def connect_ib(gateway, client_id: int | None = None, **kwargs) -> IB:
    """An ib_async client of ``gateway`` (a fresh client id unless one is given)."""
    ib = IB()
    ib.RaiseRequestErrors = True
    ib.connect(
        "127.0.0.1", gateway.port, clientId=client_id or next(_client_ids), timeout=15, **kwargs
    )
    return ib


def wait_until(ib: IB, predicate, timeout: float = 3.0):
    """Run ib_async's loop until ``predicate()`` is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        ib.sleep(0.02)
    return predicate()


class RawClient:
    """A bare TWS API client on a blocking socket, for sending what ib_async never would."""

    def __init__(self, port: int, client_id: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""
        self.sock.sendall(b"API\0" + frame(b"v157..178"))
        version, _ = self.read()
        assert int(version) == 178
        self.send(71, 2, client_id, "")
        self.read_until(lambda f: f[0] == "9")

    def send(self, *fields) -> None:
        self.sock.sendall(encode_message(fields))

    def read(self) -> list[str]:
        while True:
            if len(self.buffer) >= 4:
                (size,) = struct.unpack(">I", self.buffer[:4])
                if len(self.buffer) >= 4 + size:
                    payload, self.buffer = self.buffer[4 : 4 + size], self.buffer[4 + size :]
                    return decode_fields(payload)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by gateway")
            self.buffer += chunk

    def read_until(self, predicate) -> list[str]:
        while True:
            fields = self.read()
            if predicate(fields):
                return fields

    def error_code(self) -> int:
        fields = self.read_until(lambda f: f[0] == "4" and int(f[3]) < 2100)
        return int(fields[3])

    def closed(self) -> bool:
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionError, OSError):
            return True

    def close(self) -> None:
        self.sock.close()


def last_price(symbol: str) -> float:
    """The paper gateway's last trade price of ``symbol`` at the frozen test clock (SEED), so
    that tests state decision prices relative to the market instead of copying numbers."""
    from ibkr_nb.gateway.market import Clock, Market

    return round(float(Market(SEED, Clock(CLOCK, fixed=True)).quote(symbol).last), 2)


def qualified(ib: IB, contract):
    """``contract`` as the gateway qualifies it (exactly one match)."""
    [c] = ib.qualifyContracts(contract)
    return c


def spx_option(ib: IB, strike: float, right: str, trading_class: str, exchange: str) -> Option:
    """The qualified SPX option of the first expiry that ``reqSecDefOptParams`` lists for
    this trading class and exchange."""
    spx = qualified(ib, Index("SPX", "CBOE"))
    [chain] = [
        c
        for c in ib.reqSecDefOptParams("SPX", "", "IND", spx.conId)
        if c.exchange == exchange and c.tradingClass == trading_class
    ]
    contract = Option("SPX", chain.expirations[0], strike, right, "SMART")
    contract.tradingClass = trading_class
    return qualified(ib, contract)
