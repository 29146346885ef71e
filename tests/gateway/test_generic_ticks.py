"""reqMktData generic ticks through real ib_async: each id ib_async users commonly request is
either served (the ticker fields it fills are set, finite and plausible) or refused with TWS's
321 error carrying the request id."""

from __future__ import annotations

from datetime import date

import pytest
from ib_async import ContFuture, Index, Stock
from support import wait_until

from ibkr_nb.gateway.generic_ticks import GENERIC_TICKS, dividends, parse_generic_list
from ibkr_nb.gateway.instruments import LISTED

AAPL = Stock("AAPL", "SMART", "USD")
SPX = Index("SPX", "CBOE")
ES = ContFuture("ES", "CME")


def positive(*names):
    return lambda t: all(getattr(t, n) == getattr(t, n) and getattr(t, n) > 0 for n in names)


# (generic tick, contract, check on the ticker once the tick arrived)
SERVED = [
    (100, AAPL, positive("callVolume", "putVolume")),
    (101, AAPL, positive("callOpenInterest", "putOpenInterest")),
    (104, AAPL, lambda t: 0 < t.histVolatility < 2),
    (105, AAPL, positive("avOptionVolume")),
    (106, AAPL, lambda t: 0 < t.impliedVolatility < 2),
    (162, SPX, lambda t: 0 < t.indexFuturePremium < 0.05 * t.last),
    (
        165,
        AAPL,
        lambda t: (
            t.low52week <= t.low26week <= t.low13week <= t.low
            and t.high <= t.high13week <= t.high26week <= t.high52week
            and t.avVolume > 0
        ),
    ),
    (221, AAPL, lambda t: t.markPrice == t.markPrice and t.bid <= t.markPrice <= t.ask),
    (225, AAPL, lambda t: t.auctionVolume > 0 and t.auctionPrice == t.open),
    (233, AAPL, lambda t: t.rtVolume > 0 and t.rtTime is not None and t.vwap > 0),
    (236, AAPL, lambda t: t.shortable == 3.0 and t.shortableShares > 0),
    (258, AAPL, lambda t: t.fundamentalRatios is not None and t.fundamentalRatios.PEEXCLXOR > 0),
    (293, AAPL, positive("tradeCount")),
    (294, AAPL, positive("tradeRate")),
    (295, AAPL, positive("volumeRate")),
    (318, AAPL, lambda t: t.lastRthTrade == t.last),
    (375, AAPL, positive("rtTradeVolume")),
    (411, AAPL, lambda t: 0 < t.rtHistVolatility < 2),
    (
        456,
        AAPL,
        lambda t: (
            t.dividends is not None
            and t.dividends.next12Months == pytest.approx(4 * t.dividends.nextAmount)
            and t.dividends.nextDate > date(2026, 11, 24)
        ),
    ),
    (588, ES, positive("futuresOpenInterest")),
    (
        595,
        AAPL,
        lambda t: 0 < t.volumeRate3Min <= t.volumeRate5Min <= t.volumeRate10Min <= t.volume,
    ),
    (619, AAPL, lambda t: t.bid - 1 < t.creditmanSlowMarkPrice < t.ask + 1),
]


@pytest.mark.parametrize(("tick", "contract", "check"), SERVED, ids=[str(s[0]) for s in SERVED])
def test_a_served_generic_tick_fills_its_ticker_fields(ib, tick, contract, check):
    [contract] = ib.qualifyContracts(contract)
    ticker = ib.reqMktData(contract, str(tick))
    wait_until(ib, lambda: ticker.last == ticker.last and check(ticker), timeout=5)
    ib.cancelMktData(contract)


def test_news_ticks_292_bring_the_simulated_headlines_of_the_providers_named(ib):
    [aapl] = ib.qualifyContracts(AAPL)
    news = []
    ib.tickNewsEvent += news.append
    ticker = ib.reqMktData(aapl, "mdoff,292:BRFG+DJNL")
    wait_until(ib, lambda: len(news) >= 2)
    ib.sleep(0.5)
    assert sorted(n.providerCode for n in news) == ["BRFG", "DJNL"]
    assert all("simulated" in n.headline and n.articleId for n in news)
    assert ticker.bid != ticker.bid  # mdoff: no top of book
    article = ib.reqNewsArticle(news[0].providerCode, news[0].articleId)
    assert "Apple" in article.articleText or "APPLE" in article.articleText


@pytest.mark.parametrize(
    ("ticks", "contract", "refused"),
    [
        ("256", AAPL, "256"),  # not a tick TWS serves for stocks
        ("162", AAPL, "162"),  # index future premium: indices and futures only
        ("233,588", AAPL, "588"),  # futures open interest: futures only
        ("456", SPX, "456"),  # dividends: stocks only
        ("233,abc", AAPL, "abc"),
    ],
)
def test_a_tick_not_served_for_the_contract_is_refused_with_321_and_the_req_id(
    ib, errors, ticks, contract, refused
):
    [contract] = ib.qualifyContracts(contract)
    ticker = ib.reqMktData(contract, ticks)
    wait_until(ib, lambda: any(e[1] == 321 for e in errors))
    [(req_id, _, text)] = [e for e in errors if e[1] == 321]
    assert req_id > 0 and f"generic tick list of {refused}." in text
    assert f"Legal ones for ({contract.secType})" in text
    ib.sleep(0.3)
    assert ticker.last != ticker.last  # nothing streams for a refused request


def test_every_listed_generic_tick_has_a_test():
    tested = {s[0] for s in SERVED} | {292}
    assert tested == set(GENERIC_TICKS)


def test_generic_list_parsing():
    parsed = parse_generic_list(" 233, mdoff,292:BRFG+DJNL,,x1")
    assert parsed.ticks == (233, 292) and parsed.providers == ("BRFG", "DJNL")
    assert parsed.market_data_off and parsed.bad == ("x1",)


def test_simulated_dividends_are_quarterly_and_the_next_date_is_ahead():
    stocks = [i for i in LISTED.values() if i.sec_type == "STK"]
    for inst in stocks:
        past12, next12, next_date, amount = dividends(inst, date(2026, 11, 24)).split(",")
        if next_date:
            assert float(next12) == pytest.approx(4 * float(amount))
            assert "20261124" < next_date <= "20270224"
        else:
            assert (past12, next12, amount) == ("0", "0", "")
    assert any(not dividends(i, date(2026, 11, 24)).endswith(",,") for i in stocks)


def test_generic_ticks_are_the_same_twice_under_a_frozen_clock(gateway):
    """The first 60 ticks (type, price, size) of every served stock tick, on two connections."""
    from support import connect_ib

    stock_ticks = ",".join(str(s[0]) for s in SERVED if s[1] is AAPL)
    runs = []
    for _ in range(2):
        ib = connect_ib(gateway)
        [aapl] = ib.qualifyContracts(AAPL)
        seen: list = []
        ticker = ib.reqMktData(aapl, stock_ticks)
        ticker.updateEvent += lambda t, seen=seen: seen.extend(
            (d.tickType, d.price, d.size) for d in t.ticks
        )
        wait_until(ib, lambda seen=seen: len(seen) >= 60, timeout=5)
        runs.append((seen[:60], ticker.dividends, ticker.low52week, ticker.auctionVolume))
        ib.disconnect()
    assert runs[0] == runs[1]
    assert {48, 54, 55, 56, 77} <= {tick_type for tick_type, _, _ in runs[0][0]}
