"""The notebook session never hangs and never hides an error (issue: never hang, never lie).

A frozen gateway is a real one stopped with SIGSTOP in its own process; the rest runs against the
in-process paper gateway through real ib_async.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from ib_async import BarData, Stock
from support import CLOCK

import ibkr_nb
from ibkr_nb import display, frames
from ibkr_nb.config import load_settings
from ibkr_nb.errors import AccountNotManaged, RequestFailed, RequestTimedOut, SessionError


@pytest.fixture
def session(gateway):
    with ibkr_nb.connect(port=gateway.port, client_id=5, timeout=5) as s:
        yield s


@pytest.fixture
def gateway_process(tmp_path):
    """A paper gateway in its own process (so it can be frozen with SIGSTOP)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ibkr_nb.cli", "gateway", "--port", "0", "--memory"]
        + ["--clock", CLOCK.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    port = None
    deadline = time.monotonic() + 20
    while port is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        port = int(match.group(1)) if match else None
    assert port, "the gateway process did not say its port"
    yield process, port
    process.send_signal(signal.SIGCONT)
    process.terminate()
    process.wait(10)


def test_a_frozen_gateway_times_out_every_getter_naming_the_request(gateway_process):
    process, port = gateway_process
    s = ibkr_nb.connect(port=port, client_id=1, ibkr_request_timeout=1.0)
    s.contract("AAPL")
    os.kill(process.pid, signal.SIGSTOP)
    try:
        for getter, name in (
            (s.positions, "reqPositions"),
            (s.account_summary, "reqAccountSummary"),
            (lambda: s.quote("AAPL"), "reqTickers"),
            (lambda: s.history("AAPL", "5 D", "1 day"), "reqHistoricalData"),
        ):
            started = time.monotonic()
            with pytest.raises(RequestTimedOut, match=name):
                getter()
            assert time.monotonic() - started < 5
    finally:
        os.kill(process.pid, signal.SIGCONT)
    s.disconnect()


def test_an_order_unanswered_in_time_is_looked_up_by_its_ref_not_sent_twice(gateway_process):
    process, port = gateway_process
    s = ibkr_nb.connect(port=port, client_id=1, ibkr_request_timeout=1.0)
    s.contract("KO")
    s.account_summary()
    s.positions()
    s.quote("KO")
    os.kill(process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(SessionError):  # no what-if answer: nothing is sent
            s.place_order("KO", 3, order_ref="frozen-1", wait=0.5)
    finally:
        os.kill(process.pid, signal.SIGCONT)
    first = s.place_order("KO", 3, order_ref="frozen-1")
    again = s.place_order("KO", 3, order_ref="frozen-1")
    assert list(first.order_id) == list(again.order_id)
    executions = s.executions()
    assert (executions.order_ref == "frozen-1").sum() == 1
    s.disconnect()


def test_a_mistyped_history_request_fails_at_once_with_ibkrs_text(session):
    started = time.monotonic()
    with pytest.raises(RequestFailed, match="321") as info:
        session.history("AAPL", "30 X", "1 day")
    assert info.value.code == 321
    assert time.monotonic() - started < 3


def test_an_unknown_time_zone_in_end_is_refused_before_sending(session):
    with pytest.raises(SessionError, match="US/Eastrn"):
        session.history("AAPL", "1 D", "1 min", end="20261120 10:00:00 US/Eastrn")
    assert session.connected  # nothing reached the gateway; the connection is intact
    assert len(session.history("AAPL", "1 D", "1 hour", end="20261120 16:00:00 US/Eastern"))


def test_rerunning_connect_reuses_the_open_session(gateway):
    first = ibkr_nb.connect(port=gateway.port, client_id=6)
    again = ibkr_nb.connect(port=gateway.port, client_id=6)
    assert again is first and again.connected
    assert "reused" in again.notices[-1]
    first.disconnect()
    fresh = ibkr_nb.connect(port=gateway.port, client_id=6)  # closed: a new one
    assert fresh is not first and fresh.connected
    fresh.disconnect()


def test_wrong_account_is_refused_at_once_and_case_does_not_matter(gateway):
    started = time.monotonic()
    with pytest.raises(AccountNotManaged, match=gateway.account_id):
        ibkr_nb.connect(port=gateway.port, client_id=7, account="DU0000000")
    assert time.monotonic() - started < 3
    with ibkr_nb.connect(port=gateway.port, client_id=7, account=gateway.account_id.lower()) as s:
        assert s.account == gateway.account_id


def test_env_file_is_found_from_a_subfolder_and_named(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / ".env").write_text("IBKR_PORT=4002\nIBKR_NB_DB=data/x.duckdb\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("IBKR_PORT", raising=False)
    monkeypatch.delenv("IBKR_NB_DB", raising=False)
    settings = load_settings()
    assert settings.ibkr_port == 4002
    assert settings.env_file == tmp_path / ".env"
    assert settings.ibkr_nb_db == tmp_path / "data" / "x.duckdb"  # the project's data/
    assert str(tmp_path / ".env") in settings.describe()


def test_account_summary_and_portfolio_reflect_fills_at_once(session):
    def cash() -> float:
        summary = session.account_summary()
        return float(summary.loc[summary.tag == "TotalCashValue", "value"].iloc[0])

    before = cash()
    order = session.place_order("IBM", 10)
    paid = 10 * float(order.avg_fill_price.iloc[0]) + 1.0
    assert cash() == pytest.approx(before - paid, abs=0.01)
    assert "IBM" in set(session.portfolio().symbol)


def test_dates_are_tz_aware_and_missing_numbers_are_nan(session):
    daily = session.history("AAPL", "1 M", "1 day")
    assert isinstance(daily.date.dtype, pd.DatetimeTZDtype)
    assert str(daily.date.dt.tz) == "America/New_York"
    intraday = session.history("AAPL", "1 D", "15 mins")
    assert str(intraday.date.dt.tz) == "UTC"
    bars = frames.bars_frame(
        [
            BarData(
                date=CLOCK.date(),
                open=1,
                high=2,
                low=1,
                close=2,
                volume=-1,
                average=-1,
                barCount=-1,
            )
        ]
    )
    assert bars[["volume", "wap", "bar_count"]].isna().all(axis=None)


def test_money_shows_with_two_decimals_and_stays_float(session):
    summary = session.account_summary()
    assert summary.value.dtype == float
    html = display.styled(summary).to_html()
    nav = float(summary.loc[summary.tag == "NetLiquidation", "value"].iloc[0])
    assert f"{nav:,.2f}" in html
    assert "e+06" not in html


def test_a_contract_is_accepted_wherever_a_symbol_is(session):
    stock = Stock("MSFT", "SMART", "USD")
    assert session.quote(stock).symbol.tolist() == ["MSFT"]
    assert len(session.history(stock, "5 D", "1 day")) >= 4
    order = session.place_order(stock, 2, order_ref="by-contract")
    assert order.symbol.iloc[0] == "MSFT" and order.status.iloc[0] == "Filled"


def test_unknown_symbol_error_does_not_send_the_user_to_contracts_they_cannot_pass(session):
    with pytest.raises(SessionError, match="NOPE") as info:
        session.quote("NOPE")
    assert "Contract" in str(info.value)  # and Session accepts one (test above)


def test_settings_file_used_is_in_the_notices(session):
    assert any("settings from" in n for n in session.notices)


def test_relative_paths_resolve_to_the_project_not_the_notebook_folder(tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.setenv("IBKR_KILL_SWITCH", "data/KILL")
    assert load_settings().ibkr_kill_switch == Path(tmp_path / "data" / "KILL")
