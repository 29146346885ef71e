"""A notebook session on TWS, IB Gateway or the paper gateway: ib_async underneath, DataFrames out.

``connect()`` returns a ``Session`` that works in a Jupyter cell (nest-asyncio is applied once),
as a context manager, and again after a disconnect. Every getter returns a DataFrame with the
columns defined in ``frames.py``. A dropped connection is restored on the next call.

Safety: every order and cancel passes the gates (``gates.py``) and the risk limits
(``risk.py``) before anything is transmitted; orders go only to paper accounts (``DU...`` /
``DF...``) unless live trading is unlocked with three keys (see ``gates``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nest_asyncio
import pandas as pd
from ib_async import IB, Contract, Stock, util
from ib_async.wrapper import RequestError

from . import display, frames
from .config import LIVE_PORTS, PAPER_PORTS, Settings, load_settings
from .decisions import load_decisions, validate_decisions
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
from .execution import (
    OrderSpec,
    build_order,
    execute_plan,
    new_order_ref,
    order_status_rows,
    place_spec,
    reconcile_ledger,
    validate_spec,
    wait_until_done,
)
from .gates import TradingContext, env_allows_live, is_paper_account, session_denial
from .ledger import Ledger
from .risk import RiskLimits, plan_orders

log = logging.getLogger("ibkr_nb.session")

INFO_CODES = frozenset({2103, 2104, 2105, 2106, 2107, 2108, 2119, 2150, 2158})
CONNECTION_LOST = frozenset({1100, 2110})
ACCOUNT_SUMMARY_TAGS = ",".join(
    (
        "AccountType,NetLiquidation,TotalCashValue,SettledCash,AccruedCash,BuyingPower",
        "EquityWithLoanValue,PreviousDayEquityWithLoanValue,GrossPositionValue,RegTEquity",
        "RegTMargin,SMA,InitMarginReq,MaintMarginReq,AvailableFunds,ExcessLiquidity,Cushion",
        "FullInitMarginReq,FullMaintMarginReq,FullAvailableFunds,FullExcessLiquidity",
        "LookAheadNextChange,LookAheadInitMarginReq,LookAheadMaintMarginReq",
        "LookAheadAvailableFunds,LookAheadExcessLiquidity,HighestSeverity,DayTradesRemaining",
        "Leverage",
    )
)
ENDS_REQUEST = frozenset(
    {321, 322, 399, 492}
)  # ib_async warnings that TWS sends instead of a reply
CONNECTION_RESTORED = frozenset({1101, 1102})
RECONNECT_DELAYS = (0.25, 0.5, 1.0, 2.0)  # seconds between attempts; then give up


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
    display.install()


def connect(
    host: str | None = None,
    port: int | None = None,
    client_id: int | None = None,
    *,
    readonly: bool = False,
    timeout: float = 10,
    account: str | None = None,
    settings: Settings | None = None,
    **setting_overrides,
) -> Session:
    """Connect to TWS / IB Gateway / the paper gateway; defaults come from Settings (.env).

    Other keywords override settings by name, e.g. ``max_order_notional=5_000``,
    ``ibkr_nb_db="data/test.duckdb"``, ``trading_state="REDUCING"``. Raises GatewayNotRunning,
    ClientIdInUse, ConnectTimeout or AccountNotManaged with a message that says what to check.
    """
    if settings is not None and setting_overrides:
        settings = settings.model_copy(update=setting_overrides)
    settings = settings or load_settings(**setting_overrides)
    key = (host or settings.ibkr_host, port or settings.ibkr_port)
    key += (settings.ibkr_client_id if client_id is None else client_id,)
    previous = _LIVE_SESSIONS.get(key)
    if previous is not None and previous.connected:
        if previous.readonly == readonly and previous.settings == settings:
            log.info("connect(): reusing the open session %r", previous)
            previous.notices.append("connect() reused the session already open in this kernel.")
            return previous
        previous.disconnect()  # same client id, other options: close it so the id is free
    session = Session(
        host=host or settings.ibkr_host,
        port=port or settings.ibkr_port,
        client_id=settings.ibkr_client_id if client_id is None else client_id,
        readonly=readonly,
        timeout=timeout,
        account=settings.ibkr_account_id if account is None else account,
        settings=settings,
    )
    session.connect()
    _LIVE_SESSIONS[key] = session
    return session


_LIVE_SESSIONS: dict[tuple[str, int, int], Session] = {}
"""Open sessions of this process (kernel) by (host, port, client id): re-running a notebook's
``connect()`` cell reuses its session instead of failing with client id in use."""


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
        settings: Settings | None = None,
    ):
        self.host = host
        self.port = int(port)
        self.client_id = int(client_id)
        self.readonly = readonly
        self.timeout = timeout
        self.requested_account = account or ""
        self._ledger: Ledger | None = None
        self._bars: dict[tuple, pd.DataFrame] = {}
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
        self.ib.RequestTimeout = self.settings.ibkr_request_timeout
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
            )
        except ConnectionRefusedError:
            raise GatewayNotRunning(self._not_running()) from None
        except (TimeoutError, ConnectionError, OSError) as exc:
            self.ib.disconnect()
            if 326 in codes:
                raise ClientIdInUse(
                    f"Client id {self.client_id} is already in use on {self.host}:{self.port} "
                    "by another program or notebook kernel (re-running connect() in the same "
                    "kernel reuses its session). Close that connection, or connect with "
                    f"another id, e.g. client_id={self.client_id + 1}; note that open orders "
                    f"placed under client {self.client_id} stay with that id."
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
        if not any("settings from" in n for n in self.notices):
            self.notices.append(self.settings.describe())
            log.info(self.settings.describe())
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
        wanted = self.requested_account.strip().upper()
        if wanted:
            matches = [a for a in managed if a.upper() == wanted]
            if not matches:
                raise AccountNotManaged(
                    f"IBKR_ACCOUNT_ID={self.requested_account} is not managed by this login; it "
                    f"manages {', '.join(managed) or 'no accounts'}. Set IBKR_ACCOUNT_ID to one "
                    "of them."
                )
            return matches[0]
        if len(managed) == 1:
            return managed[0]
        raise AccountNotManaged(
            f"This login manages {len(managed)} accounts ({', '.join(managed)}); "
            "set IBKR_ACCOUNT_ID (or pass account=) to choose one."
        )

    def _on_error(self, req_id, code, text, contract) -> None:
        if code in ENDS_REQUEST and req_id in self.ib.wrapper._futures:
            # ib_async takes these for warnings and would wait for a reply that never comes;
            # end the pending request with the error so the caller hears it at once
            self.ib.wrapper._endReq(req_id, RequestError(req_id, code, text), success=False)
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

    def ensure_connected(self) -> None:
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

    def request(self, method: str, *args, **kwargs):
        """Call ``IB.<method>``, a read-only request, within IBKR_REQUEST_TIMEOUT seconds.

        If the connection drops meanwhile, reconnect and retry once (on the new IB instance).
        An IBKR error for the request raises ``RequestFailed`` with IBKR's code and text; no
        answer in time raises ``RequestTimedOut``; neither is ever an empty frame.
        """
        return self._guarded(method, lambda: getattr(self.ib, method)(*args, **kwargs))

    def _guarded(self, name: str, call):
        """Run ``call()`` with one reconnect-and-retry, IBKR errors and timeouts made clear."""
        self.ensure_connected()
        try:
            try:
                return call()
            except ConnectionError:
                self._lost = True
                self.ensure_connected()
                return call()
        except TimeoutError:
            raise RequestTimedOut(
                f"{name} got no answer from {self.host}:{self.port} within "
                f"{self.ib.RequestTimeout:g} s (IBKR_REQUEST_TIMEOUT). TWS may be frozen or "
                "busy; check it, then run the cell again."
            ) from None
        except RequestError as exc:
            raise RequestFailed(
                f"{name} was refused by IBKR: error {exc.code}: {exc.message}", code=exc.code
            ) from None

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
        ib = self.ib

        async def snapshot():
            # a fresh subscription answers with every value now; cancel it (TWS allows two)
            req_id = ib.client.getReqId()
            done = ib.wrapper.startReq(req_id)
            ib.client.reqAccountSummary(req_id, "All", ACCOUNT_SUMMARY_TAGS)
            try:
                await done
            finally:
                ib.client.cancelAccountSummary(req_id)

        self._guarded(
            "reqAccountSummary", lambda: util.run(snapshot(), timeout=self.ib.RequestTimeout)
        )
        values = [v for v in self.ib.wrapper.acctSummary.values() if v.account == self.account]
        return frames.account_summary_frame(values)

    def positions(self) -> pd.DataFrame:
        """Positions: signed quantity and IBKR's average cost (commissions included)."""
        positions = self.request("reqPositions")
        return frames.positions_frame(p for p in positions if p.account == self.account)

    def portfolio(self) -> pd.DataFrame:
        """Positions with market price and value, unrealized and realized P&L."""
        self.request("reqAccountUpdates", self.account)
        return frames.portfolio_frame(self.ib.portfolio(self.account))

    def open_orders(self) -> pd.DataFrame:
        """Working orders of this client (quantity signed: + buy, - sell)."""
        self.request("reqOpenOrders")
        return frames.orders_frame(self.ib.openTrades())

    def executions(self) -> pd.DataFrame:
        """Today's executions with their commissions (quantity signed, commission >= 0)."""
        self.request("reqExecutions")
        # ib_async attaches each commission report to the first Fill object it saw per execId
        fills = [f for f in self.ib.fills() if f.execution.acctNumber == self.account]
        return frames.executions_frame(fills)

    # -- market data -------------------------------------------------------------------------

    def contract(self, symbol: str | Contract) -> Contract:
        """The qualified contract for a symbol (a US stock on SMART) or an ib_async Contract
        (cached); raises SessionError if IBKR has none."""
        if isinstance(symbol, Contract):
            if symbol.conId:
                return symbol
            key, wanted = f"{symbol.secType}:{symbol.symbol}:{symbol.exchange}", symbol
        else:
            key = symbol.strip().upper()
            wanted = Stock(key, "SMART", "USD")
        if key not in self._contracts:
            try:
                qualified = self.request("qualifyContracts", wanted)
            except RequestFailed as exc:  # error 200: no such contract
                qualified = []
                log.info("qualify %s failed: %s", key, exc)
            if not qualified or qualified[0] is None:
                raise SessionError(
                    f"IBKR has no contract for {wanted.symbol!r} ({wanted.secType} on "
                    f"{wanted.exchange}; error 200). Check the ticker symbol; for other markets "
                    "pass a full ib_async Contract."
                )
            self._contracts[key] = qualified[0]
        return self._contracts[key]

    def quote(self, symbols) -> pd.DataFrame:
        """A snapshot quote per symbol or Contract: bid, ask, last, previous close, sizes, volume."""
        symbols = [symbols] if isinstance(symbols, str | Contract) else list(symbols)
        contracts = [self.contract(s) for s in symbols]
        return frames.quotes_frame(self.request("reqTickers", *contracts))

    def history(
        self,
        symbol: str | Contract,
        duration: str = "30 D",
        bar_size: str = "1 day",
        *,
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        end: str = "",
    ) -> pd.DataFrame:
        """Historical bars (TWS duration and bar size strings, e.g. "30 D", "5 mins").

        ``end``: "" (now) or TWS's "yyyymmdd hh:mm:ss Zone" (e.g. "20261120 16:00:00 US/Eastern").
        """
        check_end_time(end)
        contract = self.contract(symbol)
        bars = self.request(
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

    def daily_bars(self, symbols, duration: str = "1 Y", *, end: str = "") -> pd.DataFrame:
        """Daily TRADES bars for many symbols in one long frame (``symbol`` + BAR_COLUMNS),
        requested together and cached for this session (same symbols, duration and end)."""
        symbols = [symbols] if isinstance(symbols, str | Contract) else list(symbols)
        contracts = [self.contract(s) for s in symbols]
        key = (tuple(c.conId for c in contracts), duration, end)
        if key not in self._bars:
            self.ensure_connected()

            async def fetch():
                return await asyncio.gather(
                    *(
                        self.ib.reqHistoricalDataAsync(
                            c, end, duration, "1 day", "TRADES", True, formatDate=2
                        )
                        for c in contracts
                    )
                )

            results = self.ib.run(fetch())
            parts = [
                frames.bars_frame(bars).assign(symbol=c.symbol)
                for c, bars in zip(contracts, results, strict=True)
            ]
            frame = pd.concat(parts, ignore_index=True) if parts else frames.bars_frame([])
            self._bars[key] = frame[["symbol", *frames.BAR_COLUMNS]]
        return self._bars[key].copy()

    # -- orders ------------------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        """The DuckDB ledger at ``IBKR_NB_DB`` (or the path given to ``connect``)."""
        if self._ledger is None:
            self._ledger = Ledger(self.settings.ibkr_nb_db)
        return self._ledger

    @property
    def limits(self) -> RiskLimits:
        return RiskLimits.from_settings(self.settings)

    def trading_context(self, allow_live: bool = False) -> TradingContext:
        kill = Path(self.settings.ibkr_kill_switch)
        return TradingContext(
            account=self.account,
            port=self.port,
            readonly=self.readonly,
            allow_live=allow_live,
            env_allow_live=env_allows_live(),
            live_accounts=self.settings.live_accounts,
            kill_switch=str(kill) if kill.exists() else None,
        )

    def _check_gates(self, what: str, allow_live: bool) -> None:
        denial = session_denial(self.trading_context(allow_live), what)
        if denial:
            rule, message = denial
            error = LiveTradingLocked if rule.startswith("LIVE_") else OrderRejected
            raise error(rule, message)

    def plan(self, decisions, **kwargs) -> pd.DataFrame:
        """``risk.plan_orders`` with this account's positions, NetLiquidation, AvailableFunds,
        live quotes and the ledger's lots; ``decisions`` is a frame (a bad row is a rejected
        row) or anything ``load_decisions`` reads. A ticker IBKR does not know is rejected."""
        if not isinstance(decisions, pd.DataFrame):
            decisions, _ = load_decisions(decisions)
        valid, _ = validate_decisions(decisions)  # bad rows come back as rejected plan rows
        tickers = list(dict.fromkeys(valid["ticker"]))
        known = []
        for ticker in tickers:
            try:
                self.contract(ticker)
                known.append(ticker)
            except SessionError:
                log.info("no contract for %s: its decisions are rejected", ticker)
        quotes = self.quote(known) if known else None
        self.ledger.record_decisions(valid)
        lots = self.ledger.lots()
        return plan_orders(
            decisions,
            self.positions(),
            self.account_summary(),
            self.limits,
            quotes=quotes,
            lots=lots.open_lots[lots.open_lots["account"] == self.account],  # this account's
            realized=lots.realized,  # wash sales count across all of the taxpayer's accounts
            traded_today=self.ledger.notional_sent(account=self.account),
            today=self.ib.reqCurrentTime(),
            tradable=known,
            **kwargs,
        )

    def execute(
        self,
        plan: pd.DataFrame,
        *,
        dry_run: bool = True,
        allow_live: bool = False,
        wait: float = 10.0,
        progress=None,
    ) -> pd.DataFrame:
        """Send a plan's ``planned`` rows (dry run unless ``dry_run=False``); see ``execution``.

        Returns one row per plan row (``execution.RESULT_COLUMNS``): final broker state, or
        ``dry_run`` / ``rejected`` (with the rule) / ``duplicate`` / ``timeout``.
        """
        return execute_plan(
            self, plan, dry_run=dry_run, allow_live=allow_live, wait=wait, progress=progress
        )

    def preview_order(
        self, symbol, quantity: float, limit_price: float | None = None, **kwargs
    ) -> pd.DataFrame:
        """What-if: commission and margin impact of an order; nothing is sent to the market."""
        spec = self.order_spec(symbol, quantity, limit_price, **kwargs)
        contract = spec.contract or self.contract(spec.symbol)
        _, order_type, qty, prices = spec.legs()[0]
        state = self.what_if(contract, build_order(order_type, qty, prices, self.account, spec))
        return frames.preview_frame(contract.symbol, qty, order_type, state)

    def what_if(self, contract, order):
        """IBKR's what-if for an order; raises OrderRejected(WHAT_IF) unless margin and
        commission come back."""
        self.ensure_connected()
        order.whatIf = True
        try:
            state = self.request("whatIfOrder", contract, order)  # read-only: retried on a drop
        finally:
            order.whatIf = False
        if (
            not state
            or math.isnan(frames.clean(state.commission))
            or math.isnan(frames.clean(state.initMarginChange))
        ):
            raise OrderRejected(
                "WHAT_IF",
                f"WHAT_IF: IBKR returned no commission and margin for {contract.symbol}; "
                "nothing was sent. See the log for its error.",
            )
        return state

    def order_spec(
        self,
        symbol,
        quantity: float,
        limit_price: float | None = None,
        *,
        order_type: str | None = None,
        stop_price: float | None = None,
        trail: float | str | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        tif: str = "DAY",
        outside_rth: bool = False,
        order_ref: str | None = None,
    ) -> OrderSpec:
        """A checked ``OrderSpec`` (raises OrderRejected naming the rule). ``trail``: an amount
        or a percent string ("2%"); on a TRAIL order it is the order's trail, otherwise it makes
        the stop leg trailing."""
        contract = symbol if isinstance(symbol, Contract) else None
        name = contract.symbol if contract is not None else str(symbol).strip().upper()
        if order_type is None:
            order_type = "LMT" if limit_price is not None else ("STP" if stop_price else "MKT")
        trail_amount = trail_percent = None
        if isinstance(trail, str) and trail.strip().endswith("%"):
            trail_percent = _number(trail.strip()[:-1], "trail")
        elif trail is not None:
            trail_amount = _number(trail, "trail")
        spec = OrderSpec(
            symbol=name,
            quantity=_number(quantity, "quantity"),
            order_type=order_type,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_amount=trail_amount,
            trail_percent=trail_percent,
            stop_loss=stop_loss,
            take_profit=take_profit,
            tif=tif,
            outside_rth=outside_rth,
            order_ref=order_ref or new_order_ref(),
            contract=contract,
        )
        return validate_spec(spec, self.limits)

    def place_order(
        self,
        symbol,
        quantity: float,
        limit_price: float | None = None,
        *,
        allow_live: bool = False,
        wait: float = 5.0,
        **kwargs,
    ) -> pd.DataFrame:
        """Send one order (paper unless unlocked) through every gate; wait up to ``wait`` s.

        ``symbol``: a ticker or an ib_async Contract; ``quantity`` signed (+ buy, - sell); a
        ``limit_price`` makes it LMT; ``stop_loss`` / ``take_profit`` make a bracket. Keyword
        options as ``order_spec``. An ``order_ref`` already sent is not sent again: the existing
        order's rows come back. Returns the order's rows (see ``open_orders``); a denial raises
        ``OrderRejected`` with its ``rule``.
        """
        self._check_gates("order", allow_live)
        spec = self.order_spec(symbol, quantity, limit_price, **kwargs)
        return place_spec(self, spec, allow_live=allow_live, wait=wait)

    def cancel_order(self, order_id: int, *, allow_live: bool = False) -> pd.DataFrame:
        """Cancel a working order of this client; returns its row after TWS confirms."""
        self._check_gates("cancel", allow_live)
        self.ensure_connected()
        for trade in self.ib.openTrades():
            if trade.order.orderId == order_id:
                self.ib.cancelOrder(trade.order)
                wait_until_done(self.ib, [trade], 5.0)
                self.ledger.record_order_status(order_status_rows([trade]))
                return frames.orders_frame([trade])
        raise OrderRefused(f"No working order {order_id} for client {self.client_id}.")

    def reconcile(self) -> pd.DataFrame:
        """Bring the ledger up to the broker: every execution once, every order's state, intents
        left pending by a crash adopted, and positions the ledger cannot explain booked as
        flagged opening lots at IBKR's average cost. Returns what changed, one row per kind."""
        return reconcile_ledger(self)


def check_end_time(end) -> None:
    """Refuse an ``end`` whose time zone TWS would not know, before anything is sent."""
    if not isinstance(end, str) or not end.strip():
        return
    parts = end.split()
    if len(parts) < 3:
        return
    zone = " ".join(parts[2:])
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SessionError(
            f"end={end!r}: {zone!r} is not a time zone TWS knows; write it like "
            "'20261120 16:00:00 US/Eastern' or 'America/New_York', or pass a tz-aware datetime."
        ) from None


def _number(value, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise OrderRejected(
            "QUANTITY" if name == "quantity" else "PRICE",
            f"{'QUANTITY' if name == 'quantity' else 'PRICE'}: {name}={value!r} is not a number",
        ) from None
