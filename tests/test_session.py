"""Notebook sessions against the paper gateway: DataFrames, errors a person can act on, reconnects."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pandas as pd
import pytest
from support import CLOCK, connect_ib

import ibkr_nb
from ibkr_nb import frames
from ibkr_nb.config import load_settings
from ibkr_nb.frames import KEY_ACCOUNT_TAGS
from ibkr_nb.session import (
    AccountNotManaged,
    ClientIdInUse,
    ConnectTimeout,
    GatewayNotRunning,
    LiveTradingLocked,
    OrderRefused,
    SessionError,
)


@pytest.fixture
def session(gateway):
    with ibkr_nb.connect(port=gateway.port, client_id=3, timeout=5) as s:
        yield s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connect_uses_the_only_account_and_says_paper(gateway, session):
    assert session.account == gateway.account_id
    assert session.is_paper
    assert "paper" in repr(session) and str(gateway.port) in repr(session)


def test_account_summary_frame(session):
    summary = session.account_summary()
    assert list(summary.columns) == frames.ACCOUNT_SUMMARY_COLUMNS
    tags = dict(zip(summary.tag, summary.value, strict=True))
    for tag in KEY_ACCOUNT_TAGS:
        assert tag in tags
    assert summary.value.dtype == float


def test_positions_and_portfolio_frames(session):
    positions = session.positions()
    assert list(positions.columns) == frames.POSITION_COLUMNS
    assert len(positions) >= 3 and (positions.quantity != 0).all()
    portfolio = session.portfolio()
    assert list(portfolio.columns) == frames.PORTFOLIO_COLUMNS
    assert set(portfolio.symbol) == set(positions.symbol)
    check = portfolio.market_value - portfolio.cost_basis - portfolio.unrealized_pnl
    assert check.abs().max() < 0.05


def test_quote_and_history_frames(session):
    quotes = session.quote(["AAPL", "MSFT"])
    assert list(quotes.columns) == frames.QUOTE_COLUMNS
    assert list(quotes.symbol) == ["AAPL", "MSFT"]
    assert (quotes.bid < quotes.ask).all()
    daily = session.history("AAPL", "1 M", "1 day")
    assert list(daily.columns) == frames.BAR_COLUMNS and len(daily) >= 18
    intraday = session.history("AAPL", "1 D", "15 mins")
    assert isinstance(intraday.date.dtype, pd.DatetimeTZDtype)


def test_unknown_symbol_says_so(session):
    with pytest.raises(SessionError, match="NOPE"):
        session.quote("NOPE")


def test_preview_then_place_then_executions_and_open_orders(session):
    preview = session.preview_order("AAPL", 20)
    assert preview.commission.iloc[0] == pytest.approx(1.00)
    assert session.executions().empty
    order = session.place_order("AAPL", 20, order_ref="nb-1")
    assert order.status.iloc[0] == "Filled" and order.quantity.iloc[0] == 20
    above = round(float(session.quote("MSFT").ask.iloc[0]) * 1.015, 2)  # rests: above the ask
    resting = session.place_order("MSFT", -5, above, order_ref="nb-2", wait=0.5)
    assert resting.status.iloc[0] == "Submitted"
    open_orders = session.open_orders()
    assert list(open_orders.columns) == frames.ORDER_COLUMNS
    assert list(open_orders.order_ref) == ["nb-2"] and open_orders.quantity.iloc[0] == -5
    executions = session.executions()
    assert list(executions.columns) == frames.EXECUTION_COLUMNS
    assert list(executions.order_ref) == ["nb-1"]
    assert executions.quantity.iloc[0] == 20 and executions.commission.iloc[0] == pytest.approx(1.0)
    assert str(executions.time.dt.tz) == "UTC"
    cancelled = session.cancel_order(int(open_orders.order_id.iloc[0]))
    assert cancelled.status.iloc[0] == "Cancelled"


def test_bad_orders_are_refused_before_sending(session):
    with pytest.raises(OrderRefused, match="non-zero"):
        session.place_order("AAPL", 0)
    with pytest.raises(OrderRefused, match="limit_price"):
        session.place_order("AAPL", 1, order_type="LMT")
    with pytest.raises(OrderRefused, match="not one of"):
        session.place_order("AAPL", 1, order_type="PEG MID")


def test_gateway_rejection_is_reported(gateway, session):
    gateway.reject_next_order("Simulated margin call")
    with pytest.raises(OrderRefused, match="margin call"):
        session.place_order("AAPL", 1)


def test_readonly_session_refuses_orders(gateway):
    with (
        ibkr_nb.connect(port=gateway.port, client_id=4, readonly=True) as s,
        pytest.raises(OrderRefused, match="read-only"),
    ):
        s.place_order("AAPL", 1)


def test_live_account_needs_three_keys_each_alone_refuses(gateway, session, monkeypatch):
    session.account = "U1234567"  # as if the login were a live account
    monkeypatch.delenv("IBKR_ALLOW_LIVE", raising=False)
    with pytest.raises(LiveTradingLocked, match="IBKR_ALLOW_LIVE") as info:
        session.place_order("AAPL", 1, allow_live=True)
    assert info.value.rule == "LIVE_ENV_KEY"
    monkeypatch.setenv("IBKR_ALLOW_LIVE", "1")
    with pytest.raises(LiveTradingLocked) as info:
        session.place_order("AAPL", 1)
    assert info.value.rule == "LIVE_CALL_KEY"
    with pytest.raises(LiveTradingLocked) as info:
        session.place_order("AAPL", 1, allow_live=True)
    assert info.value.rule == "LIVE_ACCOUNT_KEY"
    monkeypatch.delenv("IBKR_ALLOW_LIVE")
    session.settings = load_settings(ibkr_live_accounts="U1234567")
    with pytest.raises(LiveTradingLocked) as info:  # a Settings object is not the environment
        session.place_order("AAPL", 1, allow_live=True)
    assert info.value.rule == "LIVE_ENV_KEY"
    with pytest.raises(LiveTradingLocked) as info:  # cancels are locked too
        session.cancel_order(1)
    assert info.value.rule == "LIVE_ENV_KEY"


def test_gateway_not_running_names_host_port_and_what_to_check():
    port = free_port()
    with pytest.raises(GatewayNotRunning) as info:
        ibkr_nb.connect(port=port, timeout=2)
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "Enable ActiveX and Socket Clients" in message and "trusted IPs" in message


def test_client_id_in_use_by_another_program_says_what_to_do(gateway):
    other = connect_ib(gateway, client_id=3)  # another program holds client id 3
    try:
        with pytest.raises(ClientIdInUse, match="client_id=4") as info:
            ibkr_nb.connect(port=gateway.port, client_id=3, timeout=3)
        assert "another program" in str(info.value)
        assert "open orders" in str(info.value)
    finally:
        other.disconnect()


def test_timeout_when_nothing_answers_the_handshake():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    try:
        with pytest.raises(ConnectTimeout, match="handshake"):
            ibkr_nb.connect(port=server.getsockname()[1], timeout=1)
    finally:
        server.close()


def test_account_not_managed_lists_the_managed_ones(gateway):
    with pytest.raises(AccountNotManaged) as info:
        ibkr_nb.connect(port=gateway.port, client_id=6, account="DU0000000")
    assert gateway.account_id in str(info.value)


def test_connect_disconnect_connect_many_times(gateway):
    for _ in range(8):
        s = ibkr_nb.connect(port=gateway.port, client_id=7, timeout=5)
        assert s.connected
        assert s.ib.reqCurrentTime() == CLOCK
        s.disconnect()
        assert not s.connected


def test_reconnects_after_drop_and_says_so(gateway, session):
    session.place_order("AAPL", 5, order_ref="before-drop")
    gateway.drop_connections()
    time.sleep(0.2)  # the notebook sits idle while the socket closes
    executions = session.executions()
    assert "before-drop" in list(executions.order_ref)
    assert session.notices and "restored" in session.notices[-1]


def test_connectivity_lost_1100_reconnects_on_the_next_call(gateway, session):
    gateway.notify_connectivity(lost=True)
    session.ib.sleep(0.2)
    assert not session.positions().empty
    assert session.notices and "restored" in session.notices[-1]


def test_informational_codes_are_logged_not_raised(gateway, caplog):
    caplog.set_level("INFO", logger="ibkr_nb.session")
    with ibkr_nb.connect(port=gateway.port, client_id=8) as s:
        s.ib.sleep(0.2)
    messages = [r for r in caplog.records if r.name == "ibkr_nb.session"]
    assert any("2104" in r.getMessage() and r.levelname == "INFO" for r in messages)
    assert not any(r.levelname in ("WARNING", "ERROR") for r in messages)


def test_works_inside_a_running_event_loop_as_in_a_jupyter_cell(gateway):
    """A notebook cell runs inside the kernel's event loop; blocking calls must still work."""

    async def cell():
        with ibkr_nb.connect(port=gateway.port, client_id=12) as s:
            return s.positions(), s.place_order("KO", 1)

    loop = asyncio.new_event_loop()
    try:
        positions, order = loop.run_until_complete(cell())
    finally:
        loop.close()
        asyncio.set_event_loop(asyncio.new_event_loop())
    assert len(positions) >= 3
    assert order.status.iloc[0] == "Filled"


def test_closed_session_says_to_reconnect(gateway):
    s = ibkr_nb.connect(port=gateway.port, client_id=9)
    s.disconnect()
    with pytest.raises(SessionError, match="closed"):
        s.positions()
