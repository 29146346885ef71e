"""A deterministic simulated market: a clock, quotes and historical bars.

Stocks, FX pairs and indices follow their own seeded paths (below); futures and options are
priced from their underlying at the same instant (see ``pricing``): a future at its
cost-of-carry fair value, an option by Black-Scholes on a seeded volatility surface.

Price model
-----------
Every price is a pure function of ``(seed, con_id, time)`` plus explicit :meth:`Market.set_price`
overrides. Trading days are the NYSE's sessions from ``exchange_calendars`` (holidays closed;
early closes end at 13:00); the price path of a session has ``T = 23400`` one-second steps from
09:30; on an early-close day the path's last value is the 13:00 close. Outside the session the
price is flat at the last close. Extended hours (04:00 to the open, the close to 4 hours after
it) have no trades of their own: the quote stays at the last close.

* Daily level: the log close is ``log(base_price) + dev[d]`` where ``dev`` is a mean-reverting
  AR(1) (half-life ~170 trading days, daily volatility ``annual_vol / sqrt(252)``) started at 0
  on 1990-01-01, so prices stay near ``base_price`` over the years. The day opens with a gap off
  the previous close. Draws come in chunks of 256 days from ``PCG64`` keyed by
  ``(seed, con_id, stream, chunk)``.
* Intraday: a Brownian bridge from the day's open to its close on the one-second grid
  (index ``s`` in ``0..T``; ``s = T`` is the 16:00 closing print), keyed by
  ``(seed, con_id, stream, day)`` so any day can be computed without the days before it.
  Per-second volume follows a U-shaped profile around the instrument's average daily volume.
* Quotes: ``last`` is the mid rounded to the tick grid; the spread is 1-2 ticks (more for high
  prices), ``bid = floor(mid) - (spread - 1) // 2`` ticks, ``ask = bid + spread``, so
  ``bid <= last <= ask``. Sizes are seeded multiples of 100 shares (FX: x 10,000 units).
* ``set_price(symbol, p)`` records a multiplicative offset from the current grid position on, so
  the quote's mid at that moment is exactly ``p`` and the path continues from there.

Times: every datetime is tz-aware. Quotes carry UTC; bars carry America/New_York (exchange
time): intraday bars at their start, daily/weekly/monthly bars at 00:00 of their first session
date.
"""

from __future__ import annotations

import math
import re
import time as _time
import warnings
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars
import numpy as np

from .instruments import DIVIDEND_YIELD, LISTED, Instrument, instrument
from .instruments import UNIVERSE as UNIVERSE
from .instruments import instrument_by_con_id as instrument_by_con_id
from .instruments import matching_symbols as matching_symbols
from .pricing import RATE, VolSurface, black_scholes, forward_price, vol_surface

ET = ZoneInfo("America/New_York")
RTH_OPEN_SECOND = 9 * 3600 + 30 * 60  # 09:30 ET, seconds after midnight
RTH_CLOSE_SECOND = 16 * 3600  # 16:00 ET
T = RTH_CLOSE_SECOND - RTH_OPEN_SECOND  # 23400 one-second steps per session
BOOK_JITTER_LEN = 4096
PRE_MARKET_SECOND = 4 * 3600  # 04:00 ET: extended hours start
POST_MARKET_SECONDS = 4 * 3600  # extended hours end 4 hours after the close (20:00, or 17:00)
_CHUNK = 256  # trading days per daily-level chunk
_PHI = math.exp(-1.0 / 250.0)  # AR(1) coefficient of the daily log-price deviation
_MASK64 = (1 << 64) - 1
_FRAC = np.arange(T + 1, dtype=np.float64) / T
_MINUTE = np.arange(T // 60, dtype=np.float64)
_PROFILE = 1.0 + 2.0 * np.exp(-_MINUTE / 20.0) + 1.5 * np.exp(-(_MINUTE[-1] - _MINUTE) / 15.0)
_PROFILE /= _PROFILE.sum()
_AVG_TRADE_SIZE = 150  # shares per trade, for bar trade counts
FX_LOT = 10_000  # an FX pair's displayed sizes are in units of the base currency
_MAX_SUMMARIES = 100_000  # cached (open, high, low, close, ...) of whole sessions
_MAX_BARS = 10_000  # intraday bars per request; more is refused with 162 as TWS does


# --------------------------------------------------------------------------------------------
# Clock and calendar
# --------------------------------------------------------------------------------------------


def _to_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


class Clock:
    """Simulation time, tz-aware UTC.

    Fixed mode (``fixed=True``): time moves only through :meth:`advance` / :meth:`set`.
    Running mode: ``start`` + real elapsed time (monotonic) + advances.
    ``start`` defaults to the current wall time (to the second); a naive ``start`` is UTC.
    """

    def __init__(self, start: datetime | None = None, fixed: bool = False) -> None:
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0)
        self._start = _to_utc(start)
        self._base = self._start.timestamp()
        self._mono0 = _time.monotonic()
        self.fixed = fixed

    @property
    def start(self) -> datetime:
        """The time the clock was created with (or last :meth:`set` to)."""
        return self._start

    def timestamp(self) -> float:
        """POSIX seconds of :meth:`now` (cheaper than ``now().timestamp()``)."""
        if self.fixed:
            return self._base
        return self._base + (_time.monotonic() - self._mono0)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def advance(self, seconds: float) -> datetime:
        """Move time forward by ``seconds`` (>= 0); returns the new now()."""
        if seconds < 0:
            raise ValueError(f"Clock.advance needs seconds >= 0, got {seconds}")
        self._base += seconds
        return self.now()

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (running clocks keep running from there); returns now()."""
        self._start = _to_utc(when)
        self._base = self._start.timestamp()
        self._mono0 = _time.monotonic()
        return self.now()


EPOCH = date(1990, 1, 1)  # a Monday: weekday index 0, where every price path starts


def day_index(d: date) -> int:
    """Weekday index of ``d`` (weekdays since 1990-01-01: the price paths' day counter); for a
    weekend day, the index of the following Monday. Holidays keep their index (their price
    path is never shown): a holiday moves no other day's prices."""
    days = (d - EPOCH).days
    return (days // 7) * 5 + min(days % 7, 5)


def day_date(idx: int) -> date:
    """The date of weekday ``idx``."""
    return EPOCH + timedelta(days=(idx // 5) * 7 + idx % 5)


def _nyse_sessions() -> tuple[np.ndarray, np.ndarray]:
    """(weekday indexes of every NYSE session 1990-2045, close in seconds after midnight ET of
    every weekday: 16:00, 13:00 on early closes)."""
    with warnings.catch_warnings():  # the library's own pandas deprecations
        warnings.simplefilter("ignore")
        schedule = exchange_calendars.get_calendar(
            "XNYS", start="1990-01-02", end="2045-12-29"
        ).schedule
    sessions = np.array([day_index(d.date()) for d in schedule.index])
    closes = np.full(sessions[-1] + 1, RTH_CLOSE_SECOND)
    for idx, c in zip(sessions, schedule["close"], strict=True):
        c = c.tz_convert(ET)
        closes[idx] = c.hour * 3600 + c.minute * 60
    return sessions, closes


_SESSIONS, _CLOSE_SECOND = _nyse_sessions()


def is_session(d: date) -> bool:
    """True when the NYSE trades on ``d``."""
    return d.weekday() < 5 and _is_session_index(day_index(d))


def _is_session_index(idx: int) -> bool:
    k = int(np.searchsorted(_SESSIONS, idx))
    return k < len(_SESSIONS) and int(_SESSIONS[k]) == idx


def session_on_or_after(idx: int) -> int:
    """The first session's weekday index at or after ``idx``."""
    k = int(np.searchsorted(_SESSIONS, idx))
    if k >= len(_SESSIONS):
        raise ValueError(f"{day_date(idx)} is past the simulated calendar (sessions up to 2045)")
    return int(_SESSIONS[k])


def session_before(idx: int) -> int:
    """The last session's weekday index before ``idx`` (-1 before the first session)."""
    k = int(np.searchsorted(_SESSIONS, idx)) - 1
    return int(_SESSIONS[k]) if k >= 0 else -1


def sessions_between(first: int, last: int) -> list[int]:
    """Weekday indexes of the sessions from ``first`` to ``last`` inclusive."""
    lo, hi = np.searchsorted(_SESSIONS, [first, last + 1])
    return [int(i) for i in _SESSIONS[lo:hi]]


@lru_cache(maxsize=4096)
def session_bounds(idx: int) -> tuple[float, float]:
    """POSIX timestamps of the 09:30 open and the close (16:00, 13:00 on early-close days) of
    trading day ``idx``."""
    d = day_date(idx)
    midnight = datetime(d.year, d.month, d.day, tzinfo=ET)
    close = int(_CLOSE_SECOND[idx]) if 0 <= idx < len(_CLOSE_SECOND) else RTH_CLOSE_SECOND
    return (
        (midnight + timedelta(seconds=RTH_OPEN_SECOND)).timestamp(),
        (midnight + timedelta(seconds=close)).timestamp(),
    )


def head_timestamp(inst: Instrument) -> datetime:
    """The first moment with data for ``inst``: the open of its first session (UTC)."""
    return datetime.fromtimestamp(
        session_bounds(session_on_or_after(day_index(inst.listed)))[0], UTC
    )


def trading_phase(ts: float) -> str:
    """ "regular" during a session, "extended" from 04:00 to the open and from the close to 4
    hours after it on a session day, else "closed"."""
    et = datetime.fromtimestamp(ts, ET)
    if not is_session(et.date()):
        return "closed"
    open_ts, close_ts = session_bounds(day_index(et.date()))
    if open_ts <= ts < close_ts:
        return "regular"
    midnight = open_ts - RTH_OPEN_SECOND
    if (
        midnight + PRE_MARKET_SECOND <= ts < open_ts
        or close_ts <= ts < close_ts + POST_MARKET_SECONDS
    ):
        return "extended"
    return "closed"


@lru_cache(maxsize=4096)
def _et_day_info(et_date: date) -> tuple[float, float, int, bool]:
    """(midnight ts, next midnight ts, weekday index on or after, is a session day)."""
    start = datetime(et_date.year, et_date.month, et_date.day, tzinfo=ET).timestamp()
    nxt = et_date + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=ET).timestamp()
    return start, end, day_index(et_date), is_session(et_date)


class _Locator:
    """Maps a timestamp to (trading day, second in 0..T) with a one-calendar-day cache."""

    __slots__ = ("_lo", "_hi", "_idx", "_session", "_open", "_close")

    def __init__(self) -> None:
        self._lo = self._hi = 0.0

    def locate(self, ts: float) -> tuple[int, int]:
        if not (self._lo <= ts < self._hi):
            et_date = datetime.fromtimestamp(ts, ET).date()
            self._lo, self._hi, self._idx, self._session = _et_day_info(et_date)
            self._open, self._close = session_bounds(self._idx)
        if self._session:
            if ts >= self._close:
                return self._idx, T
            if ts >= self._open:
                return self._idx, int(ts - self._open)
        return session_before(self._idx), T


def locate(ts: float) -> tuple[int, int]:
    """(trading-day index, second in 0..T) whose price is in force at POSIX time ``ts``.

    During a session: (today, seconds since 09:30). After the close: (today, T). Before the
    open, on weekends and holidays: (the previous session, T). Days are weekday indexes.
    """
    return _LOCATOR.locate(ts)


_LOCATOR = _Locator()


def is_open(when: datetime) -> bool:
    """True during the regular session (09:30 to the close on an NYSE session day)."""
    return trading_phase(when.timestamp()) == "regular"


def next_session_close(when: datetime) -> datetime:
    """The close that ends the session ``when`` belongs to for a DAY order: today's close if
    ``when`` is before it on a session day, else the next session's close (UTC)."""
    et = when.astimezone(ET)
    idx = day_index(et.date())
    if is_session(et.date()):
        _, close = session_bounds(idx)
        if when.timestamp() < close:
            return datetime.fromtimestamp(close, UTC)
        idx += 1
    return datetime.fromtimestamp(session_bounds(session_on_or_after(idx))[1], UTC)


@lru_cache(maxsize=4096)
def _expiry_ts(expiry: str) -> float:
    """POSIX time of 16:00 ET on ``expiry`` (YYYYMMDD)."""
    d = datetime.strptime(expiry, "%Y%m%d").date()
    return datetime(d.year, d.month, d.day, 16, tzinfo=ET).timestamp()


def years_to_expiry(expiry: str, ts: float) -> float:
    """Calendar years from POSIX ``ts`` to 16:00 ET on ``expiry`` (0 once expired)."""
    return max(_expiry_ts(expiry) - ts, 0.0) / (365.0 * 86400.0)


# --------------------------------------------------------------------------------------------
# Quotes and bars
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Quote:
    """Top of book and day statistics at ``time`` (UTC) of the session in force (the last one
    outside hours). ``close`` is the previous session's close during a session and that
    session's own close after it; ``volume`` is its cumulative volume; sizes in shares."""

    symbol: str
    con_id: int
    bid: float
    ask: float
    last: float
    bid_size: int
    ask_size: int
    last_size: int
    volume: int
    open: float
    high: float
    low: float
    close: float
    time: datetime


@dataclass(slots=True)
class Bar:
    """A historical bar. ``time`` is the bar start (America/New_York). For MIDPOINT/BID/ASK/
    BID_ASK ``volume``, ``wap`` and ``count`` are -1, as TWS sends them. A BID_ASK bar is, as
    TWS defines it: open = time-average bid, high = max ask, low = min bid, close =
    time-average ask (averages over the bar's seconds, rounded to 1e-6)."""

    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    wap: float
    count: int


class HistoricalDataError(ValueError):
    """A bad historical-data request; ``code`` is the TWS error code (321 or 162)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_BAR_SIZES = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600,
    "15 mins": 900, "20 mins": 1200, "30 mins": 1800,
    "1 hour": 3600, "2 hours": 7200, "3 hours": 10800, "4 hours": 14400, "8 hours": 28800,
    "1 day": -1, "1 week": -7, "1 month": -30,
}  # fmt: skip
_WHAT = {
    "TRADES": "TRADES",
    "ADJUSTED_LAST": "TRADES",
    "MIDPOINT": "MIDPOINT",
    "BID": "BID",
    "ASK": "ASK",
    "BID_ASK": "BID_ASK",
}
_VOL_SERIES = ("HISTORICAL_VOLATILITY", "OPTION_IMPLIED_VOLATILITY")
_VOL_WINDOW = 20  # bars of log returns behind each historical-volatility value
_DURATION_RE = re.compile(r"^\s*(\d+)\s+([SDWMY])\s*$")


def parse_bar_size(bar_size: str) -> int:
    """Seconds per bar for intraday sizes; -1 day, -7 week, -30 month. Raises HistoricalDataError."""
    key = " ".join(bar_size.split()).lower()
    if key in _BAR_SIZES:
        return _BAR_SIZES[key]
    raise HistoricalDataError(
        321,
        f"Error validating request.-'bP' : cause - Historical data bar size setting is invalid: "
        f"{bar_size!r}. Valid sizes: 1 secs, 5 secs, ..., 1 min, 2 mins, ..., 1 hour, 1 day, "
        f"1 week, 1 month.",
    )


def parse_duration(duration: str) -> tuple[int, str]:
    """(count, unit in S/D/W/M/Y) from a TWS duration string like "5 D". Raises HistoricalDataError."""
    m = _DURATION_RE.match(duration or "")
    if not m or int(m.group(1)) <= 0:
        raise HistoricalDataError(
            321,
            f"Error validating request.-'bP' : cause - Historical data duration format is "
            f"invalid: {duration!r}. Use '<integer> <unit>' with unit S, D, W, M or Y.",
        )
    return int(m.group(1)), m.group(2)


def _months_back(d: datetime, months: int) -> datetime:
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    m += 1
    last_day = (date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)).day
    return d.replace(year=y, month=m, day=min(d.day, last_day))


# --------------------------------------------------------------------------------------------
# The market
# --------------------------------------------------------------------------------------------


class _DayCore:
    """Base (pre-override) path of one symbol on one trading day."""

    __slots__ = ("mid", "vol", "spread", "bid_size", "ask_size", "last_size")

    def __init__(self, mid: np.ndarray, vol: np.ndarray) -> None:
        self.mid = mid
        self.vol = vol
        self.spread = None
        self.bid_size = self.ask_size = self.last_size = None


class _View:
    """Effective (override-adjusted) tick arrays of one day, used by quotes."""

    __slots__ = (
        "sig", "version", "last", "bid", "ask", "bid_size", "ask_size", "last_size",
        "cum_vol", "run_hi", "run_lo", "prev_close", "inv_tick",
    )  # fmt: skip


def _compact(values: np.ndarray) -> array:
    """Integers as a compact ``array('q')``: indexing gives plain ints as fast as a list, at 8
    bytes an item instead of ~36 (24 symbols' quote arrays: ~40 MB instead of ~180 MB)."""
    out = array("q")
    out.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())
    return out


class Market:
    """Seeded quotes and bars for the :data:`UNIVERSE` at ``clock.now()``."""

    def __init__(self, seed: int, clock: Clock, *, cache_days: int = 48) -> None:
        self.seed = int(seed)
        self.clock = clock
        self._seed_key = self.seed & _MASK64
        self._daily: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cores: OrderedDict[tuple[int, int], _DayCore] = OrderedDict()
        self._views: OrderedDict[tuple[int, int], _View] = OrderedDict()
        self._summaries: dict[tuple, tuple] = {}
        self._cache_days = cache_days
        # overrides: con_id -> list of (day, second, cumulative log factor), sorted
        self._offsets: dict[int, list[tuple[int, int, float]]] = {}
        # Displayed sizes move between trades: +0, 400 or 800 shares, seeded per quarter second.
        self._book_jitter = (
            np.random.default_rng([self.seed, 0xB00C]).integers(0, 3, BOOK_JITTER_LEN) * 400
        ).tolist()
        self._version: dict[int, int] = {}
        self._surfaces: dict[int, VolSurface] = {}

    # ---- random streams ------------------------------------------------------------------

    def _rng(self, con_id: int, stream: int, index: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64([self._seed_key, con_id, stream, index]))

    def _daily_arrays(self, inst: Instrument, idx: int) -> tuple[np.ndarray, np.ndarray]:
        """(dev, gap) arrays covering trading days 0..idx (extended in chunks)."""
        if idx < 0:
            raise ValueError(f"dates before {EPOCH} are not simulated")
        have = self._daily.get(inst.con_id)
        if have is not None and len(have[0]) > idx:
            return have
        dev, gap = have if have is not None else (np.empty(0), np.empty(0))
        sigma = inst.annual_vol / math.sqrt(252.0)
        n_chunks = idx // _CHUNK + 1
        devs, gaps = [dev], [gap]
        x = dev[-1] if len(dev) else 0.0
        powers = _PHI ** np.arange(_CHUNK, dtype=np.float64)
        for c in range(len(dev) // _CHUNK, n_chunks):
            g = self._rng(inst.con_id, 1, c)
            eps = g.standard_normal(_CHUNK) * sigma
            gp = g.standard_normal(_CHUNK) * (0.3 * sigma)
            chunk = powers * (_PHI * x + np.cumsum(eps / powers))
            x = float(chunk[-1])
            devs.append(chunk)
            gaps.append(gp)
        out = (np.concatenate(devs), np.concatenate(gaps))
        self._daily[inst.con_id] = out
        return out

    def _log_close(self, inst: Instrument, idx: int) -> float:
        """Base log close of trading day ``idx`` (idx -1 and below: log base price)."""
        if idx < 0:
            return math.log(inst.base_price)
        return math.log(inst.base_price) + float(self._daily_arrays(inst, idx)[0][idx])

    def _log_open(self, inst: Instrument, idx: int) -> float:
        gap = float(self._daily_arrays(inst, idx)[1][idx])
        return self._log_close(inst, idx - 1) + gap

    def _core(self, inst: Instrument, idx: int) -> _DayCore:
        key = (inst.con_id, idx)
        core = self._cores.get(key)
        if core is not None:
            self._cores.move_to_end(key)
            return core
        lo, lc = self._log_open(inst, idx), self._log_close(inst, idx)
        sigma = 0.8 * inst.annual_vol / math.sqrt(252.0)
        g = self._rng(inst.con_id, 2, idx)
        w = np.empty(T + 1)
        w[0] = 0.0
        np.cumsum(g.standard_normal(T), out=w[1:])
        w *= 1.0 / math.sqrt(T)
        x = lo + _FRAC * (lc - lo) + sigma * (w - _FRAC * w[-1])
        mid = np.exp(x)
        minute_vol = inst.avg_volume * _PROFILE * g.lognormal(0.0, 0.4, T // 60)
        minute_vol *= g.lognormal(0.0, 0.25)
        vol = np.zeros(T + 1, dtype=np.int64)
        vol[:T] = np.repeat(np.floor(minute_vol / 60.0).astype(np.int64), 60)
        core = _DayCore(mid, vol)
        self._cores[key] = core
        if len(self._cores) > self._cache_days:
            self._cores.popitem(last=False)
        return core

    def _book(self, inst: Instrument, idx: int, core: _DayCore) -> _DayCore:
        if core.spread is None:
            g = self._rng(inst.con_id, 4, idx)
            base = max(1, round(float(core.mid[0]) * 2e-5 / inst.min_tick))
            core.spread = (base + g.integers(0, 2, T + 1)).astype(np.int64)
            core.bid_size = g.integers(1, 21, T + 1, dtype=np.int64) * 100
            core.ask_size = g.integers(1, 21, T + 1, dtype=np.int64) * 100
            core.last_size = g.integers(1, 11, T + 1, dtype=np.int64) * 100
        return core

    # ---- overrides -----------------------------------------------------------------------

    def _sig(self, con_id: int, idx: int) -> tuple:
        """Override signature of a day: (log factor in force at its start, same-day changes)."""
        offs = self._offsets.get(con_id)
        if not offs:
            return (0.0, ())
        before = 0.0
        same = []
        for d, s, cum in offs:
            if d < idx:
                before = cum
            elif d == idx:
                same.append((s, cum))
        return (before, tuple(same))

    def _factor(self, sig: tuple) -> float | np.ndarray:
        before, same = sig
        if not same:
            return math.exp(before)
        logf = np.full(T + 1, before)
        for s, cum in same:
            logf[s:] = cum
        return np.exp(logf)

    def _factor_at(self, con_id: int, idx: int, s: int) -> float:
        cum = 0.0
        for d, s0, c in self._offsets.get(con_id, ()):
            if (d, s0) <= (idx, s):
                cum = c
        return math.exp(cum)

    def set_price(self, symbol: str, price: float) -> None:
        """Control surface: from the current time on, the path continues from ``price`` (its mid
        is exactly ``price`` now; earlier prices and bars are unchanged)."""
        inst = self._inst(symbol)
        if not (price > 0 and math.isfinite(price)):
            raise ValueError(f"price must be positive, got {price}")
        idx, s = locate(self.clock.timestamp())
        base = float(self._core(inst, idx).mid[s])
        cum = math.log(price) - math.log(base)
        offs = [o for o in self._offsets.get(inst.con_id, []) if (o[0], o[1]) < (idx, s)]
        offs.append((idx, s, cum))
        self._offsets[inst.con_id] = offs
        self._version[inst.con_id] = self._version.get(inst.con_id, 0) + 1

    # ---- series --------------------------------------------------------------------------

    def _ticks(self, inst: Instrument, idx: int, sig: tuple, what: str) -> np.ndarray:
        """Prices in ticks (float; MIDPOINT may be half ticks) of one day, overrides applied."""
        core = self._core(inst, idx)
        m = core.mid * self._factor(sig) * (1.0 / inst.min_tick)
        if what == "TRADES":
            return np.rint(m)
        self._book(inst, idx, core)
        bid = np.floor(m + 1e-9) - (core.spread - 1) // 2
        if what == "BID":
            return bid
        if what == "ASK":
            return bid + core.spread
        return bid + core.spread / 2.0

    def _view(self, inst: Instrument, idx: int) -> _View:
        key = (inst.con_id, idx)
        version = self._version.get(inst.con_id, 0)
        v = self._views.get(key)
        if v is not None:
            if v.version == version:
                return v
            sig = self._sig(inst.con_id, idx)
            if v.sig == sig:
                v.version = version
                return v
        else:
            sig = self._sig(inst.con_id, idx)
        core = self._book(inst, idx, self._core(inst, idx))
        m = core.mid * self._factor(sig) * (1.0 / inst.min_tick)
        v = _View()
        v.sig, v.version = sig, version
        v.inv_tick = round(1.0 / inst.min_tick)
        last = np.rint(m).astype(np.int64)
        v.last = _compact(last)
        bid = np.floor(m + 1e-9).astype(np.int64) - (core.spread - 1) // 2
        v.bid = _compact(bid)
        v.ask = _compact(bid + core.spread)
        v.bid_size = _compact(core.bid_size)
        v.ask_size = _compact(core.ask_size)
        v.last_size = _compact(core.last_size)
        v.cum_vol = _compact(np.cumsum(core.vol))
        v.run_hi = _compact(np.maximum.accumulate(last))
        v.run_lo = _compact(np.minimum.accumulate(last))
        prev = session_before(idx)  # the last session's close, not a holiday's
        prev_f = self._factor_at(inst.con_id, prev, T)
        v.prev_close = round(math.exp(self._log_close(inst, prev)) * prev_f / inst.min_tick)
        self._views[key] = v
        if len(self._views) > self._cache_days:
            self._views.popitem(last=False)
        return v

    # ---- public API ----------------------------------------------------------------------

    def _inst(self, symbol: str) -> Instrument:
        inst = LISTED.get(symbol) or instrument(symbol)
        if inst is None:
            raise KeyError(f"unknown symbol {symbol!r}")
        return inst

    def quote(self, symbol: str) -> Quote:
        """The quote at ``clock.now()``. Raises KeyError for an unknown symbol."""
        return self._quote(self._inst(symbol), self.clock.timestamp())

    def quote_at(self, symbol: str, when: datetime) -> Quote:
        """The quote at any time ``when`` (overrides recorded so far apply)."""
        return self._quote(self._inst(symbol), _to_utc(when).timestamp())

    def _quote(self, inst: Instrument, ts: float) -> Quote:
        """Prices move on the one-second grid; displayed sizes also move each quarter second
        (unchanged on the whole second), so a stream carries about four updates a second."""
        if inst.underlying:
            return self._derived_quote(inst, ts)
        idx, s = _LOCATOR.locate(ts)
        v = self._view(inst, idx)
        k = v.inv_tick
        quarter = int((ts % 1.0) * 4)
        lot = FX_LOT if inst.sec_type == "CASH" else 1
        bid_extra = ask_extra = 0
        if quarter:  # 100 x quarter keeps consecutive quarters apart; the table varies them
            slot = (s * 4 + quarter + inst.con_id) % BOOK_JITTER_LEN
            bid_extra = 100 * quarter + self._book_jitter[slot]
            ask_extra = 100 * quarter + self._book_jitter[(slot + 1) % BOOK_JITTER_LEN]
        return Quote(
            inst.symbol,
            inst.con_id,
            v.bid[s] / k,
            v.ask[s] / k,
            v.last[s] / k,
            (v.bid_size[s] + bid_extra) * lot,
            (v.ask_size[s] + ask_extra) * lot,
            v.last_size[s] * lot,
            v.cum_vol[s] * lot,
            v.last[0] / k,
            v.run_hi[s] / k,
            v.run_lo[s] / k,
            (v.last[T] if s == T else v.prev_close) / k,  # after the close: today's close
            datetime.fromtimestamp(ts, UTC),
        )

    def price_at(self, symbol: str, when: datetime) -> float:
        """The last trade price at any time ``when`` (cheap: no order-book arrays are built)."""
        inst = self._inst(symbol)
        if inst.underlying:
            return self._derived_quote(inst, _to_utc(when).timestamp()).last
        idx, s = _LOCATOR.locate(_to_utc(when).timestamp())
        key = (inst.con_id, idx)
        v = self._views.get(key)
        if v is not None and v.version == self._version.get(inst.con_id, 0):
            return v.last[s] / v.inv_tick
        m = float(self._core(inst, idx).mid[s]) * self._factor_at(inst.con_id, idx, s)
        inv = round(1.0 / inst.min_tick)
        return round(m * inv) / inv

    def last_price(self, symbol: str) -> float:
        """The last trade price at ``clock.now()``."""
        inst = self._inst(symbol)
        if inst.underlying:
            return self._derived_quote(inst, self.clock.timestamp()).last
        idx, s = _LOCATOR.locate(self.clock.timestamp())
        v = self._view(inst, idx)
        return v.last[s] / v.inv_tick

    # ---- derivatives ---------------------------------------------------------------------

    def multiplier(self, symbol: str) -> float:
        """Currency per point of price: 1 for stocks and FX, 50 for ES, 100 for options."""
        return self._inst(symbol).multiplier

    def fair_value(self, inst: Instrument, spot: float, ts: float) -> float:
        """Model price of a future or option when its underlying is at ``spot`` at ``ts``."""
        years = years_to_expiry(inst.expiry, ts)
        q = DIVIDEND_YIELD.get(inst.underlying, 0.0)
        if inst.sec_type == "FUT":
            return forward_price(spot, years, RATE, q)
        sigma = self.implied_vol_at(inst, spot, ts)
        return black_scholes(inst.right, spot, inst.strike, years, sigma, RATE, q).price

    def implied_vol_at(self, inst: Instrument, spot: float, ts: float) -> float:
        """The surface volatility of option ``inst`` with its underlying at ``spot``."""
        under = LISTED[inst.underlying]
        years = years_to_expiry(inst.expiry, ts)
        forward = forward_price(spot, years, RATE, DIVIDEND_YIELD.get(inst.underlying, 0.0))
        return self._surface(under).vol(inst.strike, forward, years)

    def _derived_quote(self, inst: Instrument, ts: float) -> Quote:
        """A future or option quoted around its fair value: a spread of one tick (futures) or
        about 1 % (options, at least one tick), seeded sizes in contracts."""
        under = self._quote(LISTED[inst.underlying], ts)
        spot = (under.bid + under.ask) / 2.0
        tick = inst.min_tick
        fair = self.fair_value(inst, spot, ts) / tick
        close = round(self.fair_value(inst, under.close, ts - 86400.0) / tick)
        opening = round(self.fair_value(inst, under.open, ts) / tick)
        spread = 1 if inst.sec_type == "FUT" else max(1, round(0.01 * fair))
        bid = max(0, math.floor(fair - spread / 2.0))
        ask = bid + spread
        last = min(max(round(fair), bid), ask)
        _, s = _LOCATOR.locate(ts)
        jitter = self._book_jitter[(s * 4 + int((ts % 1.0) * 4) + inst.con_id) % BOOK_JITTER_LEN]
        size_unit = 10 if inst.sec_type == "OPT" else 1
        k = round(1.0 / tick)
        return Quote(
            inst.symbol,
            inst.con_id,
            bid / k,
            ask / k,
            last / k,
            size_unit * (1 + (inst.con_id + s) % 20) + jitter // 100,
            size_unit * (1 + (inst.con_id + 7 * s) % 20) + jitter // 200,
            size_unit,
            s // 30 + inst.con_id % 50,
            opening / k,
            max(opening, last, close) / k,
            min(opening, last, close) / k,
            close / k,
            datetime.fromtimestamp(ts, UTC),
        )

    def daily_closes(self, symbol: str, first: date, last: date) -> list[tuple[date, float]]:
        """(date, close) for every session from ``first`` to ``last`` inclusive (no overrides)."""
        inst = self._inst(symbol)
        i0, i1 = day_index(first), day_index(last + timedelta(days=1)) - 1
        dev = self._daily_arrays(inst, max(i1, 0))[0]
        lb = math.log(inst.base_price)
        inv = round(1.0 / inst.min_tick)
        return [
            (day_date(i), round(math.exp(lb + dev[i]) * inv) / inv)
            for i in sessions_between(i0, i1)
        ]

    def bars(
        self,
        symbol: str,
        end: datetime,
        duration: str,
        bar_size: str,
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        capped: bool = True,
    ) -> list[Bar]:
        """Historical bars ending at ``end`` (capped at ``clock.now()`` unless ``capped`` is
        False: a stream's simulated time may run ahead of a frozen clock), oldest first.

        ``duration``: "N S" (seconds), "N D" (the N latest sessions that opened before
        ``end``), "N W" / "N M" / "N Y" (calendar weeks / months / years back from ``end``).
        ``bar_size``: TWS sizes from "1 secs" to "1 month". Intraday bars are aligned to
        multiples of the bar size after midnight ET, clipped to the session; the session's
        last bar includes the 16:00 closing print, and a bar in progress at ``end`` ends there,
        so the last bar's close equals the quote's last at ``end``. ``use_rth=False`` gives the
        same bars (the simulation has no extended-hours trading). Raises
        :class:`HistoricalDataError` (a ValueError) for a bad request, KeyError for an unknown
        symbol. :meth:`bar_request` gives the same bars a few sessions at a time.
        """
        request = self.bar_request(symbol, end, duration, bar_size, what_to_show, capped)
        return request.finish(request.part(request.sessions))

    def bar_request(
        self,
        symbol: str,
        end: datetime,
        duration: str,
        bar_size: str,
        what_to_show: str = "TRADES",
        capped: bool = True,
    ) -> BarRequest:
        """A checked historical request (see :meth:`bars`) whose bars can be computed a few
        sessions at a time: ``finish(part(s1) + part(s2) + ...)`` over ``sessions`` in order.

        A future's or option's bars are its underlying's, mapped through the model; the
        volatility series are computed from the instrument's TRADES bars."""
        inst = self._inst(symbol)
        if inst.underlying:
            under = self.bar_request(inst.underlying, end, duration, bar_size, what_to_show, capped)
            return under.mapped(lambda bars: self._derived_bars(inst, bars))
        if what_to_show.strip().upper() in _VOL_SERIES:
            trades = self.bar_request(symbol, end, duration, bar_size, "TRADES", capped)
            return trades.mapped(
                lambda bars: self._volatility_bars(inst, bars, bar_size, what_to_show)
            )
        step = parse_bar_size(bar_size)
        count, unit = parse_duration(duration)
        what = _WHAT.get(what_to_show.strip().upper())
        if what is None:
            raise HistoricalDataError(
                321,
                f"Error validating request.-'bP' : cause - Invalid whatToShow {what_to_show!r}; "
                f"supported: TRADES, MIDPOINT, BID, ASK, BID_ASK, ADJUSTED_LAST, "
                "HISTORICAL_VOLATILITY, OPTION_IMPLIED_VOLATILITY.",
            )
        end = min(_to_utc(end), self.clock.now()) if capped else _to_utc(end)
        end_ts = end.timestamp()
        first_ts = head_timestamp(inst).timestamp()
        if end_ts <= first_ts:
            raise HistoricalDataError(
                162,
                "Historical Market Data Service error message:HMDS query returned no data: "
                f"{inst.symbol} has history from {inst.listed} on",
            )
        end_idx, _ = locate(end_ts)
        if unit == "S":
            start_ts = end_ts - count
        elif unit == "D":
            k = int(np.searchsorted(_SESSIONS, end_idx))
            start_ts = session_bounds(int(_SESSIONS[max(k - count + 1, 0)]))[0]
        elif unit == "W":
            start_ts = end_ts - 7 * 86400 * min(count, 60 * 53)
        elif unit == "M":
            start_ts = _months_back(end, min(count, 12 * 60)).timestamp()
        else:
            start_ts = _months_back(end, 12 * min(count, 60)).timestamp()
        start_ts = max(start_ts, first_ts)  # no bars before the symbol was listed
        start_idx = day_index(datetime.fromtimestamp(start_ts, ET).date())
        sessions = [
            i for i in sessions_between(start_idx, end_idx)
            if session_bounds(i)[1] > start_ts and session_bounds(i)[0] < end_ts
        ]  # fmt: skip
        if step > 0:
            seconds = sum(
                max(0.0, min(end_ts, session_bounds(i)[1]) - max(start_ts, session_bounds(i)[0]))
                for i in sessions
            )
            if seconds / step > _MAX_BARS + len(sessions):
                raise HistoricalDataError(
                    162, "Historical Market Data Service error message:Time length exceed max."
                )
        return BarRequest(self, inst, sessions, start_ts, end_ts, step, what)

    def _derived_bars(self, inst: Instrument, under: list[Bar]) -> list[Bar]:
        """A future's or option's bars: its underlying's bars, each price mapped through the
        model at the bar's start (a put's high comes from the underlying's low)."""
        tick = round(1.0 / inst.min_tick)
        out = []
        for bar in under:
            ts = bar.time.timestamp()
            o, h, lo, c = (
                round(self.fair_value(inst, p, ts) * tick) / tick
                for p in (bar.open, bar.high, bar.low, bar.close)
            )
            h, lo = max(h, lo), min(h, lo)
            volume = bar.volume // 1000 if bar.volume > 0 else bar.volume
            wap = (h + lo) / 2.0 if bar.wap > 0 else bar.wap
            out.append(
                Bar(
                    bar.time,
                    o,
                    h,
                    lo,
                    c,
                    volume,
                    wap,
                    bar.count // 10 if bar.count > 0 else bar.count,
                )
            )
        return out

    def _volatility_bars(self, inst, trades: list[Bar], bar_size, what_to_show) -> list[Bar]:
        """Annualized volatility as bars (every price field the same value, volume -1).

        HISTORICAL_VOLATILITY: the standard deviation of the last 20 bar-to-bar log returns
        of the TRADES closes, annualized by the bars in a year. OPTION_IMPLIED_VOLATILITY:
        the surface's 30-day at-the-money volatility scaled by sqrt(realized / base vol).
        """
        step = parse_bar_size(bar_size)
        per_year = 252.0 * (T / step if step > 0 else 1.0 / -step)
        closes = np.log([b.close for b in trades])
        surface = self._surface(inst)
        out = []
        for i, bar in enumerate(trades):
            window = np.diff(closes[max(0, i - _VOL_WINDOW) : i + 1])
            hv = float(window.std() * math.sqrt(per_year)) if len(window) > 1 else inst.annual_vol
            if what_to_show.strip().upper() == "OPTION_IMPLIED_VOLATILITY":
                atm = surface.vol(bar.close, bar.close, 30 / 365)
                hv = atm * math.sqrt(max(hv, 1e-4) / inst.annual_vol)
            hv = round(hv, 6)
            out.append(Bar(bar.time, hv, hv, hv, hv, -1, -1.0, -1))
        return out

    def _surface(self, under: Instrument) -> VolSurface:
        surface = self._surfaces.get(under.con_id)
        if surface is None:
            surface = self._surfaces[under.con_id] = vol_surface(
                self.seed, under.con_id, under.annual_vol
            )
        return surface

    def _day_stats(self, inst, idx, hi, what, sig) -> tuple:
        """(open, high, low, close, volume, wap, count) over seconds [0, hi) of one session."""
        key = (inst.con_id, idx, hi, what, sig)
        if hi == T + 1 and key in self._summaries:
            return self._summaries[key]
        k = round(1.0 / inst.min_tick)
        if what == "BID_ASK":
            bid = self._ticks(inst, idx, sig, "BID")[:hi]
            ask = self._ticks(inst, idx, sig, "ASK")[:hi]
            o, c = round(float(bid.mean()) / k, 6), round(float(ask.mean()) / k, 6)
            h, lo = float(ask.max()) / k, float(bid.min()) / k
        else:
            p = self._ticks(inst, idx, sig, what)[:hi]
            o, h, lo, c = float(p[0]) / k, float(p.max()) / k, float(p.min()) / k, float(p[-1]) / k
        if what == "TRADES":
            vol = self._core(inst, idx).vol[:hi]
            v = int(vol.sum())
            wap = round(float((p * vol).sum()) / v / k, 4) if v else c
            cnt = int(np.ceil(vol / _AVG_TRADE_SIZE).sum())
        else:
            v, wap, cnt = -1, -1.0, -1
        out = (o, h, lo, c, v, wap, cnt)
        if hi == T + 1:
            if len(self._summaries) >= _MAX_SUMMARIES:  # bounded: ~20 MB of day statistics
                self._summaries.clear()
            self._summaries[key] = out
        return out

    def _session_rows(self, inst, sessions, end_ts, what) -> list[tuple[date, tuple, int]]:
        """(date, (open, high, low, close, volume, wap, count), seconds) of each session up to
        end_ts (``seconds``: how many one-second prices the statistics cover)."""
        rows = []
        for idx in sessions:
            open_ts, close_ts = session_bounds(idx)
            hi = T + 1 if end_ts >= close_ts else int(end_ts - open_ts) + 1
            stats = self._day_stats(inst, idx, hi, what, self._sig(inst.con_id, idx))
            rows.append((day_date(idx), stats, hi))
        return rows

    @staticmethod
    def _period_bars(rows, step, what) -> list[Bar]:
        """Day, week (step -7) or month (-30) bars from :meth:`_session_rows` (BID_ASK: the
        sessions' time-average bid and ask weighted by their seconds)."""
        groups: list[list] = []
        for d, st, seconds in rows:
            if step == -1:
                gkey = d
            elif step == -7:
                gkey = d.isocalendar()[:2]
            else:
                gkey = (d.year, d.month)
            if not groups or groups[-1][0] != gkey:
                groups.append([gkey, d, [], []])
            groups[-1][2].append(st)
            groups[-1][3].append(seconds)
        out = []
        for _, d, sts, seconds in groups:
            first, last = sts[0][0], sts[-1][3]
            if what == "BID_ASK":
                total = sum(seconds)
                first = round(sum(s[0] * n for s, n in zip(sts, seconds, strict=True)) / total, 6)
                last = round(sum(s[3] * n for s, n in zip(sts, seconds, strict=True)) / total, 6)
            vols = [s[4] for s in sts]
            if what == "TRADES":
                v = sum(vols)
                wap = round(sum(s[5] * s[4] for s in sts) / v, 4) if v else sts[-1][3]
                cnt = sum(s[6] for s in sts)
            else:
                v, wap, cnt = -1, -1.0, -1
            out.append(
                Bar(
                    datetime(d.year, d.month, d.day, tzinfo=ET),
                    first,
                    max(s[1] for s in sts),
                    min(s[2] for s in sts),
                    last,
                    v,
                    wap,
                    cnt,
                )
            )
        return out

    def _intraday_bars(self, inst, sessions, start_ts, end_ts, step, what) -> list[Bar]:
        out: list[Bar] = []
        k = round(1.0 / inst.min_tick)
        first = (RTH_OPEN_SECOND // step) * step
        grid = np.arange(first, RTH_CLOSE_SECOND, step, dtype=np.int64) - RTH_OPEN_SECOND
        starts_all = np.maximum(grid, 0)
        ends_all = np.append(starts_all[1:], T + 1)  # the last bar takes the closing print
        for idx in sessions:
            open_ts, close_ts = session_bounds(idx)
            starts, ends = starts_all, ends_all
            if close_ts - open_ts < T:  # an early close: the last bar takes the day's close
                starts = starts_all[starts_all < close_ts - open_ts]
                ends = np.append(starts[1:], T + 1)
            hi = T + 1 if end_ts >= close_ts else int(end_ts - open_ts) + 1
            sel = (open_ts + starts < end_ts) & (open_ts + np.minimum(ends, T) > start_ts)
            a = starts[sel]
            if len(a) == 0:
                continue
            b = np.minimum(ends[sel], hi)
            b[-1] = hi  # the last bar runs to ``end``: its close is the quote's last there
            sig = self._sig(inst.con_id, idx)
            if what == "BID_ASK":
                bid = self._ticks(inst, idx, sig, "BID")
                ask = self._ticks(inst, idx, sig, "ASK")
                seg_hi = np.maximum.reduceat(ask[: b[-1]], a)
                seg_lo = np.minimum.reduceat(bid[: b[-1]], a)
                o_px = np.round(_window_means(bid, a, b) / k, 6)
                c_px = np.round(_window_means(ask, a, b) / k, 6)
            else:
                p = self._ticks(inst, idx, sig, what)
                seg_hi = np.maximum.reduceat(p[: b[-1]], a)
                seg_lo = np.minimum.reduceat(p[: b[-1]], a)
                o_px, c_px = p[a] / k, p[b - 1] / k
            if what == "TRADES":
                vol = self._core(inst, idx).vol
                cv = np.concatenate(([0], np.cumsum(vol)))
                cpv = np.concatenate(([0.0], np.cumsum(p * vol)))
                ccnt = np.concatenate(([0], np.cumsum(np.ceil(vol / _AVG_TRADE_SIZE))))
                v = cv[b] - cv[a]
                pv = cpv[b] - cpv[a]
                cnt = ccnt[b] - ccnt[a]
            for j in range(len(a)):
                if what == "TRADES":
                    vj = int(v[j])
                    wap = round(float(pv[j]) / vj / k, 4) if vj else float(c_px[j])
                    bar_v, bar_cnt = vj, int(cnt[j])
                else:
                    bar_v, wap, bar_cnt = -1, -1.0, -1
                out.append(
                    Bar(
                        datetime.fromtimestamp(open_ts + int(a[j]), ET),
                        float(o_px[j]),
                        float(seg_hi[j]) / k,
                        float(seg_lo[j]) / k,
                        float(c_px[j]),
                        bar_v,
                        wap,
                        bar_cnt,
                    )
                )
        return out


def _window_means(ticks: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mean of ``ticks[a:b]`` for each window (a, b) of ``starts`` / ``ends``."""
    cum = np.concatenate(([0.0], np.cumsum(ticks, dtype=np.float64)))
    return (cum[ends] - cum[starts]) / (ends - starts)


class BarRequest:
    """A checked historical-data request; its bars come a few sessions at a time, so a long
    request need not hold the event loop (see :meth:`Market.bar_request`)."""

    def __init__(self, market, inst, sessions, start_ts, end_ts, step, what) -> None:
        self.market = market
        self.inst = inst
        self.sessions: list[int] = sessions
        self.start_ts, self.end_ts = start_ts, end_ts
        self.step, self.what = step, what
        self.transforms: tuple = ()

    def mapped(self, transform) -> BarRequest:
        """The same request whose finished bars pass through ``transform(bars) -> bars``."""
        self.transforms = (*self.transforms, transform)
        return self

    def steps(self, bars_per_step: int = 2000) -> list[list[int]]:
        """The sessions in groups of about ``bars_per_step`` bars' work (at least one session;
        a daily bar costs about as much as 400 intraday bars: it needs the day's whole path)."""
        per_session = -(-T // self.step) if self.step > 0 else 400
        size = max(1, bars_per_step // per_session)
        return [self.sessions[i : i + size] for i in range(0, len(self.sessions), size)]

    def part(self, sessions: list[int]) -> list:
        """The work for these sessions (bars, or per-session statistics for daily bars)."""
        m = self.market
        if self.step > 0:
            return m._intraday_bars(
                self.inst, sessions, self.start_ts, self.end_ts, self.step, self.what
            )
        return m._session_rows(self.inst, sessions, self.end_ts, self.what)

    def finish(self, parts: list) -> list[Bar]:
        """The bars, from the concatenated :meth:`part` results of every session in order."""
        bars = parts if self.step > 0 else Market._period_bars(parts, self.step, self.what)
        for transform in self.transforms:
            bars = transform(bars)
        return bars
