"""Settings from the environment and `.env`: one validated object.

Every field maps to an upper-case environment variable (``IBKR_PORT`` -> ``ibkr_port``).
Money is in the account currency; fractions are of net liquidation value (NAV).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PAPER_PORTS = {7497: "TWS paper", 4002: "IB Gateway paper"}
LIVE_PORTS = {7496: "TWS live", 4001: "IB Gateway live"}


class SettingsError(ValueError):
    """A setting has a value that is not allowed; the message names the variable."""


class TradingState(StrEnum):
    """Whether new orders may open risk (after NautilusTrader's risk engine states)."""

    ACTIVE = "ACTIVE"  # every order the limits allow
    REDUCING = "REDUCING"  # only orders that shrink a position towards flat
    HALTED = "HALTED"  # no new orders


class Settings(BaseSettings):
    """Connection, risk limits and storage for ibkr-nb."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    ibkr_host: str = Field("127.0.0.1", description="TWS / IB Gateway host")
    ibkr_port: int = Field(
        7497, ge=1, le=65535, description="7497 TWS paper, 7496 TWS live, 4002/4001 Gateway"
    )
    ibkr_client_id: int = Field(1, ge=0, le=2**31 - 1, description="API client id")
    ibkr_account_id: str = Field("", description="account to use; empty = the only one")
    ibkr_request_timeout: float = Field(
        10.0, gt=0, le=600, description="seconds to wait for any one request to TWS"
    )
    max_position_size: float = Field(
        10_000.0, gt=0, description="largest position, in account currency"
    )
    max_portfolio_risk: float = Field(
        0.02, gt=0, le=1, description="largest loss to the stop per trade, fraction of NAV"
    )
    max_position_pct: float = Field(
        0.10, gt=0, le=1, description="largest position, fraction of NAV"
    )
    max_order_notional: float = Field(
        50_000.0, gt=0, description="largest single order, in account currency"
    )
    max_batch_notional: float = Field(
        250_000.0, gt=0, description="largest sum of order notionals in one execute()"
    )
    max_daily_notional: float = Field(
        1_000_000.0, gt=0, description="largest sum of order notionals sent per UTC day"
    )
    max_orders_per_batch: int = Field(50, ge=1, description="most orders in one execute()")
    max_order_quantity: float = Field(
        100_000, gt=0, description="most shares in one order; more is taken for a typo"
    )
    max_slippage_pct: float = Field(
        0.02, gt=0, le=1, description="largest distance of a limit price from the last quote"
    )
    allow_short: bool = Field(True, description="SELL when flat or short opens a short")
    trading_state: TradingState = Field(
        TradingState.ACTIVE, description="ACTIVE, REDUCING (only shrink positions) or HALTED"
    )
    ibkr_kill_switch: Path = Field(
        Path("data/KILL"), description="while this file exists, nothing is sent or cancelled"
    )
    ibkr_live_accounts: str = Field(
        "", description="comma-separated live accounts that may trade (third live key)"
    )
    ibkr_nb_db: Path = Field(Path("data/ibkr_nb.duckdb"), description="DuckDB file")

    @field_validator("trading_state", mode="before")
    @classmethod
    def _state_upper(cls, value):
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("ibkr_live_accounts")
    @classmethod
    def _accounts_list(cls, value: str) -> str:
        accounts = [a.strip().upper() for a in value.split(",") if a.strip()]
        for account in accounts:
            if not account.replace("-", "").isalnum():
                raise ValueError(f"{account!r} is not an IBKR account id such as U1234567")
        return ",".join(accounts)

    @property
    def live_accounts(self) -> frozenset[str]:
        """IBKR_LIVE_ACCOUNTS as a set of upper-case account ids."""
        return frozenset(filter(None, self.ibkr_live_accounts.split(",")))

    @field_validator("ibkr_host")
    @classmethod
    def _host_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a host name or IP address, not empty")
        return value.strip()

    @field_validator("ibkr_account_id")
    @classmethod
    def _account_shape(cls, value: str) -> str:
        value = value.strip()
        if value and not value.replace("-", "").isalnum():
            raise ValueError("must be an IBKR account id such as DU1234567, or empty")
        return value

    _env_file: Path | None = PrivateAttr(default=None)

    @property
    def env_file(self) -> Path | None:
        """The .env file these settings were read from (None: environment and defaults only)."""
        return self._env_file

    def describe(self) -> str:
        """One line: where the settings came from and the connection they point at."""
        source = f"{self._env_file}" if self._env_file else "the environment (no .env found)"
        return (
            f"settings from {source}: IBKR_HOST={self.ibkr_host} IBKR_PORT={self.ibkr_port} "
            f"IBKR_CLIENT_ID={self.ibkr_client_id} IBKR_NB_DB={self.ibkr_nb_db} "
            f"TRADING_STATE={self.trading_state}"
        )

    @property
    def is_paper_port(self) -> bool:
        return self.ibkr_port not in LIVE_PORTS


def _explain(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        value = item.get("input")
        lines.append(f"{name}={value!r} is not allowed: {item['msg']}.")
    return " ".join(lines)


PROJECT_MARKERS = ("pyproject.toml", ".git")


def project_root(start: Path | None = None) -> tuple[Path | None, Path | None]:
    """``(root, env_file)`` walking up from ``start`` (default: the working directory): the
    nearest ``.env``, and the project root (the first folder holding pyproject.toml or .git,
    or the .env's folder), so that a notebook in ``notebooks/`` finds the repo's ``.env`` and
    its ``data/``."""
    here = (start or Path.cwd()).resolve()
    env_file = None
    for folder in (here, *here.parents):
        candidate = folder / ".env"
        if env_file is None and candidate.is_file():
            env_file = candidate
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder, env_file
    return (env_file.parent if env_file else None), env_file


def load_settings(**overrides) -> Settings:
    """Read settings from the environment and the nearest `.env` (see ``project_root``);
    keyword overrides win. Raises SettingsError naming the variable, the value and what is
    allowed.
    """
    root, env_file = project_root()
    try:
        settings = Settings(_env_file=env_file, **overrides)
    except ValidationError as error:
        raise SettingsError(_explain(error)) from None
    if root is not None:  # relative files live in the project, wherever the notebook runs
        for name in ("ibkr_nb_db", "ibkr_kill_switch"):
            path = getattr(settings, name)
            if not path.is_absolute():
                setattr(settings, name, root / path)
    settings._env_file = env_file
    return settings
