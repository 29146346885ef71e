"""The simulated market: universe, clock, deterministic quotes and bars."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibkr_nb.gateway.market import (
    ET,
    UNIVERSE,
    Clock,
    HistoricalDataError,
    Market,
    head_timestamp,
    instrument,
    instrument_by_con_id,
    is_open,
    matching_symbols,
    next_session_close,
    parse_bar_size,
    parse_duration,
    trading_phase,
)

# Wednesday 2024-06-12, 11:00 New York (15:00 UTC), market open.
START = datetime(2024, 6, 12, 15, 0, tzinfo=UTC)


def et(y, mo, d, h=0, mi=0, s=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=ET)


@pytest.fixture
def clock() -> Clock:
    return Clock(START, fixed=True)


@pytest.fixture
def market(clock) -> Market:
    return Market(7, clock)


# ---- universe --------------------------------------------------------------------------------


def test_universe_has_real_con_ids_and_exchanges():
    assert len(UNIVERSE) >= 24
    expected = {
        "AAPL": (265598, "NASDAQ"),
        "MSFT": (272093, "NASDAQ"),
        "IBM": (8314, "NYSE"),
        "SPY": (756733, "ARCA"),
        "QQQ": (320227571, "NASDAQ"),
        "NVDA": (4815747, "NASDAQ"),
        "JPM": (1520593, "NYSE"),
    }
    for sym, (con_id, exch) in expected.items():
        inst = UNIVERSE[sym]
        assert (inst.con_id, inst.primary_exchange) == (con_id, exch)
    assert len({i.con_id for i in UNIVERSE.values()}) == len(UNIVERSE)
    assert all(i.min_tick == 0.01 and i.base_price > 1 for i in UNIVERSE.values())


def test_instrument_lookups():
    assert instrument("aapl") is UNIVERSE["AAPL"]
    assert instrument(" Msft ") is UNIVERSE["MSFT"]
    assert instrument("NOPE") is None
    assert instrument("") is None
    assert instrument_by_con_id(8314) is UNIVERSE["IBM"]
    assert instrument_by_con_id(1) is None


def test_matching_symbols_ranks_and_limits():
    assert matching_symbols("MSFT")[0].symbol == "MSFT"
    assert [i.symbol for i in matching_symbols("ms")][:1] == ["MSFT"]
    assert matching_symbols("apple")[0].symbol == "AAPL"
    assert "BAC" in [i.symbol for i in matching_symbols("bank")]
    assert len(matching_symbols("a")) <= 16
    assert matching_symbols("") == []
    assert matching_symbols("zzzz") == []


# ---- clock -----------------------------------------------------------------------------------


def test_fixed_clock_moves_only_when_told():
    c = Clock(START, fixed=True)
    assert c.now() == START and c.now().tzinfo is not None
    time.sleep(0.01)
    assert c.now() == START
    assert c.advance(90) == START + timedelta(seconds=90)
    assert c.set(START + timedelta(days=1)) == START + timedelta(days=1)
    with pytest.raises(ValueError):
        c.advance(-1)


def test_running_clock_and_naive_start():
    c = Clock(datetime(2024, 6, 12, 15, 0), fixed=False)  # naive -> UTC
    t0 = c.now()
    assert t0.utcoffset() == timedelta(0)
    time.sleep(0.02)
    assert c.now() > t0
    c.advance(3600)
    assert c.now() - t0 >= timedelta(seconds=3600)
    assert Clock().now().tzinfo is not None


def test_session_calendar():
    assert is_open(et(2024, 6, 12, 9, 30))
    assert not is_open(et(2024, 6, 12, 16, 0))
    assert not is_open(et(2024, 6, 15, 12, 0))  # Saturday
    assert next_session_close(et(2024, 6, 12, 10)) == et(2024, 6, 12, 16)
    assert next_session_close(et(2024, 6, 12, 17)) == et(2024, 6, 13, 16)
    assert next_session_close(et(2024, 6, 14, 17)) == et(2024, 6, 17, 16)  # Friday -> Monday
    assert not is_open(et(2025, 7, 4, 11, 0))  # Independence Day
    assert not is_open(et(2024, 12, 25, 11, 0))  # Christmas
    assert is_open(et(2024, 11, 29, 12, 59)) and not is_open(et(2024, 11, 29, 13, 0))  # early
    assert next_session_close(et(2024, 7, 3, 17)) == et(2024, 7, 5, 16)  # over the holiday
    assert trading_phase(et(2024, 6, 12, 4, 0).timestamp()) == "extended"
    assert trading_phase(et(2024, 6, 12, 3, 59).timestamp()) == "closed"
    assert trading_phase(et(2024, 6, 12, 19, 59).timestamp()) == "extended"
    assert trading_phase(et(2024, 6, 12, 20, 0).timestamp()) == "closed"
    assert trading_phase(et(2024, 11, 29, 16, 59).timestamp()) == "extended"  # 13:00 + 4 h
    assert trading_phase(et(2024, 6, 15, 10, 0).timestamp()) == "closed"  # Saturday


def test_head_timestamps_per_symbol_and_no_bars_before_them():
    market = Market(3, Clock(et(2024, 6, 12, 11), fixed=True))
    assert head_timestamp(UNIVERSE["META"]) == et(2012, 5, 18, 9, 30)
    assert head_timestamp(UNIVERSE["IBM"]) == et(1990, 1, 2, 9, 30)
    bars = market.bars("META", et(2012, 6, 29, 16), "1 Y", "1 day")
    assert bars[0].time.date() == date(2012, 5, 18) and len(bars) == 30
    with pytest.raises(HistoricalDataError) as exc:
        market.bars("META", et(2011, 1, 3, 16), "1 M", "1 day")
    assert exc.value.code == 162 and "2012-05-18" in exc.value.message


def test_the_close_after_hours_is_that_sessions_close():
    clock = Clock(et(2024, 6, 12, 15, 0), fixed=True)
    market = Market(3, clock)
    during = market.quote("AAPL")
    clock.set(et(2024, 6, 12, 18, 0))
    after = market.quote("AAPL")
    assert after.close == after.last == market.bars("AAPL", clock.now(), "1 D", "1 day")[-1].close
    assert during.close != after.close  # the previous session's close during the day
    clock.set(et(2024, 6, 13, 8, 0))  # the next morning, before the open: still that close
    assert market.quote("AAPL").close == after.close


def test_early_close_days_end_at_one():
    market = Market(3, Clock(et(2024, 11, 29, 18), fixed=True))
    bars = market.bars("AAPL", et(2024, 11, 29, 18), "1 D", "30 mins")
    assert bars[0].time == et(2024, 11, 29, 9, 30) and bars[-1].time == et(2024, 11, 29, 12, 30)
    assert len(bars) == 7 and bars[-1].close == market.quote("AAPL").last


# ---- determinism -----------------------------------------------------------------------------


def test_same_seed_same_quotes_and_bars_regardless_of_call_order():
    a = Market(11, Clock(START, fixed=True))
    b = Market(11, Clock(START, fixed=True))
    # b computes other things first: results must not depend on what was computed before
    b.bars("MSFT", START, "1 Y", "1 day")
    b.quote_at("AAPL", START - timedelta(days=30))
    assert a.quote("AAPL") == b.quote("AAPL")
    assert a.bars("AAPL", START, "1 D", "5 mins") == b.bars("AAPL", START, "1 D", "5 mins")
    assert a.bars("AAPL", START, "6 M", "1 day") == b.bars("AAPL", START, "6 M", "1 day")


def test_different_seed_or_symbol_gives_a_different_path():
    a = Market(11, Clock(START, fixed=True))
    b = Market(12, Clock(START, fixed=True))
    qa, qb = a.quote("AAPL"), b.quote("AAPL")
    assert (qa.last, qa.volume) != (qb.last, qb.volume)
    ret = []
    for sym in ("AAPL", "MSFT"):
        bars = a.bars(sym, START, "1 D", "1 min")
        ret.append([y.close / x.close - 1 for x, y in zip(bars, bars[1:], strict=False)])
    assert ret[0] != ret[1]


# ---- quotes ----------------------------------------------------------------------------------


def on_grid(x: float) -> bool:
    return abs(x * 100 - round(x * 100)) < 1e-6


def test_quote_invariants_through_a_day(market, clock):
    clock.set(et(2024, 6, 12, 9, 30))
    prev_volume = -1
    for _ in range(60):
        for sym in ("AAPL", "KO", "NFLX"):
            q = market.quote(sym)
            assert q.bid < q.ask and q.bid <= q.last <= q.ask
            assert all(on_grid(x) for x in (q.bid, q.ask, q.last, q.open, q.high, q.low, q.close))
            assert q.low <= q.last <= q.high and q.low <= q.open <= q.high
            assert q.bid_size % 100 == 0 and q.ask_size % 100 == 0 and q.last_size % 100 == 0
            assert min(q.bid_size, q.ask_size, q.last_size) >= 100
            assert q.time == clock.now()
        v = market.quote("AAPL").volume
        assert v >= prev_volume
        prev_volume = v
        clock.advance(397)
    assert prev_volume > 1_000_000


def test_close_is_previous_session_close_and_market_is_flat_when_closed(market, clock):
    clock.set(et(2024, 6, 12, 16, 0))
    at_close = market.quote("AAPL")
    clock.set(et(2024, 6, 12, 20, 0))
    evening = market.quote("AAPL")
    assert (evening.last, evening.bid, evening.ask) == (at_close.last, at_close.bid, at_close.ask)
    clock.set(et(2024, 6, 13, 9, 45))
    assert market.quote("AAPL").close == at_close.last
    # weekend: Friday's close all Saturday and Sunday
    clock.set(et(2024, 6, 14, 16, 0))
    friday = market.quote("AAPL").last
    for day in (15, 16):
        clock.set(et(2024, 6, day, 12, 0))
        assert market.quote("AAPL").last == friday
    clock.set(et(2024, 6, 17, 9, 0))  # Monday pre-open
    assert market.quote("AAPL").last == friday


def test_unknown_symbol_raises(market):
    with pytest.raises(KeyError):
        market.quote("NOPE")


def test_set_price_moves_the_path_from_now_on(market, clock):
    before_bars = market.bars("AAPL", clock.now(), "1 D", "1 min")
    market.set_price("AAPL", 150.0)
    q = market.quote("AAPL")
    assert q.last == 150.0 and q.bid <= 150.0 <= q.ask
    assert q.low == 150.0  # the day's low includes the forced price
    clock.advance(60)
    later = market.quote("AAPL").last
    assert 140 < later < 160  # the path continues from the new level
    # bars strictly before the override are unchanged
    after_bars = market.bars("AAPL", clock.now(), "1 D", "1 min")
    assert after_bars[: len(before_bars) - 1] == before_bars[:-1]
    assert after_bars[-1].close == later
    market.set_price("aapl", 155.55)
    assert market.quote("AAPL").last == 155.55
    with pytest.raises(ValueError):
        market.set_price("AAPL", 0)


def test_quote_is_fast(market, clock):
    clock.fixed = False  # a running clock: every call sees a new time
    symbols = list(UNIVERSE)
    for s in symbols:
        market.quote(s)
    n = 0
    t0 = time.perf_counter()
    for _ in range(200):
        for s in symbols:
            market.quote(s)
            n += 1
    per_call = (time.perf_counter() - t0) / n
    assert per_call < 50e-6, f"quote() took {per_call * 1e6:.1f} us"


# ---- bars ------------------------------------------------------------------------------------


def check_ohlc(bars):
    for b in bars:
        assert b.high >= max(b.open, b.close) and b.low <= min(b.open, b.close)
        assert b.time.tzinfo is not None
    assert [b.time for b in bars] == sorted({b.time for b in bars})


def test_daily_bars_count_and_agree_with_the_quote(market, clock):
    bars = market.bars("AAPL", clock.now(), "1 Y", "1 day")
    assert len(bars) == 253  # NYSE sessions 2023-06-12 .. 2024-06-12 (holidays closed)
    assert date(2023, 7, 4) not in {b.time.date() for b in bars}
    assert bars[-1].time.date() == date(2024, 6, 12)
    assert bars[-1].close == market.quote("AAPL").last  # today's bar is in progress
    assert bars[-2].close == market.quote("AAPL").close
    check_ohlc(bars)
    assert all(b.volume > 0 and b.count > 0 and b.low <= b.wap <= b.high for b in bars)
    five = market.bars("AAPL", clock.now(), "5 D", "1 day")
    assert len(five) == 5 and five == bars[-5:]


def test_two_years_of_history_exist(market, clock):
    bars = market.bars("SPY", clock.now(), "2 Y", "1 day")
    assert bars[0].time.date() <= date(2022, 6, 14)


def test_intraday_bars_full_session(market, clock):
    clock.set(et(2024, 6, 12, 18, 0))
    bars = market.bars("MSFT", clock.now(), "1 D", "5 mins")
    assert len(bars) == 78
    assert bars[0].time == et(2024, 6, 12, 9, 30) and bars[-1].time == et(2024, 6, 12, 15, 55)
    check_ohlc(bars)
    daily = market.bars("MSFT", clock.now(), "1 D", "1 day")[0]
    assert bars[-1].close == daily.close == market.quote("MSFT").last
    assert bars[0].open == daily.open
    assert max(b.high for b in bars) == daily.high and min(b.low for b in bars) == daily.low
    assert sum(b.volume for b in bars) == daily.volume
    hours = market.bars("MSFT", clock.now(), "1 D", "1 hour")
    assert [b.time.strftime("%H:%M") for b in hours] == [
        "09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00"
    ]  # fmt: skip


def test_intraday_bars_in_progress_end_at_the_quote(market, clock):
    bars = market.bars("AAPL", clock.now(), "1800 S", "1 min")
    assert len(bars) == 30
    assert bars[-1].time == et(2024, 6, 12, 10, 59)
    assert bars[-1].close == market.quote("AAPL").last
    secs = market.bars("AAPL", clock.now(), "60 S", "1 secs")
    assert len(secs) == 60 and secs[-1].close == market.quote("AAPL").last
    # end in the past is honoured; end in the future is capped at now
    past = market.bars("AAPL", clock.now() - timedelta(minutes=10), "600 S", "1 min")
    assert past[-1].time == et(2024, 6, 12, 10, 49)
    assert market.bars("AAPL", clock.now() + timedelta(days=3), "1 D", "1 min") == market.bars(
        "AAPL", clock.now(), "1 D", "1 min"
    )


def test_midpoint_bid_ask_bars(market, clock):
    kw = {"end": clock.now(), "duration": "600 S", "bar_size": "1 min"}
    bid = market.bars("KO", what_to_show="BID", **kw)
    ask = market.bars("KO", what_to_show="ASK", **kw)
    mid = market.bars("KO", what_to_show="MIDPOINT", **kw)
    for b, m, a in zip(bid, mid, ask, strict=True):
        assert b.close < a.close and b.close <= m.close <= a.close
        assert m.volume == -1 and m.wap == -1 and m.count == -1
    q = market.quote("KO")
    assert (bid[-1].close, ask[-1].close) == (q.bid, q.ask)
    assert market.bars("KO", clock.now(), "1 M", "1 day", "MIDPOINT")[-1].volume == -1


def test_weekly_and_monthly_bars(market, clock):
    weeks = market.bars("IBM", clock.now(), "1 Y", "1 week")
    days = market.bars("IBM", clock.now(), "1 Y", "1 day")
    assert 52 <= len(weeks) <= 54
    first_session = {}  # ISO week -> its first session (a Tuesday after a Monday holiday)
    for b in days:
        first_session.setdefault(b.time.isocalendar()[:2], b.time)
    assert [b.time for b in weeks] == list(first_session.values())
    assert weeks[-1].close == days[-1].close and sum(b.volume for b in weeks) == sum(
        b.volume for b in days
    )
    months = market.bars("IBM", clock.now(), "1 Y", "1 month")
    assert 12 <= len(months) <= 13 and months[-1].time.date() == date(2024, 6, 3)
    check_ohlc(weeks)
    check_ohlc(months)


@pytest.mark.parametrize(
    "duration,bar_size,what",
    [("1 D", "7 mins", "TRADES"), ("1 D", "1 minute", "TRADES"), ("D 1", "1 min", "TRADES"),
     ("0 D", "1 min", "TRADES"), ("5 X", "1 day", "TRADES"), ("1 D", "1 min", "OPTION_IV")],
)  # fmt: skip
def test_bad_requests_raise_tws_like_errors(market, clock, duration, bar_size, what):
    with pytest.raises(ValueError) as exc:
        market.bars("AAPL", clock.now(), duration, bar_size, what)
    assert isinstance(exc.value, HistoricalDataError) and exc.value.code == 321
    assert "Error validating request" in str(exc.value)


def test_too_much_intraday_data_is_refused(market, clock):
    with pytest.raises(HistoricalDataError) as exc:
        market.bars("AAPL", clock.now(), "1 M", "1 secs")
    assert exc.value.code == 162


def test_parsers():
    assert parse_duration("60 S") == (60, "S") and parse_duration("2 W") == (2, "W")
    assert parse_bar_size("1 secs") == 1 and parse_bar_size("15 mins") == 900
    assert parse_bar_size("1 hour") == 3600 and parse_bar_size("1 day") == -1


@settings(max_examples=25, deadline=None)
@given(
    bar_size=st.sampled_from(["1 secs", "5 secs", "30 secs", "1 min", "2 mins", "15 mins",
                              "30 mins", "1 hour", "4 hours"]),
    minutes_after_open=st.integers(0, 389),
    symbol=st.sampled_from(sorted(UNIVERSE)),
)  # fmt: skip
def test_bars_are_consistent_ohlc_and_end_at_the_quote(bar_size, minutes_after_open, symbol):
    clock = Clock(et(2024, 6, 11, 9, 30) + timedelta(minutes=minutes_after_open, seconds=7), True)
    market = Market(3, clock)
    bars = market.bars(symbol, clock.now(), "1800 S", bar_size)
    check_ohlc(bars)
    assert bars[-1].close == market.quote(symbol).last
    assert all(b.volume >= 0 for b in bars)
