"""The state file: one writer, atomic durable saves, validated loads, visible write failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import CLOCK, SEED

from ibkr_nb.gateway.broker import Broker, OrderTicket, StateFileError, StateWriteError
from ibkr_nb.gateway.market import Clock, Market
from ibkr_nb.gateway.persistence import StateStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def market() -> Market:
    return Market(SEED, Clock(CLOCK, fixed=True))


def order(oid: int, qty: float = 10, symbol: str = "KO") -> OrderTicket:
    return OrderTicket(oid, 1, "BUY", qty, "MKT", symbol=symbol)


def start_gateway(state: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ibkr_nb.cli", "gateway", "--port", "0", "--state", str(state),
         "--clock", CLOCK.isoformat(), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_second_gateway_process_on_the_same_state_file_refuses_naming_the_holder(tmp_path):
    state = tmp_path / "account.json"
    first = start_gateway(state)
    try:
        banner = first.stdout.readline()
        assert "new seeded account, kept in" in banner and str(state) in banner
        second = start_gateway(state)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 2
        assert f"pid {first.pid}" in err and "in use" in err and "127.0.0.1:" in err
        assert len(err.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    again = start_gateway(state)  # the lock goes with the process: a restart restores
    try:
        assert "restored from" in again.stdout.readline()
    finally:
        again.send_signal(signal.SIGINT)
        again.communicate(timeout=30)


def test_fresh_keeps_the_old_account_aside(tmp_path):
    state = tmp_path / "account.json"
    state.write_text("{damaged")
    proc = start_gateway(state, "--fresh")
    try:
        assert "previous account is kept in" in proc.stdout.readline()
        assert "new seeded account" in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    (old,) = tmp_path.glob("account.json.*.old")
    assert old.read_text() == "{damaged"


SAVER = """
import sys
from ibkr_nb.gateway.broker import Broker, OrderTicket
from ibkr_nb.gateway.market import Clock, Market
from support import CLOCK, SEED
broker = Broker(Market(SEED, Clock(CLOCK, fixed=True)), SEED, state_file=sys.argv[1])
print("ready", flush=True)
n = broker.next_order_id
while True:
    broker.place_order(OrderTicket(n, 1, "BUY", 1, "LMT", symbol="KO", lmt_price=1.0,
                                   order_ref="x" * 250))
    n += 1
"""


def test_sigkill_during_saves_leaves_a_state_that_loads_and_no_temp_files(tmp_path, market):
    state = tmp_path / "account.json"
    for delay in (0.3, 0.45, 0.6):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(state)],
            cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": "tests"},
        )  # fmt: skip
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.kill()
        proc.wait()
        broker = Broker(market, SEED, state_file=state)  # loads: the old or the new file
        assert broker.restored and len(broker.open_orders()) >= 1
        assert not list(tmp_path.glob("*.tmp"))  # what the kill left is cleaned on open
        broker.close()


def test_orphan_temp_files_are_removed_when_the_file_is_opened(tmp_path, market):
    state = tmp_path / "account.json"
    Broker(market, SEED, state_file=state).close()
    orphan = tmp_path / "account.json.abc123.tmp"
    orphan.write_text("")
    Broker(market, SEED, state_file=state).close()
    assert not orphan.exists()


def test_a_failed_write_fails_the_order_and_books_nothing(tmp_path, market, monkeypatch):
    state = tmp_path / "account.json"
    broker = Broker(market, SEED, state_file=state)
    before = (broker.cash, broker.positions(), broker.next_order_id, state.read_bytes())

    def disk_full(self, saved):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(StateStore, "save", disk_full)
    with pytest.raises(StateWriteError, match="No space left on device") as info:
        broker.place_order(order(1))
    assert info.value.code == 201 and "nothing was booked" in info.value.message
    assert broker.open_orders() == [] and broker.executions() == []
    assert (broker.cash, broker.positions(), broker.next_order_id) == before[:3]
    monkeypatch.undo()
    broker.place_order(order(1))  # the same id is free again
    broker.process()
    assert len(broker.executions()) == 1 and state.read_bytes() != before[3]
    broker.close()


def _saved(tmp_path, market) -> tuple[Path, dict]:
    state = tmp_path / "account.json"
    broker = Broker(market, SEED, state_file=state)
    broker.place_order(order(1))
    broker.place_order(OrderTicket(2, 1, "BUY", 5, "LMT", symbol="KO", lmt_price=1.0))
    broker.process()
    broker.close()
    return state, json.loads(state.read_text())


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda d: d["trades"][0].update(price=float("nan")), "trades[0].price"),
        (lambda d: d["trades"][1].update(con_id=999999999), "trades[1].con_id"),
        (lambda d: d["executions"][0][0].update(shares="ten"), "executions[0][0].shares"),
        (lambda d: d["working"][0]["ticket"].update(total_quantity=-5), "total_quantity"),
        (lambda d: d["counters"].update(perm_next=-1), "counters.perm_next"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.pop("trades"), "trades"),
        (lambda d: d["completed"][0].update(submitted_at="yesterday"), "completed[0].submitted_at"),
    ],
)
def test_a_damaged_state_file_is_refused_naming_the_field(tmp_path, market, edit, field):
    state, doc = _saved(tmp_path, market)
    edit(doc)
    state.write_text(json.dumps(doc))
    with pytest.raises(StateFileError) as info:
        Broker(market, SEED, state_file=state)
    assert str(state) in str(info.value) and field in str(info.value)
    assert "--fresh" in str(info.value)
    Broker(market, SEED, state_file=tmp_path / "other.json").close()  # the lock was released
    StateStore(state).acquire()  # and this file's lock too


def test_fills_the_state_file_cannot_record_are_undone_and_retried(tmp_path, market, monkeypatch):
    state = tmp_path / "account.json"
    broker = Broker(market, SEED, state_file=state)
    price = market.quote("KO").ask
    broker.place_order(OrderTicket(1, 1, "BUY", 10, "LMT", symbol="KO", lmt_price=price - 1))
    saved = state.read_bytes()

    def failing(self, saved):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(StateStore, "save", failing)
    market.set_price("KO", price - 2)  # now marketable
    with pytest.raises(StateWriteError):
        broker.process()
    assert broker.executions() == [] and broker.order(1, 1).status == "Submitted"
    assert state.read_bytes() == saved  # nothing half-written
    monkeypatch.undo()
    assert broker.process() and len(broker.executions()) == 1  # retried at the next tick
    broker.close()


def test_currency_balances_futures_and_exercises_survive_a_restart(tmp_path, market):
    """The state file replays FX legs, futures variation and exercises into the same cash
    per currency and the same positions."""
    from datetime import date

    from ibkr_nb.gateway.instruments import listed_futures, option

    state = tmp_path / "account.json"
    broker = Broker(market, SEED, state_file=state)
    es = listed_futures("ES", CLOCK.date())[0]
    call = option("AAPL", date(2026, 11, 27), 180.0, "C")
    orders = [("EUR.USD", "BUY", 25_000), ("USD.JPY", "SELL", 30_000), (es.symbol, "BUY", 2),
              (es.symbol, "SELL", 1), (call.symbol, "BUY", 2)]  # fmt: skip
    for oid, (symbol, action, qty) in enumerate(orders, start=1):
        broker.place_order(OrderTicket(oid, 1, action, qty, "MKT", symbol=symbol))
        broker.process()
    broker.exercise(1, call.con_id, 1, 1, override=False)
    balances, rows = dict(broker.account.balances), broker.positions()
    assert balances["EUR"] == 25_000 and balances["JPY"] > 0
    broker.close()
    restored = Broker(market, SEED, state_file=state)
    try:
        assert restored.account.balances == pytest.approx(balances)
        assert restored.positions() == rows
    finally:
        restored.close()
