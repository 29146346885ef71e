"""Session-wide gates that every order and cancel passes before anything is transmitted.

Pure: ``session_denial`` takes a ``TradingContext`` (built by the session from the process
environment, the call and the connection) and returns the first rule that denies, or ``None``.
Order-level limits live in ``risk``.

Live trading needs three keys at once: ``IBKR_ALLOW_LIVE=1`` in the real process environment
(a ``.env`` file or a Settings object does not count), ``allow_live=True`` in the call, and the
account listed in ``IBKR_LIVE_ACCOUNTS``. Paper accounts (DU / DF) need none of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .config import LIVE_PORTS, PAPER_PORTS

PAPER_PREFIXES = ("DU", "DF")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def is_paper_account(account: str) -> bool:
    """IBKR paper accounts start with DU (individual) or DF (advisor)."""
    return account.upper().startswith(PAPER_PREFIXES)


def env_allows_live() -> bool:
    """The first live key: IBKR_ALLOW_LIVE in the process environment itself."""
    return os.environ.get("IBKR_ALLOW_LIVE", "").strip().lower() in TRUE_WORDS


@dataclass(frozen=True)
class TradingContext:
    """What the gates look at; ``kill_switch`` is the file's path if it exists, else None."""

    account: str
    port: int
    readonly: bool = False
    allow_live: bool = False
    env_allow_live: bool = False
    live_accounts: frozenset[str] = frozenset()
    kill_switch: str | None = None


def session_denial(ctx: TradingContext, what: str = "order") -> tuple[str, str] | None:
    """``(rule, message)`` for the first gate that denies ``what`` ("order" or "cancel")."""
    if ctx.kill_switch:
        return "KILL_SWITCH", (
            f"KILL_SWITCH: the kill-switch file {ctx.kill_switch} exists, so no {what} is sent. "
            "Delete the file to trade again (cancel in TWS meanwhile if needed)."
        )
    if ctx.readonly:
        return "READ_ONLY", (
            f"READ_ONLY: this session is read-only; no {what} is sent. "
            "Connect with readonly=False to trade."
        )
    paper = is_paper_account(ctx.account)
    if (paper and ctx.port in LIVE_PORTS) or (not paper and ctx.port in PAPER_PORTS):
        return "PORT_MISMATCH", (
            f"PORT_MISMATCH: account {ctx.account} is {'paper' if paper else 'LIVE'} but port "
            f"{ctx.port} is TWS's {'live' if paper else 'paper'} port, so nothing is sent. "
            "Check IBKR_PORT and which TWS you are logged into."
        )
    if paper:
        return None
    if not ctx.env_allow_live:
        return "LIVE_ENV_KEY", (
            f"LIVE_ENV_KEY: account {ctx.account} is LIVE and IBKR_ALLOW_LIVE=1 is not set in "
            "the process environment (a .env file does not count)."
        )
    if not ctx.allow_live:
        return "LIVE_CALL_KEY", (
            f"LIVE_CALL_KEY: account {ctx.account} is LIVE; pass allow_live=True in this call."
        )
    if ctx.account.upper() not in ctx.live_accounts:
        return "LIVE_ACCOUNT_KEY", (
            f"LIVE_ACCOUNT_KEY: account {ctx.account} is LIVE and not listed in IBKR_LIVE_ACCOUNTS."
        )
    return None
