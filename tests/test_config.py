"""Settings from the environment and .env: defaults, overrides and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ibkr_nb.config import SettingsError, load_settings

VARIABLES = (
    "IBKR_HOST",
    "IBKR_PORT",
    "IBKR_CLIENT_ID",
    "IBKR_ACCOUNT_ID",
    "MAX_POSITION_SIZE",
    "MAX_PORTFOLIO_RISK",
    "MAX_POSITION_PCT",
    "IBKR_ALLOW_LIVE",
    "TRADING_STATE",
    "IBKR_LIVE_ACCOUNTS",
    "MAX_ORDER_NOTIONAL",
    "IBKR_NB_DB",
    "IBKR_KILL_SWITCH",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_paper_and_safe():
    s = load_settings()
    assert (s.ibkr_host, s.ibkr_port, s.ibkr_client_id) == ("127.0.0.1", 7497, 1)
    assert s.ibkr_account_id == ""
    assert (s.max_position_size, s.max_portfolio_risk, s.max_position_pct) == (10000, 0.02, 0.10)
    assert s.trading_state == "ACTIVE" and s.live_accounts == frozenset()
    assert s.ibkr_kill_switch == Path("data/KILL")
    assert s.ibkr_nb_db == Path("data/ibkr_nb.duckdb")
    assert s.is_paper_port


def test_environment_and_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("IBKR_PORT=4002\nIBKR_ACCOUNT_ID=DU7654321\n")
    monkeypatch.setenv("IBKR_CLIENT_ID", "9")
    s = load_settings()
    assert (s.ibkr_port, s.ibkr_account_id, s.ibkr_client_id) == (4002, "DU7654321", 9)
    monkeypatch.setenv("IBKR_PORT", "7496")  # the environment wins over .env
    assert not load_settings().is_paper_port


def test_keyword_overrides_win(monkeypatch):
    monkeypatch.setenv("IBKR_PORT", "4002")
    assert load_settings(ibkr_port=7497).ibkr_port == 7497


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("IBKR_PORT", "seventy", "integer"),
        ("IBKR_PORT", "70000", "less than or equal to 65535"),
        ("IBKR_CLIENT_ID", "-1", "greater than or equal to 0"),
        ("MAX_PORTFOLIO_RISK", "1.5", "less than or equal to 1"),
        ("MAX_POSITION_PCT", "0", "greater than 0"),
        ("MAX_POSITION_SIZE", "-5", "greater than 0"),
        ("TRADING_STATE", "PAUSED", "ACTIVE"),
        ("IBKR_LIVE_ACCOUNTS", "U1;DROP", "account id"),
        ("MAX_ORDER_NOTIONAL", "0", "greater than 0"),
        ("MAX_ORDERS_PER_BATCH", "0", "greater than or equal to 1"),
        ("IBKR_HOST", "  ", "not empty"),
        ("IBKR_ACCOUNT_ID", "DU 12;", "account id"),
    ],
)
def test_bad_value_names_variable_value_and_what_is_allowed(monkeypatch, variable, value, allowed):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert repr(value) in message
    assert allowed in message


def test_trading_state_and_live_accounts_are_normalised(monkeypatch):
    monkeypatch.setenv("TRADING_STATE", " reducing ")
    monkeypatch.setenv("IBKR_LIVE_ACCOUNTS", "u123, U456 ,")
    s = load_settings()
    assert s.trading_state == "REDUCING"
    assert s.live_accounts == frozenset({"U123", "U456"})
