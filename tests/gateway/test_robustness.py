"""Bad input on the wire: the gateway answers or closes only the faulty connection, never crashes."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from ib_async import IB, MarketOrder, Stock
from support import CLOCK, RawClient, connect_ib

from ibkr_nb.gateway.protocol import decode_fields, encode_message, frame


@pytest.fixture
def raw(gateway):
    client = RawClient(gateway.port, 21)
    yield client
    client.close()


def assert_still_serving(gateway) -> None:
    ib = connect_ib(gateway)
    try:
        assert ib.reqCurrentTime() == CLOCK
    finally:
        ib.disconnect()


def test_unknown_message_id_gets_an_error_and_the_connection_stays(gateway, raw):
    raw.send(250, 1, 2, 3)
    assert raw.error_code() == 503
    raw.send(49, 1)  # reqCurrentTime still answered on the same socket
    assert raw.read_until(lambda f: f[0] == "49")[2] == str(int(CLOCK.timestamp()))


def test_field_of_the_wrong_type_gets_error_320(gateway, raw):
    raw.send(62, 1, "not-a-number", "All", "NetLiquidation")
    assert raw.error_code() == 320
    raw.send(49, 1)
    raw.read_until(lambda f: f[0] == "49")


def test_unparseable_value_gets_error_321_and_the_connection_stays(gateway, raw):
    raw.send(7, 3, 5, 0, "", "yesterday-ish", "", "", "", "")  # reqExecutions, bad time filter
    assert raw.error_code() == 321
    raw.send(49, 1)
    raw.read_until(lambda f: f[0] == "49")


def test_missing_fields_get_error_320(gateway, raw):
    raw.send(9, 8)  # reqContractDetails with nothing after the version
    assert raw.error_code() == 320


def test_length_prefix_over_16_mib_closes_only_that_connection(gateway, raw):
    raw.sock.sendall(struct.pack(">I", 16 * 1024 * 1024 + 1) + b"x" * 100)
    assert raw.closed()
    assert_still_serving(gateway)


def test_malformed_frames_and_garbage_handshake(gateway):
    bad = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    bad.sendall(b"GET / HTTP/1.1\r\n\r\n")
    bad.settimeout(5)
    assert bad.recv(100) == b""  # closed
    bad.close()
    no_version = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    no_version.sendall(b"API\0" + frame(b"hello"))
    assert no_version.recv(100) == b""
    no_version.close()
    assert_still_serving(gateway)


def test_binary_garbage_inside_a_frame(gateway, raw):
    raw.sock.sendall(frame(b"\xff\xfe\x00\x01\x02"))
    assert raw.error_code() in (320, 503)
    raw.sock.sendall(frame(b""))  # an empty frame
    raw.send(49, 1)
    raw.read_until(lambda f: f[0] == "49")


def test_requests_before_start_api_are_refused(gateway):
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    sock.sendall(b"API\0" + frame(b"v157..178"))
    sock.recv(100)
    sock.sendall(encode_message([49, 1]))
    (size,) = struct.unpack(">I", sock.recv(4))
    fields = decode_fields(sock.recv(size))
    assert fields[:4] == ["4", "2", "-1", "321"]
    sock.close()


def test_client_that_disconnects_mid_message(gateway):
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    sock.sendall(b"API\0" + frame(b"v157..178"))
    sock.recv(100)
    sock.sendall(struct.pack(">I", 500) + b"3\0" + b"1" * 40)  # half a placeOrder
    sock.close()
    assert_still_serving(gateway)


def test_order_conditions_are_refused_cleanly(gateway, ib):
    from ib_async import PriceCondition

    order = MarketOrder("BUY", 1)
    order.conditions = [PriceCondition(price=1.0, conId=265598, exch="SMART")]
    seen: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append(code)
    trade = ib.placeOrder(ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))[0], order)
    ib.sleep(0.3)
    assert 201 in seen  # refused as an order, not as a malformed message
    assert not trade.fills
    assert ib.reqCurrentTime() == CLOCK


def test_thirty_clients_at_once(gateway):
    async def one(client_id: int) -> float:
        ib = IB()
        await ib.connectAsync("127.0.0.1", gateway.port, clientId=client_id, timeout=10)
        try:
            (contract,) = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
            (ticker,) = await ib.reqTickersAsync(contract)
            return ticker.last
        finally:
            ib.disconnect()

    async def all_of_them():
        return await asyncio.gather(*(one(100 + i) for i in range(30)))

    lasts = asyncio.new_event_loop().run_until_complete(all_of_them())
    assert len(lasts) == 30 and len(set(lasts)) == 1
    assert_still_serving(gateway)


def test_account_state_survives_bad_input(gateway, raw, ib):
    before = sorted((p.contract.symbol, p.position) for p in ib.reqPositions())
    raw.send(3, "x", "y")  # a placeOrder with a non-numeric order id
    assert raw.error_code() == 320
    raw.sock.sendall(struct.pack(">I", 20) + b"3\0" + b"\xff" * 18)
    raw.error_code()
    assert sorted((p.contract.symbol, p.position) for p in ib.reqPositions()) == before
