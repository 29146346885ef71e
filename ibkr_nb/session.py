"""A notebook session on TWS, IB Gateway or the paper gateway: ib_async underneath, DataFrames out.

``connect()`` returns a ``Session`` that works in a Jupyter cell (nest-asyncio is applied once),
as a context manager, and again after a disconnect. Every getter returns a DataFrame with the
columns defined in ``frames.py``. A dropped connection is restored on the next call.

Safety: orders go only to paper accounts (``DU...``/``DF...``) unless live trading is unlocked in
two independent places: ``IBKR_ALLOW_LIVE=true`` in the environment *and* ``allow_live=True``
passed to ``connect``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import nest_asyncio
import pandas as pd
from ib_async import IB, LimitOrder, MarketOrder, Order, Stock, StopLimitOrder, StopOrder
from ib_async.wrapper import RequestError

from . import frames
from .config import LIVE_PORTS, PAPER_PORTS, Settings, load_settings

log = logging.getLogger("ibkr_nb.session")

INFO_CODES = frozenset({2103, 2104, 2105, 2106, 2107, 2108, 2119, 2150, 2158})
CONNECTION_LOST = frozenset({1100, 2110})
CONNECTION_RESTORED = frozenset({1101, 1102})
PAPER_PREFIXES = ("DU", "DF")
RECONNECT_DELAYS = (0.25, 0.5, 1.0, 2.0)  # seconds between attempts; then give up
ORDER_TYPES = ("MKT", "LMT", "STP", "STP LMT")


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


class LiveTradingLocked(SessionError):
    """An order to a live account without both live-trading keys."""


class OrderRefused(SessionError):
    """An order that was not sent, or that TWS refused."""


def _patch_event_loop() -> None:
    """Let ib_async's blocking calls run inside an already-running loop, as in a Jupyter cell.

    nest-asyncio is applied once per event loop (it marks the loops it has patched).
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
    if not getattr(loop, "_nest_patched", False):
        nest_asyncio.apply(loop)


def is_paper_account(account: str) -> bool:
    """IBKR paper accounts start with DU (individual) or DF (advisor)."""
    return account.upper().startswith(PAPER_PREFIXES)


def connect(
    host: str | None = None,
    port: int | None = None,
    client_id: int | None = None,
    *,
    readonly: bool = False,
    timeout: float = 10,
    account: str | None = None,
    allow_live: bool = False,
    settings: Settings | None = None,
) -> Session:
    """Connect to TWS / IB Gateway / the paper gateway; defaults come from Settings (.env).

    Raises GatewayNotRunning, ClientIdInUse, ConnectTimeout or AccountNotManaged with a message
    that says what to check.
    """
    settings = settings or load_settings()
    session = Session(
        host=host or settings.ibkr_host,
        port=port or settings.ibkr_port,
        client_id=settings.ibkr_client_id if client_id is None else client_id,
        readonly=readonly,
        timeout=timeout,
        account=settings.ibkr_account_id if account is None else account,
        allow_live=allow_live,
        settings=settings,
    )
    session.connect()
    return session


class Session:
    """One API connection; DataFrame getters; paper orders with a preview."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        *,
        readonly: bool = False,
        timeout: float = 10,
        account: str = "",
        allow_live: bool = False,
        settings: Settings | None = None,
    ):
        self.host = host
        self.port = int(port)
        self.client_id = int(client_id)
        self.readonly = readonly
        self.timeout = timeout
        self.requested_account = account or ""
        self.allow_live = allow_live
        self.settings = settings or load_settings()
        self.account = ""
        self.ib = IB()
        self.notices: list[str] = []
        self._lost = False
        self._closed = True
        self._contracts: dict[str, Stock] = {}

    # -- connection --------------------------------------------------------------------------

    def connect(self) -> Session:
        _patch_event_loop()
        self.ib = IB()
        self.ib.RaiseRequestErrors = True
        codes: set[int] = set()

        def on_error(req_id, code, text, contract):
            codes.add(code)

        self.ib.errorEvent += on_error
        self.ib.errorEvent += self._on_error
        try:
            self.ib.connect(
                self.host,
                self.port,
                clientId=self.client_id,
                timeout=self.timeout,
                readonly=self.readonly,
                account=self.requested_account,
            )
        except ConnectionRefusedError:
            raise GatewayNotRunning(self._not_running()) from None
        except (TimeoutError, ConnectionError, OSError) as exc:
            self.ib.disconnect()
            if 326 in codes:
                raise ClientIdInUse(
                    f"Client id {self.client_id} is already in use on {self.host}:{self.port}. "
                    f"Connect with another, e.g. client_id={self.client_id + 1}."
                ) from None
            if isinstance(exc, TimeoutError):
                raise ConnectTimeout(
                    f"{self.host}:{self.port} accepted the connection but the API handshake did "
                    f"not finish within {self.timeout:g} s. Check TWS for a dialog asking to "
                    "accept the connection, and that this port belongs to TWS or IB Gateway."
                ) from None
            raise GatewayNotRunning(self._not_running()) from None
        finally:
            self.ib.errorEvent -= on_error
        self.ib.disconnectedEvent += self._on_disconnected
        self._closed = False
        self._lost = False
        try:
            self.account = self._choose_account(self.ib.managedAccounts())
        except SessionError:
            self.ib.disconnect()
            self._closed = True
            raise
        usual_port_is_live = self.port in LIVE_PORTS
        if (self.is_paper and usual_port_is_live) or (
            not self.is_paper and self.port in PAPER_PORTS
        ):
            log.warning(
                "account %s is %s but port %d is TWS's usual %s port; check IBKR_PORT",
                self.account,
                "paper" if self.is_paper else "LIVE",
                self.port,
                "live" if usual_port_is_live else "paper",
            )
        return self

    def _not_running(self) -> str:
        return (
            f"Nothing accepted an API connection on {self.host}:{self.port}. Start TWS or IB "
            "Gateway (or `ibkr-nb gateway` for the paper gateway), then check in TWS: "
            "Global Configuration > API > Settings > 'Enable ActiveX and Socket Clients' is on, "
            f"the socket port is {self.port}, and 127.0.0.1 is among the trusted IPs."
        )

    def _choose_account(self, managed: list[str]) -> str:
        wanted = self.requested_account
        if wanted:
            if wanted not in managed:
                raise AccountNotManaged(
                    f"IBKR_ACCOUNT_ID={wanted} is not managed by this login; it manages "
                    f"{', '.join(managed) or 'no accounts'}. Set IBKR_ACCOUNT_ID to one of them."
                )
            return wanted
        if len(managed) == 1:
            return managed[0]
        raise AccountNotManaged(
            f"This login manages {len(managed)} accounts ({', '.join(managed)}); "
            "set IBKR_ACCOUNT_ID (or pass account=) to choose one."
        )

    def _on_error(self, req_id, code, text, contract) -> None:
        if code in INFO_CODES:
            log.info("TWS %d: %s", code, text)
        elif code in CONNECTION_LOST:
            self._lost = True
            log.warning("TWS %d: %s", code, text)
        elif code in CONNECTION_RESTORED:
            self._lost = code == 1101  # 1101: data lost, resubscribe by reconnecting
            log.warning("TWS %d: %s", code, text)

    def _on_disconnected(self) -> None:
        if not self._closed:
            self._lost = True

    def _ensure_connected(self) -> None:
        """Reconnect (bounded retries with backoff) if the connection dropped, and say so."""
        if self._closed:
            raise SessionError("This session is closed; call ibkr_nb.connect() for a new one.")
        if self.ib.isConnected() and not self._lost:
            return
        last: Exception | None = None
        for attempt, delay in enumerate(RECONNECT_DELAYS, start=1):
            try:
                self.ib.disconnect()
                self.connect()
            except SessionError as exc:
                last = exc
                time.sleep(delay)
                continue
            notice = (
                f"Connection to {self.host}:{self.port} was lost and is restored "
                f"(attempt {attempt}); {len(self.ib.openTrades())} open orders and "
                f"{len(self.ib.fills())} executions re-synchronised."
            )
            self.notices.append(notice)
            log.warning(notice)
            return
        self._closed = True
        raise SessionError(
            f"Connection to {self.host}:{self.port} was lost and {len(RECONNECT_DELAYS)} attempts "
            f"to reconnect failed: {last}"
        )

    def _request(self, method: str, *args, **kwargs):
        """Call ``IB.<method>``, a read-only request; if the connection drops meanwhile,
        reconnect and retry once (on the new IB instance)."""
        self._ensure_connected()
        try:
            return getattr(self.ib, method)(*args, **kwargs)
        except ConnectionError:
            self._lost = True
            self._ensure_connected()
            return getattr(self.ib, method)(*args, **kwargs)

    def disconnect(self) -> None:
        self._closed = True
        self.ib.disconnect()

    close = disconnect

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    @property
    def connected(self) -> bool:
        return not self._closed and self.ib.isConnected()

    @property
    def is_paper(self) -> bool:
        return is_paper_account(self.account)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        kind = "paper" if self.is_paper else "LIVE"
        return (
            f"<Session {state} {self.host}:{self.port} client {self.client_id} "
            f"account {self.account or '?'} ({kind})>"
        )

    # -- account -----------------------------------------------------------------------------

    def account_summary(self) -> pd.DataFrame:
        """Account tags (NetLiquidation, TotalCashValue, BuyingPower, ...) as account currency."""
        return frames.account_summary_frame(self._request("accountSummary", self.account))

    def positions(self) -> pd.DataFrame:
        """Positions: signed quantity and IBKR's average cost (commissions included)."""
        positions = self._request("reqPositions")
        return frames.positions_frame(p for p in positions if p.account == self.account)

    def portfolio(self) -> pd.DataFrame:
        """Positions with market price and value, unrealized and realized P&L."""
        self._request("reqAccountUpdates", self.account)
        return frames.portfolio_frame(self.ib.portfolio(self.account))

    def open_orders(self) -> pd.DataFrame:
        """Working orders of this client (quantity signed: + buy, - sell)."""
        self._request("reqOpenOrders")
        return frames.orders_frame(self.ib.openTrades())

    def executions(self) -> pd.DataFrame:
        """Today's executions with their commissions (quantity signed, commission >= 0)."""
        self._request("reqExecutions")
        # ib_async attaches each commission report to the first Fill object it saw per execId
        fills = [f for f in self.ib.fills() if f.execution.acctNumber == self.account]
        return frames.executions_frame(fills)

    # -- market data -------------------------------------------------------------------------

    def contract(self, symbol: str) -> Stock:
        """The qualified US stock for a symbol (cached); raises SessionError if IBKR has none."""
        key = symbol.strip().upper()
        if key not in self._contracts:
            self._ensure_connected()
            stock = Stock(key, "SMART", "USD")
            try:
                qualified = self.ib.qualifyContracts(stock)
            except RequestError as exc:  # error 200 with RaiseRequestErrors on
                qualified = []
                log.info("qualify %s failed: %s", key, exc)
            if not qualified or qualified[0] is None:
                raise SessionError(
                    f"IBKR has no US stock {key!r} on SMART (error 200). Check the ticker "
                    "symbol; for other markets pass a full ib_async Contract."
                )
            self._contracts[key] = qualified[0]
        return self._contracts[key]

    def quote(self, symbols: str | list[str]) -> pd.DataFrame:
        """A snapshot quote per symbol: bid, ask, last, previous close, sizes, volume."""
        symbols = [symbols] if isinstance(symbols, str) else list(symbols)
        contracts = [self.contract(s) for s in symbols]
        return frames.quotes_frame(self._request("reqTickers", *contracts))

    def history(
        self,
        symbol: str,
        duration: str = "30 D",
        bar_size: str = "1 day",
        *,
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        end: str = "",
    ) -> pd.DataFrame:
        """Historical bars (TWS duration and bar size strings, e.g. "30 D", "5 mins")."""
        contract = self.contract(symbol)
        bars = self._request(
            "reqHistoricalData",
            contract,
            end,
            duration,
            bar_size,
            what_to_show,
            use_rth,
            formatDate=2,
        )
        return frames.bars_frame(bars)

    # -- orders ------------------------------------------------------------------------------

    def _check_may_trade(self) -> None:
        if self.readonly:
            raise OrderRefused("This session is read-only; connect with readonly=False to trade.")
        if self.is_paper:
            return
        if not (self.settings.ibkr_allow_live and self.allow_live):
            raise LiveTradingLocked(
                f"Account {self.account} is a LIVE account. Orders to it need two keys: "
                "IBKR_ALLOW_LIVE=true in the environment and allow_live=True in connect(). "
                f"Present: IBKR_ALLOW_LIVE={self.settings.ibkr_allow_live}, "
                f"allow_live={self.allow_live}."
            )

    def build_order(
        self,
        quantity: float,
        order_type: str = "MKT",
        *,
        limit_price: float | None = None,
        stop_price: float | None = None,
        tif: str = "DAY",
        order_ref: str = "",
        outside_rth: bool = False,
    ) -> Order:
        """An ib_async Order from a signed quantity (+ buy, - sell); checks the prices it needs."""
        if not quantity or math.isnan(quantity):
            raise OrderRefused("Quantity must be non-zero: positive to buy, negative to sell.")
        action, size = ("BUY", quantity) if quantity > 0 else ("SELL", -quantity)
        order_type = order_type.upper()
        if order_type not in ORDER_TYPES:
            raise OrderRefused(f"Order type {order_type!r} is not one of {', '.join(ORDER_TYPES)}.")
        needs_limit = order_type in ("LMT", "STP LMT")
        needs_stop = order_type in ("STP", "STP LMT")
        if needs_limit and not limit_price:
            raise OrderRefused(f"A {order_type} order needs limit_price.")
        if needs_stop and not stop_price:
            raise OrderRefused(f"A {order_type} order needs stop_price.")
        common = {
            "tif": tif.upper(),
            "orderRef": order_ref,
            "outsideRth": outside_rth,
            "account": self.account,
        }
        if order_type == "MKT":
            return MarketOrder(action, size, **common)
        if order_type == "LMT":
            return LimitOrder(action, size, limit_price, **common)
        if order_type == "STP":
            return StopOrder(action, size, stop_price, **common)
        return StopLimitOrder(action, size, limit_price, stop_price, **common)

    def preview_order(
        self, symbol: str, quantity: float, order_type: str = "MKT", **kwargs
    ) -> pd.DataFrame:
        """What-if: commission and margin impact of an order; nothing is sent to the market."""
        contract = self.contract(symbol)
        order = self.build_order(quantity, order_type, **kwargs)
        self._ensure_connected()
        state = self.ib.whatIfOrder(contract, order)
        if not state:
            raise OrderRefused(f"TWS gave no preview for {symbol}; see the log for its error.")
        return frames.preview_frame(contract.symbol, quantity, order.orderType, state)

    def place_order(
        self, symbol: str, quantity: float, order_type: str = "MKT", *, wait: float = 5.0, **kwargs
    ) -> pd.DataFrame:
        """Send an order (paper unless unlocked) and wait up to ``wait`` s for it to finish.

        ``quantity`` is signed: + buy, - sell. Returns the order's row (see ``open_orders``).
        """
        self._check_may_trade()
        contract = self.contract(symbol)
        order = self.build_order(quantity, order_type, **kwargs)
        self._ensure_connected()
        trade = self.ib.placeOrder(contract, order)
        self._wait_until_done(trade, wait)
        errors = [entry.message for entry in trade.log if entry.errorCode]
        if trade.orderStatus.status in ("Cancelled", "Inactive", "ApiCancelled") and errors:
            raise OrderRefused(f"{symbol} order {trade.order.orderId} was refused: {errors[-1]}")
        return frames.orders_frame([trade])

    def _wait_until_done(self, trade, timeout: float) -> None:
        """Run the event loop until the order is done (filled, cancelled) or ``timeout`` s pass.

        Event-driven: the listener is attached before the loop runs, so a reply that arrives
        all at once cannot slip past (as it can with ``IB.waitOnUpdate``).
        """
        if trade.isDone():
            return
        finished = asyncio.get_event_loop().create_future()

        def check(_trade) -> None:
            if trade.isDone() and not finished.done():
                finished.set_result(None)

        trade.statusEvent += check
        try:
            self.ib.run(asyncio.wait_for(finished, timeout))
        except TimeoutError:
            pass
        finally:
            trade.statusEvent -= check

    def cancel_order(self, order_id: int) -> pd.DataFrame:
        """Cancel a working order of this client; returns its row after TWS confirms."""
        self._ensure_connected()
        for trade in self.ib.openTrades():
            if trade.order.orderId == order_id:
                self.ib.cancelOrder(trade.order)
                self._wait_until_done(trade, 5.0)
                return frames.orders_frame([trade])
        raise OrderRefused(f"No working order {order_id} for client {self.client_id}.")
