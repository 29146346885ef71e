"""ibkr-nb: research to paper execution on Interactive Brokers, inside Jupyter notebooks."""

from .config import Settings, SettingsError, TradingState, load_settings
from .decisions import decide, load_decisions, momentum_engine
from .errors import (
    AccountNotManaged,
    ClientIdInUse,
    ConnectTimeout,
    GatewayNotRunning,
    LiveTradingLocked,
    OrderRefused,
    OrderRejected,
    RequestFailed,
    RequestTimedOut,
    SessionError,
)
from .ledger import Ledger, LedgerBusy
from .risk import RiskLimits, check_orders, plan_orders
from .session import Session, connect

__version__ = "0.1.0"

__all__ = [
    "AccountNotManaged",
    "ClientIdInUse",
    "ConnectTimeout",
    "GatewayNotRunning",
    "Ledger",
    "LedgerBusy",
    "LiveTradingLocked",
    "OrderRefused",
    "OrderRejected",
    "RequestFailed",
    "RequestTimedOut",
    "RiskLimits",
    "Session",
    "SessionError",
    "Settings",
    "SettingsError",
    "TradingState",
    "check_orders",
    "connect",
    "decide",
    "load_decisions",
    "load_settings",
    "momentum_engine",
    "plan_orders",
]
