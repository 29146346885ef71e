"""The paper gateway's asyncio server: connections, the API handshake, request dispatch, pacing.

One ``PaperGateway`` owns a simulated ``Market`` and ``Broker`` and serves any number of API
clients on a loopback port, as TWS does. It runs either inside an event loop you own
(``await gateway.start()``) or on a background thread (``gateway.start_in_thread()``), which is
what tests and notebooks use. The control surface (``advance_clock``, ``set_price``,
``reject_next_order``, ``drop_connections``) is safe to call from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import threading
import time
from datetime import datetime
from pathlib import Path

from . import messages
from .broker import (
    AccountChanged,
    Broker,
    BrokerError,
    Fill,
    OrderRejected,
    OrderTicket,
    OrderUpdate,
    PositionRow,
    StateWriteError,
    WhatIf,
)
from .instruments import resolve
from .market import (
    ET,
    Clock,
    HistoricalDataError,
    Market,
    head_timestamp,
    matching_symbols,
)
from .protocol import (
    HANDSHAKE_PREFIX,
    ProtocolError,
    connection_time,
    decode_fields,
    encode_message,
    negotiate_version,
    parse_version_range,
    split_frames,
)
from .reference import ReferenceRequests
from .replies import (
    account_value_rows,
    bar_rows,
    commission_values,
    completed_order_values,
    contract_details_values,
    execution_values,
    open_order_values,
    order_status_values,
    parse_end_datetime,
    portfolio_values,
    position_values,
    symbol_sample_values,
    ticket_from_request,
)
from .statements import flex_statement
from .streams import TICK_INTERVAL, Stream, StreamRequests
from .validation import MAX_ORDER_QUANTITY, odd_lot_warning

log = logging.getLogger("ibkr_nb.gateway")

PACING_LIMIT = 50  # messages per second per client, as TWS enforces
HANDSHAKE_TIMEOUT = 5.0  # seconds for a new socket to finish the API handshake
MAX_CONNECTIONS = 64  # API clients at once (TWS allows 32 client ids; some slack for tools)
MAX_PENDING = 512  # sockets still in the handshake; more are closed at once
HISTORY_STEP = 2000  # intraday bars' worth of historical work between looks at other clients
MAX_OUTBOX = 8 * 1024 * 1024  # bytes queued for a client that does not read; then it is dropped
FARM_STATUS = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
NO_SECURITY = "No security definition has been found for the request"


class ClientConnection:
    """One API client: its socket, negotiated version, id and subscriptions."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.version = 0
        self.client_id: int | None = None
        self.market_data_type = 1
        self.subscriptions: dict[tuple[str, int], Stream] = {}  # (kind, reqId) -> stream
        self.account_updates = False
        self.account_multi: dict[int, dict] = {}  # reqId -> (key, currency) -> text sent
        self.positions_subscribed = False
        self.positions_multi: set[int] = set()
        self.tokens = float(PACING_LIMIT)
        self.refilled = time.monotonic()
        self.closed = False
        self.outbox: list[bytes] = []
        self.account_sent: dict[tuple[str, str], str] = {}  # (key, currency) -> text sent
        self.tasks: set[asyncio.Task] = set()  # long requests being answered in steps
        self.history_turn = asyncio.Lock()  # one historical request of a client at a time

    # -- output ------------------------------------------------------------------------------

    def send(self, name: str, **values) -> None:
        """Queue a reply; everything queued in one event-loop pass goes out in one write."""
        if self.closed:
            return
        if not self.outbox:
            asyncio.get_running_loop().call_soon(self.flush)
        self.outbox.append(messages.encode_reply(name, values, self.version))

    def flush(self) -> None:
        if self.outbox and not self.closed:
            self.writer.write(b"".join(self.outbox))
            if self.writer.transport.get_write_buffer_size() > MAX_OUTBOX:
                log.warning(
                    "client %s reads too slowly (%d bytes waiting): disconnected",
                    self.client_id,
                    self.writer.transport.get_write_buffer_size(),
                )
                self.outbox.clear()
                self.closed = True
                self.writer.transport.abort()
        self.outbox.clear()

    def error(self, req_id: int, code: int, text: str) -> None:
        if code < 2100 or code > 2200:  # farm notices are not errors
            log.info("client %s: error %d for id %s: %s", self.client_id, code, req_id, text)
        self.send(
            "error", reqId=req_id, errorCode=code, errorString=text, advancedOrderRejectJson=""
        )

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self.closed = True
            with contextlib.suppress(Exception):
                self.writer.close()

    # -- pacing ------------------------------------------------------------------------------

    def over_pace(self, now: float) -> bool:
        """True if this message exceeds PACING_LIMIT a second (it is then dropped).

        A token bucket holding one second's allowance, refilled continuously: a burst of more
        than 50 is refused at once, and a client that paces itself per second (ib_async sends
        45 a second in bursts) is never refused because of arrival jitter at the window edge.
        """
        self.tokens = min(PACING_LIMIT, self.tokens + (now - self.refilled) * PACING_LIMIT)
        self.refilled = now
        if self.tokens < 1.0:
            return True
        self.tokens -= 1.0
        return False


class PaperGateway(StreamRequests, ReferenceRequests):
    """A TWS stand-in that speaks the TWS API socket protocol on a loopback port.

    ``seed`` fixes every price path, id and fill. ``clock_start`` with ``fixed_clock=True``
    freezes time (it moves only by ``advance_clock``), so two runs give identical results.
    ``state_file`` None keeps the account in memory; ``max_order_quantity`` is the size limit
    (larger orders get 383).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        *,
        seed: int = 7,
        clock_start: datetime | None = None,
        fixed_clock: bool = False,
        state_file: str | Path | None = None,
        allow_remote: bool = False,
        max_order_quantity: float = MAX_ORDER_QUANTITY,
    ):
        if not _is_loopback(host) and not allow_remote:
            raise ValueError(
                f"refusing to bind {host}: the paper gateway listens on loopback only unless "
                "a non-loopback host is asked for explicitly (allow_remote=True, --allow-remote)"
            )
        self.host = host
        self.port = port
        self.seed = seed
        self.clock = Clock(clock_start, fixed=fixed_clock)
        self.market = Market(seed, self.clock)
        self.broker = Broker(
            self.market, seed, state_file=state_file, max_order_quantity=max_order_quantity
        )
        self.broker.subscribe(self._on_broker_event)
        self.clients: set[ClientConnection] = set()
        self._pending = 0  # sockets still in the handshake
        self._drops: dict[str, int] = {}
        self._drops_logged = 0.0
        self._server: asyncio.AbstractServer | None = None
        self._ticker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def account_id(self) -> str:
        return self.broker.account_id

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving in the running event loop; ``port=0`` picks a free port."""
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._serve_client, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.broker.store.describe(f"the paper gateway on {self.host}:{self.port}")
        self._ticker = asyncio.create_task(self._tick_loop())
        log.info("paper gateway for %s listening on %s:%d", self.account_id, self.host, self.port)

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._server:
            self._server.close()
        for client in list(self.clients):
            client.close()
        if self._server:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        self.clients.clear()
        self.broker.close()

    def start_in_thread(self) -> PaperGateway:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # surfaced to the caller below
                self.broker.close()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.close()
                self._stopped.set()

        self._thread = threading.Thread(target=run, name="paper-gateway", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop_thread(self) -> None:
        if self._thread and self._loop and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._stopped.wait(5)
            self._thread.join(5)

    def __enter__(self) -> PaperGateway:
        return self.start_in_thread()

    def __exit__(self, *exc) -> None:
        self.stop_thread()

    # -- control surface (any thread) ---------------------------------------------------------

    def _call(self, func, *args):
        loop = self._loop
        if loop is None or not loop.is_running():
            return func(*args)
        try:
            if asyncio.get_running_loop() is loop:
                return func(*args)
        except RuntimeError:
            pass

        async def run():
            return func(*args)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(10)

    def advance_clock(self, seconds: float) -> None:
        """Move simulated time forward; working orders are re-checked against the new prices."""

        def advance():
            self.clock.advance(seconds)
            self._market_moved()

        self._call(advance)

    def set_price(self, symbol: str, price: float) -> None:
        """Move a symbol's price; stops and limits that now cross are triggered."""

        def move():
            self.market.set_price(symbol, price)
            self._market_moved()

        self._call(move)

    def reject_next_order(self, reason: str = "Simulated rejection") -> None:
        """Make the next placed order reject with error 201 and this reason."""
        self._call(self.broker.reject_next_order, reason)

    def drop_connections(self) -> None:
        """Close every client socket, as when TWS restarts or the network drops."""

        def drop():
            for client in list(self.clients):
                client.close()

        self._call(drop)

    def flex_statement(self) -> str:
        """The account's trade history (seeded lots and every fill) as Flex Query XML."""
        return self._call(
            lambda: flex_statement(self.account_id, self.broker.trade_history(), self.clock.now())
        )

    def notify_connectivity(self, lost: bool) -> None:
        """Tell every client that TWS lost (1100) or regained (1102) its link to IBKR."""
        code, text = (
            (1100, "Connectivity between IB and Trader Workstation has been lost.")
            if lost
            else (
                1102,
                "Connectivity between IB and Trader Workstation has been restored - "
                "data maintained. All data farms are connected: usfarm; ushmds; secdefnj.",
            )
        )

        def notify():
            for client in list(self.clients):
                client.error(-1, code, text)

        self._call(notify)

    # -- connections -------------------------------------------------------------------------

    async def _serve_client(self, reader, writer) -> None:
        client = ClientConnection(reader, writer)
        peer = writer.get_extra_info("peername") or ("?", 0)
        if self._pending >= MAX_PENDING:
            self._dropped("too many unfinished handshakes")
            writer.transport.abort()
            return
        self._pending += 1
        try:
            await asyncio.wait_for(self._handshake(client), HANDSHAKE_TIMEOUT)
        except (TimeoutError, ProtocolError, asyncio.IncompleteReadError, ConnectionError) as exc:
            self._dropped(str(exc) or f"no API handshake within {HANDSHAKE_TIMEOUT:g} s")
            client.closed = True
            writer.transport.abort()
            return
        finally:
            self._pending -= 1
        if len(self.clients) >= MAX_CONNECTIONS:
            client.error(
                -1,
                502,
                f"Couldn't connect to TWS: the paper gateway serves at most {MAX_CONNECTIONS} "
                "API clients at once. Disconnect one and try again.",
            )
            client.close()
            return
        self.clients.add(client)
        log.info("connection from %s:%s (API version %d)", peer[0], peer[1], client.version)
        try:
            await self._read_loop(client)
        except (ProtocolError, asyncio.IncompleteReadError, ConnectionError) as exc:
            log.info("closing client %s: %s", client.client_id, exc)
        except Exception:  # a bug must cost one connection, never the gateway
            log.exception("unexpected error serving client %s", client.client_id)
        finally:
            self.clients.discard(client)
            for task in list(client.tasks):
                task.cancel()
            client.close()
            log.info("client %s disconnected", client.client_id)

    def _dropped(self, reason: str) -> None:
        """Count a socket closed before it became a client; log a summary now and then (a
        flood of half-open sockets must not flood the log)."""
        self._drops[reason] = self._drops.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._drops_logged >= 10.0:
            summary = "; ".join(f"{n} x {why}" for why, n in self._drops.items())
            log.warning("closed sockets that did not finish the API handshake: %s", summary)
            self._drops.clear()
            self._drops_logged = now

    async def _handshake(self, client: ClientConnection) -> None:
        prefix = await client.reader.readexactly(4)
        if prefix != HANDSHAKE_PREFIX:
            raise ProtocolError(f"expected API handshake, got {prefix!r}")
        size = int.from_bytes(await client.reader.readexactly(4), "big")
        if size > 1024:
            raise ProtocolError("version announcement too long")
        payload = await client.reader.readexactly(size)
        low, high = parse_version_range(payload)
        client.version = negotiate_version(low, high)
        client.writer.write(encode_message([client.version, connection_time(self.clock.now())]))

    async def _read_loop(self, client: ClientConnection) -> None:
        buffer = bytearray()
        while not client.closed:
            chunk = await client.reader.read(65536)
            if not chunk:
                return
            buffer += chunk
            arrived = time.monotonic()  # pacing counts arrivals, not when we got round to them
            for payload in split_frames(buffer):
                self._handle(client, decode_fields(payload), arrived)
                if client.closed:
                    return

    def _handle(self, client: ClientConnection, fields: list[str], arrived: float) -> None:
        if client.over_pace(arrived):
            client.error(
                -1, 100, f"Max rate of messages per second has been exceeded:max={PACING_LIMIT}"
            )
            return
        try:
            request, values = messages.decode_request(fields, client.version)
        except KeyError:
            self._unsupported(client, fields)
            return
        except ValueError as exc:  # FieldError included: answered with the request's own id
            client.error(
                messages.request_id(fields),
                320,
                f"Server error when reading an API client request: {exc}",
            )
            return
        if client.client_id is None and request.name != "startApi":
            client.error(
                -1,
                321,
                "Server error when validating an API client request: startApi must come first",
            )
            return
        handler = getattr(self, "_on_" + request.name)
        req_id = values.get("reqId", values.get("orderId", -1))
        try:
            handler(client, values)
        except (ValueError, ArithmeticError, LookupError) as exc:  # a value no parser accepts
            client.error(req_id, 321, f"Error validating request: {exc}")
        except Exception:  # a bug must cost one request, never the connection
            log.exception("%s from client %s failed", request.name, client.client_id)
            client.error(
                req_id,
                320,
                f"Server error when reading an API client request: the paper gateway failed on "
                f"{request.name}; the gateway log has the details.",
            )

    def _unsupported(self, client: ClientConnection, fields: list[str]) -> None:
        """Answer a request the gateway does not serve so the client's call returns."""
        entry = messages.UNSUPPORTED.get(int(fields[0])) if fields[0].isdigit() else None
        if entry is None:
            client.error(
                -1,
                503,
                f"Unsupported message id {fields[0]}: the paper gateway does not implement "
                "this request",
            )
            return
        if entry.code:
            client.error(messages.request_id(fields), entry.code, entry.text)

    # -- session -----------------------------------------------------------------------------

    def _on_startApi(self, client: ClientConnection, v: dict) -> None:
        client_id = v["clientId"]
        if any(other.client_id == client_id for other in self.clients if other is not client):
            client.error(
                -1,
                326,
                "Unable to connect as the client id is already in use. "
                "Retry with a unique client id.",
            )
            client.close()
            return
        client.client_id = client_id
        client.send("managedAccounts", accountsList=self.account_id)
        client.send("nextValidId", orderId=self.broker.next_order_id)
        for code, text in FARM_STATUS:
            client.error(-1, code, text)

    def _on_reqIds(self, client, v) -> None:
        client.send("nextValidId", orderId=self.broker.next_order_id)

    def _on_reqCurrentTime(self, client, v) -> None:
        client.send("currentTime", time=int(self.clock.now().timestamp()))

    def _on_reqManagedAccts(self, client, v) -> None:
        client.send("managedAccounts", accountsList=self.account_id)

    # -- contracts ---------------------------------------------------------------------------

    def _instrument(self, client: ClientConnection, req_id: int, v: dict):
        """The one instrument a request's contract names; None after answering error 200."""
        found = resolve(v, self._today())
        if len(found) == 1:
            return found[0]
        if found:
            client.error(
                req_id,
                200,
                f"The contract description specified for {v.get('symbol')} is ambiguous: "
                f"{len(found)} contracts match; give the expiry, strike, right or conId",
            )
        else:
            client.error(req_id, 200, NO_SECURITY)
        return None

    def _today(self):
        return self.clock.now().astimezone(ET).date()

    def _on_reqContractDetails(self, client, v) -> None:
        found = resolve(v, self._today())
        if not found:
            client.error(v["reqId"], 200, NO_SECURITY)
            return
        for inst in found:
            values = contract_details_values(v["reqId"], inst, self._today())
            if v.get("secType") == "CONTFUT":  # TWS answers in the kind asked for
                values["secType"] = "CONTFUT"
            client.send("contractDetails", **values)
        client.send("contractDetailsEnd", reqId=v["reqId"])

    def _on_reqMatchingSymbols(self, client, v) -> None:
        descriptions = [symbol_sample_values(i) for i in matching_symbols(v["pattern"])]
        client.send("symbolSamples", reqId=v["reqId"], descriptions=descriptions)

    # -- market data -------------------------------------------------------------------------

    def _on_reqMarketDataType(self, client, v) -> None:
        kind = v["marketDataType"]
        if kind not in (1, 2, 3, 4):
            client.error(-1, 321, f"Invalid market data type {kind}: allowed are 1, 2, 3 and 4")
            return
        client.market_data_type = kind

    def _market_moved(self) -> None:
        """Re-check working orders against the market, then stream what changed."""
        self._process()
        self._pump_streams()

    async def _tick_loop(self) -> None:
        """Every TICK_INTERVAL: working orders are re-checked (a frozen clock only lets
        partially filled orders take the next displayed size) and every stream updates."""
        while True:
            await asyncio.sleep(TICK_INTERVAL)
            try:
                self._market_moved()
            except Exception:
                log.exception("market tick failed")

    def _on_reqHistoricalData(self, client, v) -> None:
        req_id = v["reqId"]
        found = self._instrument(client, req_id, v)
        if found is None:
            return
        try:
            end = parse_end_datetime(v["endDateTime"], self.clock.now())
        except ValueError as exc:
            client.error(req_id, 10314, f"End Date/Time: The date, time, or time-zone entered is "
                         f"invalid. The correct format is yyyymmdd hh:mm:ss xx/xxxx: {exc}")  # fmt: skip
            return
        try:
            request = self.market.bar_request(
                found.symbol,
                end,
                v["durationStr"],
                v["barSizeSetting"],
                v["whatToShow"] or "TRADES",
            )
        except HistoricalDataError as exc:
            client.error(req_id, exc.code, exc.message)
            return
        task = asyncio.get_running_loop().create_task(
            self._send_bars(client, v, end, request, found)
        )
        client.tasks.add(task)
        task.add_done_callback(client.tasks.discard)

    async def _send_bars(self, client, v, end, request, found) -> None:
        """Compute bars a few sessions at a time, letting other clients in between, so a long
        request never stalls the gateway; a client's requests take turns."""
        async with client.history_turn:
            await self._compute_bars(client, v, end, request, found)

    async def _compute_bars(self, client, v, end, request, found) -> None:
        try:
            parts: list = []
            for sessions in request.steps(HISTORY_STEP):
                parts += request.part(sessions)
                await asyncio.sleep(0)
                if client.closed:
                    return
            bars = request.finish(parts)
            await asyncio.sleep(0)  # grouping, formatting and encoding: one piece each
            start_text, end_text, rows = bar_rows(bars, end, v["barSizeSetting"], v["formatDate"])
            await asyncio.sleep(0)
            if client.closed:
                return
        except Exception:  # a bug must cost one request, never a silent wait
            log.exception("historical data for client %s failed", client.client_id)
            client.error(
                v["reqId"],
                162,
                "Historical Market Data Service error message:the paper gateway failed on this "
                "request; the gateway log has the details.",
            )
            return
        client.send(
            "historicalData",
            reqId=v["reqId"],
            startDateStr=start_text,
            endDateStr=end_text,
            bars=rows,
        )
        if v["keepUpToDate"]:
            self._keep_up_to_date(client, v["reqId"], found, v)

    def _on_reqHeadTimeStamp(self, client, v) -> None:
        found = self._instrument(client, v["reqId"], v)
        if found is None:
            return
        first = head_timestamp(found)  # the open of the symbol's first session, in UTC
        client.send(
            "headTimestamp", reqId=v["reqId"], headTimestamp=first.strftime("%Y%m%d-%H:%M:%S")
        )

    def _on_cancelHeadTimeStamp(self, client, v) -> None:
        """Answered at once; nothing to cancel."""

    # -- account -----------------------------------------------------------------------------

    def _send_account(self, client: ClientConnection, con_ids=None, rows=None) -> None:
        """Account values that changed since last sent, and portfolio rows (all, or con_ids)."""
        account = self.account_id
        for key, value, currency in self._changed_account_values(client.account_sent, rows):
            client.send(
                "updateAccountValue", key=key, val=value, currency=currency, accountName=account
            )
        for row in self._position_rows(con_ids, portfolio=True):
            client.send("updatePortfolio", **portfolio_values(row, account))
        client.send("updateAccountTime", timeStamp=self.clock.now().strftime("%H:%M"))

    def _position_rows(self, con_ids, portfolio: bool = False) -> list[PositionRow]:
        """Current rows: all (portfolio adds today's closed positions), or those of ``con_ids``."""
        if con_ids is not None:
            return self.broker.position_rows(con_ids)
        return self.broker.portfolio() if portfolio else self.broker.positions()

    def _on_reqAccountUpdates(self, client, v) -> None:
        if v["acctCode"] and v["acctCode"] != self.account_id:
            client.error(
                -1,
                321,
                f"Account {v['acctCode']} is not managed by this login; managed: {self.account_id}",
            )
            return
        client.account_updates = v["subscribe"]
        if v["subscribe"]:
            client.account_sent.clear()  # a new subscription starts with every value
            self._send_account(client)
            client.send("accountDownloadEnd", accountName=self.account_id)

    def _on_reqAccountUpdatesMulti(self, client, v) -> None:
        req_id = v["reqId"]
        if v["account"] not in ("", "All", self.account_id):
            client.error(req_id, 321, f"Account {v['account']} is not managed by this login")
            return
        client.account_multi[req_id] = {}
        self._send_account_multi(client, req_id)
        client.send("accountUpdateMultiEnd", reqId=req_id)

    def _send_account_multi(self, client, req_id: int, rows=None) -> None:
        """Account values for a reqAccountUpdatesMulti subscription, those changed since sent."""
        sent = client.account_multi.setdefault(req_id, {})
        for key, value, currency in self._changed_account_values(sent, rows):
            client.send(
                "accountUpdateMulti",
                reqId=req_id,
                account=self.account_id,
                modelCode="",
                key=key,
                value=value,
                currency=currency,
            )

    def _changed_account_values(self, sent: dict, rows=None) -> list[tuple[str, str, str]]:
        """Account value rows (``rows``, or the current ones) whose text differs from ``sent``
        (which is updated)."""
        changed = []
        for key, value, currency in rows if rows is not None else self._account_rows():
            if sent.get((key, currency)) != value:
                sent[(key, currency)] = value
                changed.append((key, value, currency))
        return changed

    def _account_rows(self) -> list[tuple[str, str, str]]:
        """Account value rows: BASE (USD) and each currency's balance, figures and rate."""
        return account_value_rows(*self.broker.account.report())

    def _on_cancelAccountUpdatesMulti(self, client, v) -> None:
        client.account_multi.pop(v["reqId"], None)

    def _on_reqAccountSummary(self, client, v) -> None:
        req_id = v["reqId"]
        wanted = {t.strip() for t in v["tags"].split(",") if t.strip()}
        everything = "$LEDGER" in wanted or "$LEDGER:ALL" in wanted
        by_currency = "$LEDGER:ALL" in wanted
        for tag, value, currency in self._account_rows():
            if currency not in ("", "USD") and not by_currency:
                continue
            if tag in wanted or everything:
                client.send(
                    "accountSummary",
                    reqId=req_id,
                    account=self.account_id,
                    tag=tag,
                    value=value,
                    currency=currency,
                )
        client.send("accountSummaryEnd", reqId=req_id)

    def _on_cancelAccountSummary(self, client, v) -> None:
        """Summaries are sent once; nothing stays subscribed."""

    def _on_reqPositions(self, client, v) -> None:
        client.positions_subscribed = True
        for row in self.broker.positions():
            client.send("position", **position_values(row, self.account_id))
        client.send("positionEnd")

    def _on_cancelPositions(self, client, v) -> None:
        client.positions_subscribed = False

    def _on_reqPositionsMulti(self, client, v) -> None:
        req_id = v["reqId"]
        client.positions_multi.add(req_id)
        for row in self.broker.positions():
            client.send(
                "positionMulti", reqId=req_id, modelCode="", **position_values(row, self.account_id)
            )
        client.send("positionMultiEnd", reqId=req_id)

    def _on_cancelPositionsMulti(self, client, v) -> None:
        client.positions_multi.discard(v["reqId"])

    # -- orders ------------------------------------------------------------------------------

    def _on_placeOrder(self, client, v) -> None:
        order_id = v["orderId"]
        if v.get("conditions"):
            client.error(
                order_id,
                201,
                "Order rejected - reason:Order conditions are not supported by the paper gateway",
            )
            return
        for flag, code, name in (
            ("eTradeOnly", 10268, "EtradeOnly"),
            ("firmQuoteOnly", 10269, "firmQuoteOnly"),
        ):
            if v.get(flag):  # legacy attributes TWS 10 refuses (old clients set them by default)
                client.error(order_id, code, f"The '{name}' order attribute is not supported.")
                return
        found = self._instrument(client, order_id, v)
        if found is None:
            return
        if v.get("account") and v["account"] != self.account_id:
            client.error(
                order_id,
                321,
                f"Error validating request:-'bW' : cause - The account "
                f"code {v['account']} is not valid; managed: {self.account_id}",
            )
            return
        ticket = ticket_from_request(
            v, client_id=client.client_id, instrument=found, account=self.account_id
        )
        warning = odd_lot_warning(ticket, found)
        if warning and not ticket.what_if:  # before the order's status, as TWS sends it
            client.error(order_id, 399, warning)
        try:
            self.broker.place_order(ticket)
        except OrderRejected as rejected:
            client.error(order_id, rejected.code, rejected.message)
            if rejected.ticket is not None and rejected.ticket.status == "Inactive":
                self._send_order(client, rejected.ticket)
            return
        log.info(
            "client %s: order %d %s %g %s %s%s",
            client.client_id,
            order_id,
            ticket.action,
            ticket.total_quantity,
            ticket.symbol,
            ticket.order_type,
            f" ref {ticket.order_ref!r}" if ticket.order_ref else "",
        )
        self._process()  # marketable orders fill now, not at the next market tick

    def _on_exerciseOptions(self, client, v) -> None:
        """Exercise or lapse a long option position (see :meth:`.broker.Broker.exercise`)."""
        req_id = v["reqId"]
        found = self._instrument(client, req_id, v)
        if found is None:
            return
        if v.get("account") and v["account"] != self.account_id:
            client.error(req_id, 321, f"Account {v['account']} is not managed by this login")
            return
        try:
            self.broker.exercise(
                client.client_id,
                found.con_id,
                v["exerciseAction"],
                v["exerciseQuantity"],
                bool(v["override"]),
            )
        except BrokerError as exc:
            client.error(req_id, exc.code, exc.message)

    def _process(self) -> None:
        """Match working orders; a fill the state file cannot record is undone and retried."""
        try:
            self.broker.process()
        except StateWriteError as exc:
            log.error("fills not booked, retried at the next tick: %s", exc.message)

    def _on_cancelOrder(self, client, v) -> None:
        try:
            self.broker.cancel_order(v["orderId"], client.client_id)
        except OrderRejected as rejected:
            client.error(v["orderId"], rejected.code, rejected.message)

    def _on_reqGlobalCancel(self, client, v) -> None:
        self.broker.global_cancel()

    def _on_reqOpenOrders(self, client, v) -> None:
        for ticket in self.broker.open_orders():
            if ticket.client_id == client.client_id:
                self._send_order(client, ticket)
        client.send("openOrderEnd")

    def _on_reqAllOpenOrders(self, client, v) -> None:
        for ticket in self.broker.open_orders():
            self._send_order(client, ticket)
        client.send("openOrderEnd")

    def _on_reqAutoOpenOrders(self, client, v) -> None:
        if client.client_id != 0:
            client.error(
                -1, 321, "Error validating request: reqAutoOpenOrders is only for client id 0"
            )

    def _on_reqCompletedOrders(self, client, v) -> None:
        for ticket in self.broker.completed_orders():
            client.send("completedOrder", **completed_order_values(ticket))
        client.send("completedOrdersEnd")

    def _on_reqExecutions(self, client, v) -> None:
        req_id = v["reqId"]
        try:
            since = parse_end_datetime(v["time"], self.clock.now()) if v["time"] else None
        except ValueError as exc:
            client.error(req_id, 321, f"Error validating request: execution filter time: {exc}")
            client.send("execDetailsEnd", reqId=req_id)  # the error says why nothing came
            return
        for execution, commission in self.broker.executions():
            if not _execution_matches(execution, v, since):
                continue
            client.send("execDetails", **execution_values(req_id, execution))
            client.send("commissionReport", **commission_values(commission))
        client.send("execDetailsEnd", reqId=req_id)

    def _send_order(self, client: ClientConnection, ticket: OrderTicket) -> None:
        client.send("openOrder", **open_order_values(ticket))
        if not ticket.what_if:
            client.send("orderStatus", **order_status_values(ticket))

    # -- broker events -> clients ------------------------------------------------------------

    def _owner(self, client_id: int | None) -> list[ClientConnection]:
        return [c for c in self.clients if c.client_id == client_id and not c.closed]

    def _on_broker_event(self, event) -> None:
        if isinstance(event, OrderUpdate):
            for client in self._owner(event.ticket.client_id):
                self._send_order(client, event.ticket)
                if event.ticket.status == "Cancelled":
                    client.error(
                        event.ticket.order_id, 202, "Order Canceled - reason:" + event.reason
                    )
        elif isinstance(event, WhatIf):
            for client in self._owner(event.ticket.client_id):
                client.send("openOrder", **open_order_values(event.ticket, event.state))
        elif isinstance(event, Fill):
            ex = event.execution
            log.info(
                "fill %s: %s %g %s at %.2f (order %d of client %d)",
                ex.exec_id, ex.side, ex.shares, ex.symbol, ex.price, ex.order_id, ex.client_id,
            )  # fmt: skip
            for client in self._owner(event.execution.client_id):
                client.send("execDetails", **execution_values(-1, event.execution))
                client.send("commissionReport", **commission_values(event.commission))
        elif isinstance(event, AccountChanged):
            # after the order and fill messages have gone out in their own write, as TWS sends
            # account updates after the execution: the client sees the fill without first
            # decoding two dozen account values
            asyncio.get_running_loop().call_soon(self._push_account, event.con_ids or None)

    def _push_account(self, con_ids) -> None:
        """After a fill: changed account values and the positions it touched, to subscribers."""
        rows = self._account_rows()
        for client in list(self.clients):
            if client.account_updates:
                self._send_account(client, con_ids, rows)
            for req_id in client.account_multi:
                self._send_account_multi(client, req_id, rows)
            if client.positions_subscribed or client.positions_multi:
                for row in self._position_rows(con_ids):
                    values = position_values(row, self.account_id)
                    if client.positions_subscribed:
                        client.send("position", **values)
                    for req_id in client.positions_multi:
                        client.send("positionMulti", reqId=req_id, modelCode="", **values)


def _execution_matches(execution, f: dict, since: datetime | None) -> bool:
    """TWS's ExecutionFilter: empty fields match everything; ``since`` is the parsed time."""
    if f.get("clientId") and execution.client_id != f["clientId"]:
        return False
    if f.get("acctCode") and execution.account != f["acctCode"]:
        return False
    if f.get("symbol") and execution.symbol != f["symbol"].upper():
        return False
    if f.get("secType") and f["secType"] != "STK":
        return False
    if f.get("side") and execution.side != {"BUY": "BOT", "SELL": "SLD"}.get(
        f["side"].upper(), f["side"].upper()
    ):
        return False
    return since is None or execution.time >= since


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
