"""The listed instruments beyond stocks: FX, indices, futures, options; their quotes and bars."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibkr_nb.gateway.instruments import (
    FX_PAIRS,
    INDICES,
    OPTIONABLE,
    UNIVERSE,
    future_months,
    instrument_by_con_id,
    listed_expiries,
    listed_strikes,
    option,
    option_chain,
    resolve,
    third_friday,
)
from ibkr_nb.gateway.market import Clock, Market, years_to_expiry
from ibkr_nb.gateway.pricing import forward_price

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)


@pytest.fixture
def market() -> Market:
    return Market(7, Clock(NOW, fixed=True))


def test_stock_universe_is_unchanged_and_the_rest_is_listed_beside_it():
    assert all(i.sec_type == "STK" for i in UNIVERSE.values())
    assert {i.sec_type for i in FX_PAIRS.values()} == {"CASH"}
    assert set(INDICES) == {"SPX", "NDX", "VIX"}


def test_fx_pair_resolves_from_symbol_and_currency_or_local_symbol():
    [eur] = resolve({"secType": "CASH", "symbol": "EUR", "currency": "USD"}, TODAY)
    assert (eur.tws_symbol, eur.currency, eur.exchange, eur.min_tick) == (
        "EUR",
        "USD",
        "IDEALPRO",
        0.00005,
    )
    assert resolve({"secType": "CASH", "localSymbol": "EUR.USD"}, TODAY) == [eur]
    assert resolve({"secType": "CASH", "symbol": "EUR", "currency": "JPY"}, TODAY) == []


def test_futures_are_quarterly_third_fridays():
    months = future_months(TODAY)
    assert months[0] == date(2026, 12, 18) and len(months) == 5
    assert all(d.month % 3 == 0 and d == third_friday(d.year, d.month) for d in months)
    found = resolve({"secType": "FUT", "symbol": "ES", "exchange": "GLOBEX"}, TODAY)
    assert len(found) == 5  # ambiguous without a month
    [dec] = resolve(
        {"secType": "FUT", "symbol": "ES", "lastTradeDateOrContractMonth": "202612"}, TODAY
    )
    assert (dec.symbol, dec.multiplier, dec.min_tick, dec.underlying) == ("ESZ6", 50.0, 0.25, "SPX")


def test_option_filters_and_trading_classes():
    weekly, monthly = date(2026, 11, 27), date(2026, 12, 18)
    assert weekly in listed_expiries(TODAY) and monthly in listed_expiries(TODAY)
    assert option("SPX", weekly, 5800.0, "C").trading_class == "SPXW"
    assert option("SPX", monthly, 5800.0, "C").trading_class == "SPX"
    query = {"secType": "OPT", "symbol": "SPX", "lastTradeDateOrContractMonth": "20261218"}
    both = resolve({**query, "strike": 5800.0}, TODAY)
    assert sorted(o.right for o in both) == ["C", "P"]
    [put] = resolve({**query, "strike": 5800.0, "right": "P", "tradingClass": "SPX"}, TODAY)
    assert put.symbol == "SPX   261218P05800000" and put.multiplier == 100.0
    assert resolve({**query, "strike": 5801.0}, TODAY) == []  # not on the strike grid
    assert resolve({**query, "strike": 5800.0, "tradingClass": "SPXW"}, TODAY) == []


def test_unknown_security_types_and_symbols_resolve_to_nothing():
    assert resolve({"secType": "BOND", "symbol": "T"}, TODAY) == []
    assert resolve({"secType": "OPT", "symbol": "ZZZZ"}, TODAY) == []
    assert resolve({"secType": "STK", "symbol": "AAPL", "currency": "EUR"}, TODAY) == []
    assert resolve({"conId": 265598, "symbol": "MSFT"}, TODAY) == []  # conId and symbol disagree


@given(
    st.sampled_from(OPTIONABLE),
    st.integers(0, len(listed_expiries(TODAY)) - 1),
    st.data(),
    st.sampled_from("CP"),
)
def test_option_con_ids_decode_to_the_same_contract(underlying, e, data, right):
    expiry = listed_expiries(TODAY)[e]
    strike = data.draw(st.sampled_from(listed_strikes(underlying)))
    listed = option(underlying, expiry, strike, right)
    assert instrument_by_con_id(listed.con_id) == listed
    assert 0 < listed.con_id < 2**31


def test_future_con_ids_decode():
    for months in future_months(TODAY):
        [fut] = resolve(
            {"secType": "FUT", "symbol": "NQ", "lastTradeDateOrContractMonth": f"{months:%Y%m%d}"},
            TODAY,
        )
        assert instrument_by_con_id(fut.con_id) == fut


def test_chain_is_expiries_times_strikes_times_rights():
    chain = option_chain("AAPL", TODAY)
    assert len(chain) == len(listed_expiries(TODAY)) * len(listed_strikes("AAPL")) * 2
    assert len({o.con_id for o in chain}) == len(chain)


def test_derived_quotes_are_consistent(market):
    [es] = resolve(
        {"secType": "FUT", "symbol": "ES", "lastTradeDateOrContractMonth": "202612"}, TODAY
    )
    spx = market.quote("SPX")
    fut = market.quote(es.symbol)
    fair = forward_price(
        (spx.bid + spx.ask) / 2, years_to_expiry(es.expiry, NOW.timestamp()), 0.045, 0.013
    )
    assert fut.bid <= fut.last <= fut.ask and fut.ask - fut.bid == 0.25
    assert abs(fut.last - fair) <= 0.25
    for right in "CP":
        q = market.quote(option("SPX", date(2026, 12, 18), 5250.0, right).symbol)
        assert 0 < q.bid <= q.last <= q.ask and not math.isnan(q.close)


def test_an_option_follows_its_underlying(market):
    put = option("AAPL", date(2026, 12, 18), 175.0, "P")
    before = market.quote(put.symbol).last
    market.set_price("AAPL", 150.0)
    after = market.quote(put.symbol).last
    assert after > before + 15  # the put is now 25 in the money


def test_option_and_future_bars_map_the_underlying(market):
    call = option("SPX", date(2026, 12, 18), 5250.0, "C")
    bars = market.bars(call.symbol, NOW, "1 D", "1 hour", "TRADES")
    assert bars and all(b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in bars)


@pytest.mark.parametrize("what", ["HISTORICAL_VOLATILITY", "OPTION_IMPLIED_VOLATILITY", "BID_ASK"])
def test_more_bar_types(market, what):
    bars = market.bars("AAPL", NOW, "30 D", "1 day", what)
    assert len(bars) == 30 and all(0 < b.close < 5 or what == "BID_ASK" for b in bars)
