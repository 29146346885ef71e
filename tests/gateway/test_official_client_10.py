"""IBKR's current official client (``ibapi-stable`` 10.x on PyPI) against the paper gateway.

It cannot share the venv with the 9.81 ``ibapi`` of the dev extra (both are the ``ibapi``
package), so ``make`` installs it into ``.ibapi10/`` and this test runs
``official_client_session.py`` in a separate interpreter with that directory first on its path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IBAPI10 = ROOT / ".ibapi10"
SESSION = Path(__file__).with_name("official_client_session.py")


@pytest.fixture(scope="module")
def session():
    if not (IBAPI10 / "ibapi").is_dir():
        pytest.skip("ibapi-stable 10.x is not installed in .ibapi10/: run `make test` to set it up")
    from support import CLOCK, SEED

    from ibkr_nb.gateway.server import PaperGateway

    with PaperGateway(port=0, seed=SEED, clock_start=CLOCK, fixed_clock=True) as gw:
        env = {**os.environ, "PYTHONPATH": str(IBAPI10)}
        done = subprocess.run(
            [sys.executable, str(SESSION), str(gw.port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_it_is_the_10_x_client_on_the_newest_protocol(session):
    assert session["ibapi"].startswith("10.")
    assert session["serverVersion"] == 178


def test_it_connects_and_reads_contract_details(session):
    assert session["currentTime"]
    assert session["contractDetails"] == [["1", "12087792", "EUR", "CASH", "EUR.USD"]]
    assert [code for _, _, code, *_ in session["error"]] == ["2104", "2106", "2158"]


def test_it_streams_quotes_and_tick_by_tick(session):
    tick_types = {row[1] for row in session["tickPrice"]}
    assert {"1", "2"} <= tick_types  # bid and ask
    bid, ask = (float(x) for x in session["tickByTickBidAsk"][0][2:4])
    assert 0 < bid < ask


def test_it_trades(session):
    statuses = [row[1] for row in session["orderStatus"]]
    assert statuses[-1] == "Filled"
    [(_, symbol, shares, price)] = session["execDetails"]
    assert (symbol, float(shares)) == ("AAPL", 10.0) and float(price) > 0
