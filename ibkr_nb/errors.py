"""Errors a person can act on: each message says what happened and what to do."""

from __future__ import annotations


class SessionError(RuntimeError):
    """A problem a person can act on; the message says what happened and what to do."""


class GatewayNotRunning(SessionError):
    """Nothing accepted the API connection on that host and port."""


class ClientIdInUse(SessionError):
    """Another connection already uses this client id (TWS error 326)."""


class ConnectTimeout(SessionError):
    """The socket opened but the API handshake did not finish in time."""


class AccountNotManaged(SessionError):
    """IBKR_ACCOUNT_ID is not among the accounts this login manages."""


class RequestTimedOut(SessionError):
    """A request got no answer within IBKR_REQUEST_TIMEOUT seconds."""


class RequestFailed(SessionError):
    """IBKR answered a request with an error; ``code`` is IBKR's error code."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


class OrderRefused(SessionError):
    """An order that was not sent, or that TWS refused."""


class OrderRejected(OrderRefused):
    """An order or cancel denied by a named rule before anything was sent (or by the broker).

    ``rule`` names the gate (``KILL_SWITCH``, ``READ_ONLY``, ``LIVE_ENV_KEY``, ``MAX_POSITION_PCT``,
    ...), the message says why and what to do.
    """

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


class LiveTradingLocked(OrderRejected):
    """An order or cancel for a live account without all three live-trading keys."""
