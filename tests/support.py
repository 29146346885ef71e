"""Helpers shared by the tests: the fixed clock and seed, and ib_async clients of a gateway."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

from ib_async import IB

# A Tuesday, 10:30 in New York: the market is open.
CLOCK = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
SEED = 7
_client_ids = itertools.count(11)


def connect_ib(gateway, client_id: int | None = None, **kwargs) -> IB:
    """An ib_async client of ``gateway`` (a fresh client id unless one is given)."""
    ib = IB()
    ib.RaiseRequestErrors = True
    ib.connect(
        "127.0.0.1", gateway.port, clientId=client_id or next(_client_ids), timeout=5, **kwargs
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
