"""Session-wide gates: pure (``session_denial``) and through a real Session on the paper gateway."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pandas as pd
import pytest
from support import CLOCK, SEED

import ibkr_nb
from ibkr_nb import LiveTradingLocked, OrderRejected
from ibkr_nb.gates import TradingContext, env_allows_live, session_denial
from ibkr_nb.gateway.server import PaperGateway

PAPER = TradingContext(account="DU1234567", port=7497)
LIVE_UNLOCKED = TradingContext(
    account="U7654321",
    port=7496,
    allow_live=True,
    env_allow_live=True,
    live_accounts=frozenset({"U7654321"}),
)

# context, what -> rule (None: allowed)
CASES = [
    ("paper account, paper port", PAPER, "order", None),
    ("paper account, gateway paper port", replace(PAPER, port=4002), "order", None),
    ("paper account, any other port", replace(PAPER, port=5555), "order", None),
    ("advisor paper account DF", replace(PAPER, account="DF111"), "order", None),
    ("kill switch", replace(PAPER, kill_switch="data/KILL"), "order", "KILL_SWITCH"),
    (
        "kill switch blocks cancels",
        replace(PAPER, kill_switch="data/KILL"),
        "cancel",
        "KILL_SWITCH",
    ),
    (
        "kill switch beats live keys",
        replace(LIVE_UNLOCKED, kill_switch="K"),
        "order",
        "KILL_SWITCH",
    ),
    ("read-only", replace(PAPER, readonly=True), "order", "READ_ONLY"),
    ("read-only refuses cancels", replace(PAPER, readonly=True), "cancel", "READ_ONLY"),
    ("paper account on TWS live port", replace(PAPER, port=7496), "order", "PORT_MISMATCH"),
    ("paper account on Gateway live port", replace(PAPER, port=4001), "cancel", "PORT_MISMATCH"),
    ("live account on TWS paper port", replace(LIVE_UNLOCKED, port=7497), "order", "PORT_MISMATCH"),
    (
        "live account on Gateway paper port",
        replace(LIVE_UNLOCKED, port=4002),
        "order",
        "PORT_MISMATCH",
    ),
    ("live, all three keys", LIVE_UNLOCKED, "order", None),
    ("live, all three keys, cancel", LIVE_UNLOCKED, "cancel", None),
    ("live, no env key", replace(LIVE_UNLOCKED, env_allow_live=False), "order", "LIVE_ENV_KEY"),
    ("live, no call key", replace(LIVE_UNLOCKED, allow_live=False), "order", "LIVE_CALL_KEY"),
    (
        "live, not listed",
        replace(LIVE_UNLOCKED, live_accounts=frozenset()),
        "order",
        "LIVE_ACCOUNT_KEY",
    ),
    (
        "live, other listed",
        replace(LIVE_UNLOCKED, live_accounts=frozenset({"U1"})),
        "order",
        "LIVE_ACCOUNT_KEY",
    ),
    (
        "live, no key, cancel",
        replace(LIVE_UNLOCKED, env_allow_live=False),
        "cancel",
        "LIVE_ENV_KEY",
    ),
]


@pytest.mark.parametrize(("case", "ctx", "what", "rule"), CASES, ids=[c[0] for c in CASES])
def test_session_denial(case, ctx, what, rule):
    denial = session_denial(ctx, what)
    if rule is None:
        assert denial is None
    else:
        assert denial is not None and denial[0] == rule
        assert denial[1].startswith(rule + ":")
        if rule in ("KILL_SWITCH", "READ_ONLY"):
            assert f"no {what} is sent" in denial[1]


@pytest.mark.parametrize("key", ["env_allow_live", "allow_live", "live_accounts"])
def test_each_live_key_alone_refuses(key):
    """One key present, the other two missing: refused."""
    none = replace(LIVE_UNLOCKED, env_allow_live=False, allow_live=False, live_accounts=frozenset())
    alone = replace(none, **{key: LIVE_UNLOCKED.__dict__[key]})
    denial = session_denial(alone)
    assert denial is not None and denial[0].startswith("LIVE_")


def test_env_key_is_read_from_the_process_environment(monkeypatch, tmp_path):

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("IBKR_ALLOW_LIVE=1\n")
    assert not env_allows_live()  # a .env file does not count
    for word, allowed in [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)]:
        monkeypatch.setenv("IBKR_ALLOW_LIVE", word)
        assert env_allows_live() is allowed


# -- through a real session ----------------------------------------------------------------


@pytest.fixture
def session(gateway):
    with ibkr_nb.connect(port=gateway.port, client_id=21, timeout=5) as s:
        yield s


def gateway_orders(gateway) -> int:
    """Orders the gateway holds (what actually reached it)."""
    return len(gateway.flex_statement().split("<Trade ")) - 1


def rest_order(session, ref: str) -> int:
    """A sell limit 1.5% above the ask: it rests (and passes MAX_SLIPPAGE_PCT); its order id."""
    above = round(float(session.quote("MSFT").ask.iloc[0]) * 1.015, 2)
    return int(session.place_order("MSFT", -1, above, order_ref=ref, wait=0.5).order_id.iloc[0])


def one_decision() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "decision_id": "g-1",
                "ticker": "AAPL",
                "decision": "BUY",
                "confidence": 50,
                "current_price": 198.13,
            }
        ]
    )


def test_kill_switch_blocks_orders_cancels_and_execute(gateway, session, private_ledger):
    resting = rest_order(session, "g-rest")
    plan = session.plan(one_decision())
    assert plan.status.iloc[0] == "planned"
    fills_before = gateway_orders(gateway)
    kill = private_ledger.parent / "KILL"
    kill.write_text("stop")
    with pytest.raises(OrderRejected) as info:
        session.place_order("AAPL", 1)
    assert info.value.rule == "KILL_SWITCH" and str(kill) in str(info.value)
    with pytest.raises(OrderRejected) as info:
        session.cancel_order(resting)
    assert info.value.rule == "KILL_SWITCH"
    result = session.execute(plan, dry_run=False)
    assert result.status.iloc[0] == "rejected" and result.reason.iloc[0].startswith("KILL_SWITCH")
    assert gateway_orders(gateway) == fills_before
    assert list(session.open_orders().order_ref) == ["g-rest"]  # still working, not cancelled
    kill.unlink()
    assert session.cancel_order(resting).status.iloc[0] == "Cancelled"


def test_read_only_session_refuses_orders_cancels_and_execute(gateway):
    with ibkr_nb.connect(port=gateway.port, client_id=22) as trader:
        order_id = rest_order(trader, "ro-rest")
    with ibkr_nb.connect(port=gateway.port, client_id=23, readonly=True) as s:
        with pytest.raises(OrderRejected) as info:
            s.place_order("AAPL", 1)
        assert info.value.rule == "READ_ONLY"
        with pytest.raises(OrderRejected) as info:
            s.cancel_order(order_id)
        assert info.value.rule == "READ_ONLY"
        plan = s.plan(one_decision())
        result = s.execute(plan, dry_run=False)
        assert result.status.iloc[0] == "rejected" and "READ_ONLY" in result.reason.iloc[0]
        assert list(s.ledger.intents().order_ref) == ["ro-rest"]


@contextlib.contextmanager
def gateway_on_a_live_port():
    """A paper gateway (DU account) listening on TWS's or IB Gateway's live port."""
    for port in (4001, 7496):
        try:
            gw = PaperGateway(port=port, seed=SEED, clock_start=CLOCK, fixed_clock=True)
            gw.start_in_thread()
        except OSError:
            continue
        try:
            yield gw
        finally:
            gw.stop_thread()
        return
    pytest.skip("ports 4001 and 7496 are both in use on this machine")


def test_port_mismatch_blocks_the_whole_batch():
    with gateway_on_a_live_port() as gw, ibkr_nb.connect(port=gw.port, client_id=24) as s:
        assert s.is_paper and s.port in (4001, 7496)
        with pytest.raises(OrderRejected) as info:
            s.place_order("AAPL", 1)
        assert info.value.rule == "PORT_MISMATCH"
        with pytest.raises(OrderRejected) as info:
            s.cancel_order(1)
        assert info.value.rule == "PORT_MISMATCH"
        two = pd.concat(
            [
                one_decision(),
                one_decision().assign(decision_id="g-2", ticker="KO", current_price=61.63),
            ]
        )
        result = s.execute(s.plan(two), dry_run=False)
        assert (result.status == "rejected").all()
        assert result.reason.str.startswith("PORT_MISMATCH").all()
        assert s.ledger.intents().empty


@pytest.mark.parametrize(
    ("env", "allow_live", "listed", "rule"),
    [
        (True, False, False, "LIVE_CALL_KEY"),  # the environment key alone
        (False, True, False, "LIVE_ENV_KEY"),  # the call key alone
        (False, False, True, "LIVE_ENV_KEY"),  # the account list alone
        (True, True, False, "LIVE_ACCOUNT_KEY"),
        (True, False, True, "LIVE_CALL_KEY"),
        (False, True, True, "LIVE_ENV_KEY"),
    ],
)
def test_live_keys_through_a_session(session, monkeypatch, env, allow_live, listed, rule):
    plan = session.plan(one_decision())
    session.account = "U7654321"  # as if the login were a live account (the gateway runs DU only)
    session.port = 7496
    if env:
        monkeypatch.setenv("IBKR_ALLOW_LIVE", "1")
    if listed:
        session.settings = session.settings.model_copy(update={"ibkr_live_accounts": "U7654321"})
    for call in (
        lambda: session.place_order("AAPL", 1, allow_live=allow_live),
        lambda: session.cancel_order(1, allow_live=allow_live),
    ):
        with pytest.raises(LiveTradingLocked) as info:
            call()
        assert info.value.rule == rule
    result = session.execute(plan, dry_run=False, allow_live=allow_live)
    assert result.status.iloc[0] == "rejected" and result.reason.iloc[0].startswith(rule)
