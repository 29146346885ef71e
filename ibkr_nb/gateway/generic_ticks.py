"""reqMktData's genericTickList: which ids the gateway accepts, and the ticks each one adds.

Every value comes from the gateway's own seeded market at the stream's simulated time:
volatilities from the bars, volume statistics from the day's cumulative volume, 13/26/52-week
ranges from the daily bars. Two kinds are canned and say so: news (292) reuses the simulated
headlines of :mod:`.research`, and dividends (456) are a simulated quarterly schedule per stock
(:func:`dividends`); the price paths do not drop on ex-dates.

An id TWS does not serve for the contract's security type is refused as TWS refuses it: error
321 "Incorrect generic tick list of ... Legal ones for (STK) are: ..." carrying the request id.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from .instruments import FUTURE_ROOTS, Instrument, listed_futures
from .market import DIVIDEND_YIELD, ET, Market, Quote, locate, trading_phase
from .research import NEWS_PROVIDERS, fundamental_ratios, headlines

# id -> TWS's name for it, in the order TWS lists them in its 321 error.
GENERIC_TICKS = {
    100: "Option Volume",
    101: "Option Open Interest",
    104: "Historical Volatility",
    105: "Average Option Volume",
    106: "Option Implied Volatility",
    162: "Index Future Premium",
    165: "Misc. Stats",
    221: "Mark Price",
    225: "Auction values",
    233: "RTVolume",
    236: "Shortable",
    258: "Fundamental Ratios",
    292: "Wide_news",
    293: "TradeCount",
    294: "TradeRate",
    295: "VolumeRate",
    318: "LastRTHTrade",
    375: "RTTrdVolume",
    411: "Realtime Historical Volatility",
    456: "IBDividends",
    588: "Futures Open Interest",
    595: "Short-Term Volume X Mins",
    619: "Creditman Slow Mark Price",
}
# Ids served for some security types only (every other id: for all of them).
_ONLY_FOR = {
    162: ("IND", "FUT"),
    258: ("STK",),
    456: ("STK",),
    588: ("FUT",),
}
_AVG_TRADE_SIZE = 150  # shares per trade, as the market's bar counts
_WEEKS = ((13, 15, 16), (26, 17, 18), (52, 19, 20))  # (weeks, low tick, high tick)
_SHORT_TERM = ((3, 63), (5, 64), (10, 65))  # (minutes, size tick) of generic 595


def legal_ticks(sec_type: str) -> dict[int, str]:
    """The generic ticks TWS serves for ``sec_type`` (id -> name)."""
    return {
        tick: name
        for tick, name in GENERIC_TICKS.items()
        if sec_type in _ONLY_FOR.get(tick, (sec_type,))
    }


@dataclass(frozen=True)
class GenericList:
    """A parsed genericTickList: the ids, the news providers of ``292:BRFG+DJNL`` (empty: all)
    and ``mdoff`` (no top-of-book ticks, only the generic ones). ``bad`` holds the entries
    that are not ids."""

    ticks: tuple[int, ...] = ()
    providers: tuple[str, ...] = ()
    market_data_off: bool = False
    bad: tuple[str, ...] = field(default=())


def parse_generic_list(text: str) -> GenericList:
    """Parse "233,236,mdoff,292:BRFG+DJNL" (spaces ignored)."""
    ticks: list[int] = []
    providers: list[str] = []
    bad: list[str] = []
    off = False
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.lower() == "mdoff":
            off = True
            continue
        tick, _, names = part.partition(":")
        if not tick.isdigit():
            bad.append(part)
            continue
        ticks.append(int(tick))
        providers += [n for n in names.split("+") if n]
    return GenericList(tuple(ticks), tuple(providers), off, tuple(bad))


def refusal(generic: GenericList, sec_type: str) -> str | None:
    """TWS's 321 text for ids not served for ``sec_type``, or None when all are."""
    legal = legal_ticks(sec_type)
    unknown = [*generic.bad, *(str(t) for t in generic.ticks if t not in legal)]
    if not unknown:
        return None
    listed = ",".join(f"{k}({name})" for k, name in legal.items())
    return (
        f"Error validating request.-'bK' : cause - Incorrect generic tick list of "
        f"{','.join(unknown)}.  Legal ones for ({sec_type}) are: {listed}"
    )


def dividends(inst: Instrument, today: date) -> str:
    """Simulated IB Dividends (tick 59) "past12,next12,nextDate,nextAmount" for a stock.

    A quarterly dividend of ``base_price * yield / 4`` (rounded to the cent), paid in the
    months ``con_id % 3 + 1, +3, +6, +9`` with the ex-date on day ``8 + con_id % 15``. The
    yield is :data:`DIVIDEND_YIELD` where given, else 0 to 3 % by conId (a stock whose conId
    is a multiple of 5 pays nothing: "0,0,,"). Not real corporate actions."""
    rate = DIVIDEND_YIELD.get(inst.symbol, (inst.con_id % 5) * 0.0075)
    amount = round(inst.base_price * rate / 4.0, 2)
    if amount <= 0:
        return "0,0,,"
    ex_day = 8 + inst.con_id % 15
    year, month = today.year, inst.con_id % 3 + 1
    while date(year, month, ex_day) <= today:
        month += 3
        if month > 12:
            year, month = year + 1, month - 12
    next_date = date(year, month, min(ex_day, calendar.monthrange(year, month)[1]))
    total = round(4 * amount, 2)
    return f"{total:g},{total:g},{next_date:%Y%m%d},{amount:g}"


class GenericTicks:
    """The generic ticks of one reqMktData stream: :meth:`values` at each update."""

    def __init__(self, market: Market, inst: Instrument, generic: GenericList) -> None:
        self.market = market
        self.inst = inst
        self.generic = generic
        self._ranges: tuple[int, list[float]] | None = None  # (day, [lo13, hi13, ...])

    def values(self, quote: Quote, ts: float) -> list[tuple[str, int, object]]:
        """(kind, tick type, value) of every requested generic tick at simulated ``ts``;
        kind is price, size, generic, string or news (value: a tickNews dict)."""
        out: list[tuple[str, int, object]] = []
        for tick in self.generic.ticks:
            out += self._tick(tick, quote, ts)
        return out

    def _tick(self, tick: int, q: Quote, ts: float) -> list[tuple[str, int, object]]:
        inst = self.inst
        trades = math.ceil(q.volume / _AVG_TRADE_SIZE)
        if tick == 100:
            return [("size", 29, q.volume // 2), ("size", 30, q.volume // 3)]
        if tick == 101:
            oi = 1000 + inst.con_id % 9000
            return [("size", 86 if inst.sec_type == "FUT" else 27, oi), ("size", 28, oi)]
        if tick == 104:
            return [("generic", 23, self._realized_vol(ts))]
        if tick == 105:
            return [("size", 87, 5000 + inst.con_id % 50000)]
        if tick == 106:
            return [("generic", 24, self._atm_vol(q, ts))]
        if tick == 162:
            return [("generic", 31, self._future_premium(q, ts))]
        if tick == 165:
            ranges = self._week_ranges(q, ts)
            out = [("price", t, v) for t, v in zip((15, 16, 17, 18, 19, 20), ranges, strict=True)]
            return [*out, ("size", 21, float(inst.avg_volume) / 100.0)]
        if tick == 221:
            return [("price", 37, q.last)]
        if tick == 225:
            return self._auction(q)
        if tick in (233, 375):
            text = f"{q.last};{q.last_size};{int(ts * 1000)};{q.volume};{q.last};true"
            return [("string", 48 if tick == 233 else 77, text)]
        if tick == 236:
            return [("generic", 46, 3.0), ("size", 89, float(inst.avg_volume))]
        if tick == 258:
            return [("string", 47, fundamental_ratios(inst, q.last))]
        if tick == 292:
            return self._news(ts)
        if tick == 293:
            return [("generic", 54, float(trades))]
        if tick in (294, 295):
            minutes = self._session_minutes(ts)
            rate = (trades if tick == 294 else q.volume) / minutes
            return [("generic", 55 if tick == 294 else 56, round(rate, 2))]
        if tick == 318:
            return [("price", 57, self._last_rth_trade(q, ts))]
        if tick == 411:
            return [("generic", 58, self._realized_vol(ts))]
        if tick == 456:
            return [("string", 59, dividends(inst, datetime.fromtimestamp(ts, ET).date()))]
        if tick == 588:
            return [("size", 86, 1000 + inst.con_id % 9000)]
        if tick == 595:
            return [("size", t, self._volume_since(q, ts - 60 * m)) for m, t in _SHORT_TERM]
        if tick == 619:
            return [("price", 79, self._quote(ts - ts % 60).last)]
        raise ValueError(f"generic tick {tick} is not served (see GENERIC_TICKS)")

    def _quote(self, ts: float) -> Quote:
        return self.market.quote_at(self.inst.symbol, datetime.fromtimestamp(ts, UTC))

    def _realized_vol(self, ts: float) -> float:
        """30-day historical volatility of the instrument (or its underlying), annualized."""
        key = self.inst.underlying or self.inst.symbol
        end = datetime.fromtimestamp(ts, UTC)
        bars = self.market.bars(key, end, "30 D", "1 day", "HISTORICAL_VOLATILITY", capped=False)
        return bars[-1].close

    def _atm_vol(self, q: Quote, ts: float) -> float:
        """30-day at-the-money implied volatility of the underlying (option: its own)."""
        if self.inst.sec_type == "OPT":
            under = self.market.quote_at(self.inst.underlying, datetime.fromtimestamp(ts, UTC))
            return self.market.implied_vol_at(self.inst, (under.bid + under.ask) / 2.0, ts)
        end = datetime.fromtimestamp(ts, UTC)
        return self.market.bars(
            self.inst.symbol, end, "1 D", "1 day", "OPTION_IMPLIED_VOLATILITY", capped=False
        )[-1].close

    def _future_premium(self, q: Quote, ts: float) -> float:
        """The front future's fair value over the index (a future: its own premium)."""
        inst = self.inst
        if inst.sec_type == "FUT":
            spot = self.market.quote_at(inst.underlying, datetime.fromtimestamp(ts, UTC)).last
            future = inst
        else:
            spot = q.last
            roots = [r for r, spec in FUTURE_ROOTS.items() if spec[0] == inst.symbol]
            if not roots:
                return 0.0  # an index without futures has no premium
            today = datetime.fromtimestamp(ts, ET).date()
            future = listed_futures(roots[0], today)[0]
        return round(self.market.fair_value(future, spot, ts) - spot, 4)

    def _week_ranges(self, q: Quote, ts: float) -> list[float]:
        """[13-week low, high, 26-week low, high, 52-week low, high]: the daily bars before
        today (computed once a day) and today's range so far."""
        today = datetime.fromtimestamp(ts, ET).date()
        day = today.toordinal()
        if self._ranges is None or self._ranges[0] != day:
            end = datetime(today.year, today.month, today.day, tzinfo=ET)
            bars = self.market.bars(self.inst.symbol, end, "1 Y", "1 day", capped=False)
            ranges = []
            for weeks, _, _ in _WEEKS:
                recent = bars[-weeks * 5 :] or bars
                ranges += [min(b.low for b in recent), max(b.high for b in recent)]
            self._ranges = (day, ranges)
        lows_highs = self._ranges[1]
        return [min(v, q.low) if i % 2 == 0 else max(v, q.high) for i, v in enumerate(lows_highs)]

    def _auction(self, q: Quote) -> list[tuple[str, int, object]]:
        """The opening cross: price = the day's open, volume 2 % of the average daily volume,
        imbalance 0 to 19 round lots by conId."""
        volume = (self.inst.avg_volume // 5000) * 100
        imbalance = 100 * (self.inst.con_id % 20)
        return [
            ("size", 34, volume),
            ("price", 35, q.open),
            ("size", 36, imbalance),
            ("size", 61, imbalance // 2),
        ]

    def _news(self, ts: float) -> list[tuple[str, int, object]]:
        """The latest simulated headline of each provider asked for (all when none)."""
        end = datetime.fromtimestamp(ts, UTC)
        providers = [p for p in self.generic.providers if p in NEWS_PROVIDERS]
        rows = headlines(self.inst, providers, end, None, len(providers) or len(NEWS_PROVIDERS))
        return [
            (
                "news",
                0,
                {
                    "timeStamp": int(datetime.strptime(r["time"], "%Y-%m-%d %H:%M:%S.0")
                                     .replace(tzinfo=ET).timestamp() * 1000),
                    "providerCode": r["providerCode"],
                    "articleId": r["articleId"],
                    "headline": r["headline"],
                    "extraData": "",
                },
            )
            for r in rows
        ]  # fmt: skip

    @staticmethod
    def _session_minutes(ts: float) -> float:
        """Minutes of the session in force so far (a whole session outside hours)."""
        _, second = locate(ts)
        return max(second, 60) / 60.0

    @staticmethod
    def _last_rth_trade(q: Quote, ts: float) -> float:
        """The last trade of regular hours: the last now, the close outside the session."""
        return q.last if trading_phase(ts) == "regular" else q.close

    def _volume_since(self, q: Quote, since: float) -> int:
        """Shares traded since ``since`` (0 across a session boundary)."""
        return max(q.volume - self._quote(since).volume, 0)
