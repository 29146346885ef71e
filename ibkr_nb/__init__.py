"""ibkr-nb: research to paper execution on Interactive Brokers, inside Jupyter notebooks."""

from importlib import import_module

__version__ = "0.1.0"

# Public name -> module that defines it. Imported on first use (PEP 562), so that a command
# such as `ibkr-nb tax` does not load the gateway, ib_async, plotly or exchange_calendars.
_EXPORTS = {
    "Settings": "config",
    "SettingsError": "config",
    "TradingState": "config",
    "load_settings": "config",
    "decide": "decisions",
    "load_decisions": "decisions",
    "momentum_engine": "decisions",
    "AccountNotManaged": "errors",
    "ClientIdInUse": "errors",
    "ConnectTimeout": "errors",
    "GatewayNotRunning": "errors",
    "LiveTradingLocked": "errors",
    "OrderRefused": "errors",
    "OrderRejected": "errors",
    "RequestFailed": "errors",
    "RequestTimedOut": "errors",
    "SessionError": "errors",
    "Ledger": "ledger",
    "LedgerBusy": "ledger",
    "RiskLimits": "risk",
    "check_orders": "risk",
    "plan_orders": "risk",
    "Session": "session",
    "connect": "session",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
