"""Shared fixtures: a paper gateway on a free loopback port, and ib_async clients of it."""

from __future__ import annotations

import pytest
from hypothesis import settings
from support import CLOCK, SEED, connect_ib

from ibkr_nb.gateway.server import PaperGateway

# Shared, noisy machines: no per-example time limit (speed is measured in benchmarks/).
settings.register_profile("shared-machine", deadline=None, print_blob=True)
settings.load_profile("shared-machine")


@pytest.fixture(autouse=True)
def private_ledger(tmp_path, monkeypatch):
    """Every test gets its own DuckDB ledger and kill-switch path (never the repo's data/)."""
    monkeypatch.setenv("IBKR_NB_DB", str(tmp_path / "ledger.duckdb"))
    monkeypatch.setenv("IBKR_KILL_SWITCH", str(tmp_path / "KILL"))
    monkeypatch.delenv("IBKR_ALLOW_LIVE", raising=False)
    return tmp_path / "ledger.duckdb"


@pytest.fixture
def gateway():
    """A paper gateway with a frozen clock, served from a background thread."""
    with PaperGateway(port=0, seed=SEED, clock_start=CLOCK, fixed_clock=True) as gw:
        yield gw


@pytest.fixture
def live_clock_gateway():
    """A paper gateway whose clock runs, so streaming quotes move."""
    with PaperGateway(port=0, seed=SEED, clock_start=CLOCK, fixed_clock=False) as gw:
        yield gw


@pytest.fixture
def errors(ib):
    """Every (request id, code, text) error ``ib`` receives; requests do not raise on them."""
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
    ib.RaiseRequestErrors = False
    return seen


@pytest.fixture
def ib(gateway):
    """An ib_async client connected to ``gateway`` as client id 1."""
    client = connect_ib(gateway, client_id=1)
    yield client
    client.disconnect()
