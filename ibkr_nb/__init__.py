"""ibkr-nb: research to paper execution on Interactive Brokers, inside Jupyter notebooks."""

from .config import Settings, SettingsError, load_settings
from .session import (
    AccountNotManaged,
    ClientIdInUse,
    ConnectTimeout,
    GatewayNotRunning,
    LiveTradingLocked,
    OrderRefused,
    Session,
    SessionError,
    connect,
)

__version__ = "0.1.0"

__all__ = [
    "AccountNotManaged",
    "ClientIdInUse",
    "ConnectTimeout",
    "GatewayNotRunning",
    "LiveTradingLocked",
    "OrderRefused",
    "Session",
    "SessionError",
    "Settings",
    "SettingsError",
    "connect",
    "load_settings",
]
