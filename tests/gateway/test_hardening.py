"""Never hang, never lie: requests the gateway does not serve, impossible values, floods of
half-open sockets, slow readers, long historical requests and fuzzed frames."""

from __future__ import annotations

import asyncio
import math
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ib_async import IB, LimitOrder, MarketOrder, ScannerSubscription, Stock
from ib_async.wrapper import RequestError
from support import CLOCK, SEED, RawClient, connect_ib, wait_until

from ibkr_nb.gateway import server
from ibkr_nb.gateway.broker import Broker
from ibkr_nb.gateway.market import Clock, Market
from ibkr_nb.gateway.messages import REQUESTS, UNSUPPORTED
from ibkr_nb.gateway.protocol import encode_message, frame
from ibkr_nb.gateway.server import PaperGateway

AAPL = Stock("AAPL", "SMART", "USD")


def errors_of(ib: IB) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
    return seen


def returns_quickly(ib: IB, awaitable, seconds: float = 3.0):
    """The call's result, or the RequestError it raised; fails if it does not return."""

    async def run():
        try:
            return await asyncio.wait_for(awaitable, seconds)
        except RequestError as exc:
            return exc

    return ib.run(run())


def test_reference_and_stream_requests_return_at_once(gateway, ib):
    contract = ib.qualifyContracts(AAPL)[0]
    calls = {
        "reqSecDefOptParams": ib.reqSecDefOptParamsAsync("AAPL", "", "STK", contract.conId),
        "reqHistoricalTicks": ib.reqHistoricalTicksAsync(
            contract, "20261124 10:00:00 US/Eastern", "", 100, "TRADES", True
        ),
        "reqFundamentalData": ib.reqFundamentalDataAsync(contract, "ReportSnapshot"),
        "reqScannerSubscription": ib.reqScannerDataAsync(
            ScannerSubscription(
                instrument="STK", locationCode="STK.US.MAJOR", scanCode="TOP_PERC_GAIN"
            )
        ),  # fmt: skip
        "reqMktDepthExchanges": ib.reqMktDepthExchangesAsync(),
        "reqNewsProviders": ib.reqNewsProvidersAsync(),
        "reqUserInfo": ib.reqUserInfoAsync(),
        "reqScannerParameters": ib.reqScannerParametersAsync(),
    }
    answers = {name: returns_quickly(ib, call) for name, call in calls.items()}
    assert not any(isinstance(answer, RequestError) for answer in answers.values()), answers
    assert answers["reqSecDefOptParams"] and len(answers["reqHistoricalTicks"]) == 100
    assert "simulated" in answers["reqFundamentalData"]
    assert answers["reqScannerSubscription"] and answers["reqNewsProviders"]
    assert answers["reqMktDepthExchanges"]
    assert "ScanParameterResponse" in answers["reqScannerParameters"]
    assert ib.reqCurrentTime() == CLOCK  # and the connection is fine


def test_every_unsupported_request_is_answered_with_its_own_id(gateway):
    raw = RawClient(gateway.port, 31)
    for msg_id, entry in UNSUPPORTED.items():
        assert msg_id not in REQUESTS
        if not entry.code or entry.id_field is None:
            continue
        fields = [msg_id, 1, 1, 1, 1, 1, 1]
        fields[entry.id_field] = 4000 + msg_id
        raw.send(*fields)
        reply = raw.read_until(lambda f: f[0] != "4" or not 2100 <= int(f[3]) < 2200)
        assert str(4000 + msg_id) in reply[:3], (entry.name, reply)
    raw.close()


@pytest.mark.parametrize(
    "quantity, order_id, code",
    [
        (float("nan"), None, 320),  # ib_async writes "nan": not a number TWS reads
        (math.inf, None, 201),  # ib_async writes "Infinite"
        (1e308, None, 383),
        (0.5, None, 201),
        (1e-9, None, 201),
        (1, -5, 201),
        (1, 0, 201),
        (1, 2**31, 201),
        (1, 10**40, 201),
    ],
)
def test_impossible_order_values_are_refused_with_the_order_id(gateway, ib, quantity, order_id,
                                                               code):  # fmt: skip
    seen = errors_of(ib)
    contract = ib.qualifyContracts(AAPL)[0]
    before = ib.accountValues()
    order = MarketOrder("BUY", quantity)
    if order_id is None:
        trade = ib.placeOrder(contract, order)
        wait_until(ib, trade.isDone)
        assert trade.orderStatus.status == "Cancelled" and not trade.fills
        order_id = trade.order.orderId
    else:  # ib_async cannot track ids <= 0 itself: send it as a raw client call
        ib.client.placeOrder(order_id, contract, order)
    wait_until(ib, lambda: (order_id, code) in {(r, c) for r, c, _ in seen})
    ib.reqCompletedOrders(apiOnly=False)  # still decodes: nothing unencodable was stored
    assert ib.reqCurrentTime() == CLOCK and ib.accountValues() == before


def test_the_gateway_logs_connections_orders_fills_and_errors_at_info(gateway, caplog):
    caplog.set_level("INFO", logger="ibkr_nb.gateway")
    ib = connect_ib(gateway, client_id=44)
    trade = ib.placeOrder(ib.qualifyContracts(AAPL)[0], MarketOrder("BUY", 3, orderRef="log-me"))
    wait_until(ib, trade.isDone)
    ib.placeOrder(ib.qualifyContracts(AAPL)[0], MarketOrder("BUY", 0.5))
    ib.sleep(0.2)
    ib.disconnect()
    wait_until_gone(gateway, 44)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "connection from 127.0.0.1" in text
    assert "client 44: order" in text and "BUY 3 AAPL MKT ref 'log-me'" in text
    assert "fill " in text and "BOT 3 AAPL" in text
    assert "client 44: error 201" in text and "client 44 disconnected" in text


def test_modifying_a_filled_order_is_104(gateway, ib):
    seen = errors_of(ib)
    contract = ib.qualifyContracts(AAPL)[0]
    trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
    wait_until(ib, trade.isDone)
    trade.order.totalQuantity = 2
    ib.client.placeOrder(trade.order.orderId, contract, trade.order)  # ib.placeOrder refuses
    wait_until(ib, lambda: (trade.order.orderId, 104) in {(r, c) for r, c, _ in seen})


@pytest.mark.parametrize(
    "end, code",
    [
        ("20250101 10:00:00 US/Eastrn", 10314),
        ("99991231 23:59:59 Etc/GMT+12", 10314),  # past year 9999 in UTC
        ("00010101 00:00:00 Pacific/Kiritimati", 162),  # before the simulated history
        ("2025", 10314),
    ],
)
def test_bad_time_zones_and_dates_are_refused_not_dropped(gateway, ib, end, code):
    contract = ib.qualifyContracts(AAPL)[0]
    with pytest.raises(RequestError) as info:
        ib.reqHistoricalData(contract, end, "1 D", "1 hour", "TRADES", True)
    assert info.value.code == code
    raw = RawClient(gateway.port, 32)
    raw.send(7, 3, 5, 0, "", end, "", "", "", "")  # reqExecutions with that filter time
    if code == 10314:
        assert raw.error_code() == 321
    raw.read_until(lambda f: f[0] == "55")  # and the request ends
    raw.close()
    assert ib.reqCurrentTime() == CLOCK


def test_a_hundred_market_data_lines_then_101(gateway, ib):
    seen = errors_of(ib)
    contract = ib.qualifyContracts(AAPL)[0]
    tickers = [ib.reqMktData(contract) for _ in range(100)]
    ib.sleep(0.3)
    assert not [c for _, c, _ in seen if c == 101]
    ib.reqMktData(Stock("MSFT", "SMART", "USD", conId=272093))
    wait_until(ib, lambda: any(c == 101 for _, c, _ in seen))
    ib.cancelMktData(tickers[0].contract)
    assert ib.reqCurrentTime() == CLOCK


def test_a_flood_of_half_open_handshakes_times_out_and_others_still_connect(gateway, monkeypatch):
    monkeypatch.setattr(server, "HANDSHAKE_TIMEOUT", 1.0)
    socks = []
    for i in range(300):
        s = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
        if i % 3 == 1:
            s.sendall(b"API\0")  # half a handshake
        elif i % 3 == 2:
            s.sendall(b"API\0" + b"\0\0\0\x20v15")  # a version announcement cut short
        socks.append(s)
    ib = connect_ib(gateway)
    trade = ib.placeOrder(ib.qualifyContracts(AAPL)[0], MarketOrder("BUY", 1))
    wait_until(ib, trade.isDone)
    assert trade.orderStatus.status == "Filled"
    ib.sleep(1.5)
    for s in socks:
        s.settimeout(3)
        assert s.recv(100) == b""  # the gateway closed it
        s.close()
    ib.disconnect()


def test_too_many_clients_get_a_clear_refusal(gateway, monkeypatch):
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 2)
    first, second = connect_ib(gateway), connect_ib(gateway)
    raw = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    raw.sendall(b"API\0" + frame(b"v157..178"))
    data = b""
    while chunk := raw.recv(65536):
        data += chunk
    assert b"502\0" in data and b"at most 2 API clients" in data
    first.disconnect()
    second.disconnect()


def test_a_client_that_does_not_read_is_dropped_and_others_are_served(monkeypatch):
    monkeypatch.setattr(server, "MAX_OUTBOX", 64 * 1024)
    late = CLOCK.replace(hour=21, minute=30)  # 16:30 New York: the whole session is history
    with PaperGateway(port=0, seed=SEED, clock_start=late, fixed_clock=True) as gw:
        raw = RawClient(gw.port, 33)
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        contract = [265598, "AAPL", "STK", "", 0.0, "", "", "SMART", "", "USD", "", "", 0]
        for req in range(1, 41):  # 7,200 one-second bars (~0.4 MB) each, never read
            raw.send(20, req, *contract, "", "1 secs", "9000 S", 1, "TRADES", 1, 0, "")
        ib = connect_ib(gw)
        wait_until(ib, lambda: all(c.client_id != 33 for c in gw.clients), timeout=30)
        assert ib.reqCurrentTime() == late
        ib.disconnect()
        raw.close()


def test_a_long_historical_request_does_not_hold_up_other_clients(gateway):
    reader, trader = connect_ib(gateway), connect_ib(gateway)
    contract = trader.qualifyContracts(AAPL)[0]
    bars = reader.reqHistoricalDataAsync(contract, "", "8 Y", "1 day", "TRADES", True)
    task = asyncio.ensure_future(bars)
    trade = trader.placeOrder(contract, MarketOrder("BUY", 1))
    wait_until(trader, trade.isDone, timeout=10)
    assert not task.done()  # the order went through while the bars were being computed
    wait_until(reader, task.done, timeout=60)
    assert len(task.result()) > 2000
    reader.disconnect()
    trader.disconnect()


def test_ten_years_of_one_minute_bars_is_refused_like_tws(gateway, ib):
    contract = ib.qualifyContracts(AAPL)[0]
    with pytest.raises(RequestError) as info:
        ib.reqHistoricalData(contract, "", "10 Y", "1 min", "TRADES", True)
    assert info.value.code == 162 and "Time length exceed max" in info.value.message


# ---- fuzzing ---------------------------------------------------------------------------------

FIELD = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "nan", "Infinite", "-inf", "1e308", "AAPL", "STK", "SMART", "USD",
                     "BUY", "MKT", "LMT", "20250101 10:00:00 US/Eastrn", "99991231 23:59:59",
                     "1 D", "1 min", "10000 Y", "TRADES", "\xff", "x" * 300]),
    st.text(max_size=20),
)  # fmt: skip
MSG_IDS = st.sampled_from(sorted(set(REQUESTS) | set(UNSUPPORTED) | {0, 250}))
FRAMES = st.lists(st.tuples(MSG_IDS, st.lists(FIELD, max_size=40)), min_size=1, max_size=6)


def test_fuzzed_frames_leave_a_gateway_that_serves_and_a_state_that_loads(tmp_path):
    state = tmp_path / "account.json"
    gw = PaperGateway(port=0, seed=SEED, clock_start=CLOCK, fixed_clock=True, state_file=state)
    with gw:

        @settings(max_examples=60, suppress_health_check=list(HealthCheck))
        @given(frames=FRAMES)
        def fuzz(frames):
            raw = RawClient(gw.port, 40)
            try:
                for msg_id, fields in frames:
                    raw.sock.sendall(encode_message([msg_id, *fields]))
                raw.send(49, 1)  # the connection must still answer
                raw.read_until(lambda f: f[0] == "49")
            finally:
                raw.close()
            wait_until_gone(gw, 40)

        fuzz()
        ib = connect_ib(gw)
        trade = ib.placeOrder(ib.qualifyContracts(AAPL)[0], LimitOrder("BUY", 1, 1.0))
        wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
        ib.reqCompletedOrders(apiOnly=False)
        ib.reqExecutions()
        ib.disconnect()
    reloaded = Broker(Market(SEED, Clock(CLOCK, fixed=True)), SEED, state_file=state)
    assert reloaded.open_orders()
    reloaded.close()


def wait_until_gone(gw: PaperGateway, client_id: int) -> None:
    for _ in range(200):
        if all(c.client_id != client_id for c in list(gw.clients)):
            return
        time.sleep(0.01)  # the gateway runs in its own thread
    raise AssertionError(f"client {client_id} still connected")
