"""Live market-data subscriptions: quotes, tick-by-tick, real-time bars, depth, bar updates.

Each subscription is a :class:`Stream` that the server's tick loop pumps every
``TICK_INTERVAL`` (0.25 s of wall time). A stream's :class:`Schedule` says what simulated time
its next update shows: with a running clock, the clock's time; with a frozen clock, the
clock's time plus ``n * step`` for the n-th update, so streams keep ticking on a fixed
schedule (and give the same sequence on every run) while orders still see the frozen clock.

The gateway's request handlers for these subscriptions live in :class:`StreamRequests`,
mixed into ``PaperGateway``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from datetime import UTC, datetime

from .generic_ticks import GenericList, GenericTicks, parse_generic_list
from .generic_ticks import refusal as generic_refusal
from .instruments import Instrument
from .market import DIVIDEND_YIELD, FX_LOT, Quote, parse_bar_size, years_to_expiry
from .pricing import RATE, black_scholes, implied_vol
from .replies import bar_rows, parse_end_datetime, ticks_for_quote

TICK_INTERVAL = 0.25  # wall seconds between stream updates (4 per second)
BAR_SECONDS = 5  # reqRealTimeBars supports 5-second bars only, as TWS
MAX_LINES = 100  # streaming market data lines per client (TWS's default allowance)
MAX_HISTORICAL_TICKS = 1000  # per historical-ticks request or tick-by-tick back-fill, as TWS
DEPTH_MAKERS = ("NSDQ", "ARCA", "BATS", "EDGX", "IEX", "NYSE", "MEMX", "BYX")
DEPTH_EXCHANGES = (
    ("NASDAQ", "STK", "", "Deep2", 1),
    ("ARCA", "STK", "", "Deep", 1),
    ("BATS", "STK", "", "Deep", 1),
    ("IEX", "STK", "", "Deep", 1),
    ("IDEALPRO", "CASH", "", "Deep", 4),
    ("CME", "FUT", "", "Deep", 2147483647),
    ("CBOE", "OPT", "", "Deep", 2147483647),
)
_OPTION_TICKS = ((10, 80, "bid"), (11, 81, "ask"), (12, 82, "last"))  # live, delayed, price


class Schedule:
    """The simulated time of a stream's successive updates (see the module docstring)."""

    def __init__(self, clock, step: float = TICK_INTERVAL) -> None:
        self.clock = clock
        self.step = step
        self.count = 0

    def next(self) -> float:
        if not self.clock.fixed:
            return self.clock.timestamp()
        self.count += 1
        return self.clock.timestamp() + self.count * self.step


class Stream(ABC):
    """One client subscription; :meth:`pump` sends what changed at the next update time."""

    kind = ""

    def __init__(self, gateway, client, req_id: int, inst: Instrument, step=TICK_INTERVAL):
        self.gateway = gateway
        self.market = gateway.market
        self.client = client
        self.req_id = req_id
        self.inst = inst
        self.schedule = Schedule(gateway.clock, step)

    def pump(self) -> None:
        self.update(self.schedule.next())

    @abstractmethod
    def update(self, ts: float) -> None:
        """Send this subscription's messages for simulated time ``ts`` (epoch seconds)."""


class QuoteStream(Stream):
    """reqMktData: top of book (unless ``mdoff``), day statistics, option greeks and the
    generic ticks asked for (see :mod:`.generic_ticks`)."""

    kind = "mktData"

    def __init__(self, gateway, client, req_id, inst, generic: GenericList):
        super().__init__(gateway, client, req_id, inst)
        self.generic = GenericTicks(self.market, inst, generic)
        self.top_of_book = not generic.market_data_off
        self.sent: dict[object, object] = {}

    def update(self, ts: float) -> None:
        quote = self.market.quote_at(self.inst.symbol, datetime.fromtimestamp(ts, UTC))
        if self.top_of_book:
            for kind, tick_type, value, size in ticks_for_quote(
                quote, self.client.market_data_type, self.inst.sec_type
            ):
                self._tick(kind, tick_type, value, size)
            if self.inst.sec_type == "OPT":
                self._option_ticks(quote, ts)
        for kind, tick_type, value in self.generic.values(quote, ts):
            self._tick(kind, tick_type, value, 0.0)

    def _option_ticks(self, quote: Quote, ts: float) -> None:
        """tickOptionComputation for the bid, ask, last (implied from each price) and model."""
        inst = self.inst
        under = self.market.quote_at(inst.underlying, datetime.fromtimestamp(ts, UTC))
        spot = (under.bid + under.ask) / 2.0
        years = years_to_expiry(inst.expiry, ts)
        q = DIVIDEND_YIELD.get(inst.underlying, 0.0)
        delayed = self.client.market_data_type in (3, 4)
        model_vol = self.market.implied_vol_at(inst, spot, ts)
        rows = [(83 if delayed else 13, model_vol)]
        for live, late, field in _OPTION_TICKS:
            price = getattr(quote, field)
            vol = implied_vol(inst.right, price, spot, inst.strike, years, RATE, q)
            rows.append((late if delayed else live, model_vol if math.isnan(vol) else vol))
        for tick_type, vol in rows:
            g = black_scholes(inst.right, spot, inst.strike, years, vol, RATE, q)
            values = (vol, g.delta, g.price, g.pv_dividend, g.gamma, g.vega, g.theta, spot)
            if self.sent.get(tick_type) == values:
                continue
            self.sent[tick_type] = values
            self.client.send(
                "tickOptionComputation",
                reqId=self.req_id,
                tickType=tick_type,
                tickAttrib=1,
                **dict(zip(OPTION_FIELDS, values, strict=True)),
            )

    def _tick(self, kind: str, tick_type: int, value, size: float) -> None:
        """Send one tick of ``kind`` (price, size, string, generic, news) unless unchanged."""
        key = ("news", value["articleId"]) if kind == "news" else tick_type
        if self.sent.get(key) == value:
            return
        self.sent[key] = value
        send, req_id = self.client.send, self.req_id
        if kind == "news":
            send("tickNews", reqId=req_id, **value)
            return
        if kind == "price":
            send("tickPrice", reqId=req_id, tickType=tick_type, price=value, size=size, attrMask=0)
        elif kind == "size":
            send("tickSize", reqId=req_id, tickType=tick_type, size=value)
        elif kind == "string":
            send("tickString", reqId=req_id, tickType=tick_type, value=value)
        else:
            send("tickGeneric", reqId=req_id, tickType=tick_type, value=value)


OPTION_FIELDS = (
    "impliedVol",
    "delta",
    "optPrice",
    "pvDividend",
    "gamma",
    "vega",
    "theta",
    "undPrice",
)


class TickByTickStream(Stream):
    """reqTickByTickData: Last / AllLast trades (one a simulated second), BidAsk and MidPoint
    changes, each sent once. ``history`` > 0 (numberOfTicks, at most 1000) first sends the
    last that many ticks up to now (one a second of trades; quote changes, looked for over
    up to four seconds a tick) as tick-by-tick messages before the live ones, as TWS does;
    ``ignore_size`` leaves out BidAsk changes of size only."""

    kind = "tickByTick"

    def __init__(self, gateway, client, req_id, inst, tick_type: str, history=0, ignore_size=False):
        super().__init__(gateway, client, req_id, inst)
        self.tick_type = tick_type
        self.ignore_size = ignore_size
        self.last: tuple = ()
        count = min(history, MAX_HISTORICAL_TICKS)
        if count > 0:
            now = int(gateway.clock.timestamp())
            window = count if tick_type in ("Last", "AllLast") else 4 * count
            ticks = []
            for second in range(now - window + 1, now + 1):
                key, values = self._tick(second)
                if key != self.last:
                    self.last = key
                    ticks.append(values)
            for values in ticks[-count:]:
                self.client.send("tickByTick", reqId=self.req_id, **values)

    def update(self, ts: float) -> None:
        key, values = self._tick(ts)
        if key != self.last:
            self.last = key
            self.client.send("tickByTick", reqId=self.req_id, **values)

    def _tick(self, ts: float) -> tuple[tuple, dict]:
        """(what makes it a new tick, the tickByTick message's values) at simulated ``ts``."""
        q = self.market.quote_at(self.inst.symbol, datetime.fromtimestamp(ts, UTC))
        second = int(ts)
        if self.tick_type in ("Last", "AllLast"):
            return (second,), {
                "tickType": 1 if self.tick_type == "Last" else 2,
                "time": second,
                "price": q.last,
                "size": float(q.last_size),
                "exchange": self.inst.primary_exchange if self.tick_type == "AllLast" else "",
                "specialConditions": "",
            }
        if self.tick_type == "BidAsk":
            key = (q.bid, q.ask) if self.ignore_size else (q.bid, q.ask, q.bid_size, q.ask_size)
            return key, {
                "tickType": 3,
                "time": second,
                "bidPrice": q.bid,
                "askPrice": q.ask,
                "bidSize": float(q.bid_size),
                "askSize": float(q.ask_size),
            }
        mid = round((q.bid + q.ask) / 2.0, 10)
        return (mid,), {"tickType": 4, "time": second, "midPoint": mid}


class RealTimeBarStream(Stream):
    """reqRealTimeBars: a 5-second bar each time one completes (frozen clock: one a wall
    second, each pass moving simulated time 1.25 s)."""

    kind = "realTimeBars"

    def __init__(self, gateway, client, req_id, inst, what: str):
        super().__init__(gateway, client, req_id, inst, step=BAR_SECONDS / 4)
        self.what = what
        self.next_start = (int(gateway.clock.timestamp()) // BAR_SECONDS) * BAR_SECONDS

    def update(self, ts: float) -> None:
        while self.next_start + BAR_SECONDS <= ts:
            self._send_bar(self.next_start)
            self.next_start += BAR_SECONDS

    def _send_bar(self, start: int) -> None:
        quotes = [
            self.market.quote_at(self.inst.symbol, datetime.fromtimestamp(start + s, UTC))
            for s in range(BAR_SECONDS)
        ]
        if self.what == "TRADES":
            prices = [q.last for q in quotes]
            volume = float(max(quotes[-1].volume - quotes[0].volume, 0) + quotes[0].last_size)
            wap, count = round(sum(prices) / len(prices), 8), BAR_SECONDS
        else:
            field = {"BID": "bid", "ASK": "ask"}.get(self.what)
            prices = [getattr(q, field) if field else (q.bid + q.ask) / 2.0 for q in quotes]
            volume, wap, count = -1.0, -1.0, -1
        self.client.send(
            "realtimeBar",
            reqId=self.req_id,
            time=start,
            open=prices[0],
            high=max(prices),
            low=min(prices),
            close=prices[-1],
            volume=volume,
            wap=wap,
            count=count,
        )


_DEPTH_LOTS = {"CASH": 100 * FX_LOT, "FUT": 1, "OPT": 1}


class DepthStream(Stream):
    """reqMktDepth: ``rows`` price levels a side around the quote; stocks (and smart depth)
    as L2 rows with market makers, FX and futures as exchange-level rows. Inserts first,
    then updates of the rows that changed."""

    kind = "mktDepth"

    def __init__(self, gateway, client, req_id, inst, rows: int, smart: bool):
        super().__init__(gateway, client, req_id, inst)
        self.rows = rows
        self.smart = smart
        self.book: dict[tuple[int, int], tuple] = {}  # (side, position) -> (price, size, maker)
        # deeper levels show 1 to 25 lots: 100 shares, 1 million of an FX pair's base currency
        # (as the top of book shows), one contract of a future or option
        self.lot = _DEPTH_LOTS.get(inst.sec_type, 100)

    def update(self, ts: float) -> None:
        q = self.market.quote_at(self.inst.symbol, datetime.fromtimestamp(ts, UTC))
        k = round(1.0 / self.inst.min_tick)
        l2 = self.smart or self.inst.sec_type == "STK"
        for side, top in ((1, q.bid), (0, q.ask)):
            shown = q.bid_size if side else q.ask_size
            for pos in range(self.rows):
                ticks = round(top * k) + (-pos if side else pos)
                price = ticks / k
                seeded = self.lot * (1 + (ticks * 7 + pos * 13) % 25)
                size = float(shown if pos == 0 else seeded)
                maker = DEPTH_MAKERS[(ticks + pos) % len(DEPTH_MAKERS)] if l2 else ""
                row = (price, size, maker)
                before = self.book.get((side, pos))
                if before == row:
                    continue
                self.book[(side, pos)] = row
                operation = 0 if before is None else 1
                if l2:
                    self.client.send(
                        "updateMktDepthL2",
                        reqId=self.req_id,
                        position=pos,
                        marketMaker=maker,
                        operation=operation,
                        side=side,
                        price=price,
                        size=size,
                        isSmartDepth=self.smart,
                    )
                else:
                    self.client.send(
                        "updateMktDepth",
                        reqId=self.req_id,
                        position=pos,
                        operation=operation,
                        side=side,
                        price=price,
                        size=size,
                    )


class BarUpdateStream(Stream):
    """reqHistoricalData with keepUpToDate: the bar in progress, resent as it changes, and
    each new bar as it starts (historicalDataUpdate)."""

    kind = "bars"

    def __init__(self, gateway, client, req_id, inst, bar_size, what, format_date):
        step = max(1.0, float(parse_bar_size(bar_size))) / 4 if parse_bar_size(bar_size) > 0 else 60
        super().__init__(gateway, client, req_id, inst, step=min(step, 60.0))
        self.bar_size = bar_size
        self.what = what
        self.format_date = format_date
        self.last: dict = {}

    def update(self, ts: float) -> None:
        seconds = parse_bar_size(self.bar_size)
        duration = f"{max(seconds, 1) * 2} S" if seconds > 0 else "1 D"
        end = datetime.fromtimestamp(ts, UTC)
        bars = self.market.bars(
            self.inst.symbol, end, duration, self.bar_size, self.what, capped=False
        )
        if not bars:
            return
        _, _, rows = bar_rows(bars[-1:], end, self.bar_size, self.format_date)
        row = rows[0]
        if row != self.last:
            self.last = row
            self.client.send("historicalDataUpdate", reqId=self.req_id, **row)


class PnLStream(Stream):
    """reqPnL / reqPnLSingle: the account's (or one position's) P&L, resent when it changes.

    Daily P&L is the move since the previous close of the positions held, plus realized P&L;
    unrealized is against the average cost; a single position also reports its size and value.
    """

    def __init__(self, gateway, client, req_id, con_id: int | None):
        super().__init__(gateway, client, req_id, None)
        self.kind = "pnl" if con_id is None else "pnlSingle"
        self.con_id = con_id
        self.last: dict = {}

    def update(self, ts: float) -> None:
        broker = self.gateway.broker
        rows = broker.portfolio() if self.con_id is None else broker.position_rows([self.con_id])
        daily = unrealized = realized = position = value = 0.0
        for row in rows:
            close = self.market.quote(row.symbol).close
            multiplier = self.market.multiplier(row.symbol)
            daily += row.quantity * (row.market_price - close) * multiplier + row.realized_pnl
            unrealized += row.unrealized_pnl
            realized += row.realized_pnl
            position += row.quantity
            value += row.market_value
        values = {
            "dailyPnL": round(daily, 2),
            "unrealizedPnL": round(unrealized, 2),
            "realizedPnL": round(realized, 2),
        }
        if self.con_id is not None:
            values = {"pos": position, **values, "value": round(value, 2)}
        if values != self.last:
            self.last = values
            self.client.send(self.kind, reqId=self.req_id, **values)


class StreamRequests:
    """The subscription requests of ``PaperGateway`` (a mixin: uses its market, clock,
    ``_instrument`` and ``_today``)."""

    def _subscribe(self, client, stream: Stream) -> None:
        client.subscriptions[(stream.kind, stream.req_id)] = stream
        stream.pump()

    def _unsubscribe(self, client, kind: str, req_id: int) -> None:
        client.subscriptions.pop((kind, req_id), None)

    def _pump_streams(self) -> None:
        for client in list(self.clients):
            for stream in list(client.subscriptions.values()):
                stream.pump()

    # -- reqMktData ------------------------------------------------------------------------

    def _on_reqMktData(self, client, v) -> None:
        req_id = v["reqId"]
        streaming = not (v["snapshot"] or v["regulatorySnapshot"])
        lines = sum(kind == "mktData" for kind, _ in client.subscriptions)
        if streaming and ("mktData", req_id) not in client.subscriptions and lines >= MAX_LINES:
            client.error(req_id, 101, "Max number of tickers has been reached")
            return
        found = self._instrument(client, req_id, v)
        if found is None:
            return
        generic = parse_generic_list(v.get("genericTickList") or "")
        refused = generic_refusal(generic, found.sec_type)
        if refused:
            client.error(req_id, 321, refused)
            return
        client.send(
            "tickReqParams",
            reqId=req_id,
            minTick=found.min_tick,
            bboExchange="9c0001",
            snapshotPermissions=3,
        )
        if client.market_data_type != 1:
            client.send("marketDataType", reqId=req_id, marketDataType=client.market_data_type)
        stream = QuoteStream(self, client, req_id, found, generic)
        if streaming:
            self._subscribe(client, stream)
        else:
            stream.update(self.clock.timestamp())
            client.send("tickSnapshotEnd", reqId=req_id)

    def _on_cancelMktData(self, client, v) -> None:
        self._unsubscribe(client, "mktData", v["reqId"])

    # -- tick by tick, real-time bars, depth ---------------------------------------------

    def _on_reqTickByTickData(self, client, v) -> None:
        req_id = v["reqId"]
        found = self._instrument(client, req_id, v)
        if found is None:
            return
        if v["tickType"] not in ("Last", "AllLast", "BidAsk", "MidPoint"):
            client.error(
                req_id,
                321,
                f"Error validating request.-'bL' : cause - Invalid tick type {v['tickType']!r}: "
                "use Last, AllLast, BidAsk or MidPoint",
            )
            return
        stream = TickByTickStream(
            self, client, req_id, found, v["tickType"], v["numberOfTicks"] or 0, v["ignoreSize"]
        )
        self._subscribe(client, stream)

    def _on_cancelTickByTickData(self, client, v) -> None:
        self._unsubscribe(client, "tickByTick", v["reqId"])

    def _on_reqRealTimeBars(self, client, v) -> None:
        req_id = v["reqId"]
        found = self._instrument(client, req_id, v)
        if found is None:
            return
        what = (v["whatToShow"] or "TRADES").upper()
        if v["barSize"] != BAR_SECONDS or what not in ("TRADES", "MIDPOINT", "BID", "ASK"):
            client.error(
                req_id,
                321,
                "Error validating request.-'bN' : cause - real-time bars are 5 seconds of "
                f"TRADES, MIDPOINT, BID or ASK; got {v['barSize']} seconds of {what}",
            )
            return
        self._subscribe(client, RealTimeBarStream(self, client, req_id, found, what))

    def _on_cancelRealTimeBars(self, client, v) -> None:
        self._unsubscribe(client, "realTimeBars", v["reqId"])

    def _on_reqMktDepth(self, client, v) -> None:
        req_id = v["reqId"]
        found = self._instrument(client, req_id, v)
        if found is None:
            return
        rows = min(max(v["numRows"] or 5, 1), 20)
        self._subscribe(
            client, DepthStream(self, client, req_id, found, rows, bool(v["isSmartDepth"]))
        )

    def _on_cancelMktDepth(self, client, v) -> None:
        self._unsubscribe(client, "mktDepth", v["reqId"])

    def _on_reqMktDepthExchanges(self, client, v) -> None:
        keys = ("exchange", "secType", "listingExch", "serviceDataType", "aggGroup")
        client.send(
            "mktDepthExchanges",
            descriptions=[dict(zip(keys, row, strict=True)) for row in DEPTH_EXCHANGES],
        )

    # -- keepUpToDate bars and historical ticks ------------------------------------------

    def _keep_up_to_date(self, client, req_id: int, inst: Instrument, v: dict) -> None:
        stream = BarUpdateStream(
            self, client, req_id, inst, v["barSizeSetting"], v["whatToShow"] or "TRADES",
            v["formatDate"],
        )  # fmt: skip
        client.subscriptions[(stream.kind, req_id)] = stream

    def _on_cancelHistoricalData(self, client, v) -> None:
        self._unsubscribe(client, "bars", v["reqId"])

    def _on_reqHistoricalTicks(self, client, v) -> None:
        """Up to ``numberOfTicks`` (max 1000) ticks, one a second of simulated trading, after
        ``startDateTime`` or up to ``endDateTime`` (exactly one of the two)."""
        req_id = v["reqId"]
        found = self._instrument(client, req_id, v)
        if found is None:
            return
        what = (v["whatToShow"] or "").upper()
        start, end = v["startDateTime"].strip(), v["endDateTime"].strip()
        if what not in ("TRADES", "BID_ASK", "MIDPOINT") or bool(start) == bool(end):
            client.error(
                req_id,
                162,
                "Historical Market Data Service error message:historical ticks need whatToShow "
                "TRADES, BID_ASK or MIDPOINT and exactly one of startDateTime and endDateTime",
            )
            return
        count = min(max(v["numberOfTicks"] or 1, 1), MAX_HISTORICAL_TICKS)
        now = self.clock.now()
        try:
            moment = parse_end_datetime(start or end, now)
        except ValueError as exc:
            client.error(req_id, 162, f"Historical Market Data Service error message:{exc}")
            return
        moment = min(moment, now)
        first = int(moment.timestamp()) if start else int(moment.timestamp()) - count + 1
        seconds = [s for s in range(first, first + count) if s <= now.timestamp()]
        quotes = [
            self.market.quote_at(found.symbol, datetime.fromtimestamp(s, UTC)) for s in seconds
        ]
        if what == "TRADES":
            ticks = [
                {
                    "time": int(q.time.timestamp()),
                    "price": q.last,
                    "size": float(q.last_size),
                    "exchange": found.primary_exchange,
                    "specialConditions": "",
                }
                for q in quotes
            ]
            client.send("historicalTicksLast", reqId=req_id, ticks=ticks, done=True)
        elif what == "BID_ASK":
            ticks = [
                {
                    "time": int(q.time.timestamp()),
                    "priceBid": q.bid,
                    "priceAsk": q.ask,
                    "sizeBid": float(q.bid_size),
                    "sizeAsk": float(q.ask_size),
                }
                for q in quotes
            ]
            client.send("historicalTicksBidAsk", reqId=req_id, ticks=ticks, done=True)
        else:
            ticks = [
                {"time": int(q.time.timestamp()), "price": (q.bid + q.ask) / 2.0, "size": 0.0}
                for q in quotes
            ]
            client.send("historicalTicks", reqId=req_id, ticks=ticks, done=True)

    # -- P&L -----------------------------------------------------------------------------

    def _pnl_account_ok(self, client, v) -> bool:
        if v["account"] in ("", self.account_id):
            return True
        client.error(v["reqId"], 321, f"Account {v['account']} is not managed by this login")
        return False

    def _on_reqPnL(self, client, v) -> None:
        if self._pnl_account_ok(client, v):
            self._subscribe(client, PnLStream(self, client, v["reqId"], None))

    def _on_cancelPnL(self, client, v) -> None:
        self._unsubscribe(client, "pnl", v["reqId"])

    def _on_reqPnLSingle(self, client, v) -> None:
        if self._pnl_account_ok(client, v):
            self._subscribe(client, PnLStream(self, client, v["reqId"], v["conId"]))

    def _on_cancelPnLSingle(self, client, v) -> None:
        self._unsubscribe(client, "pnlSingle", v["reqId"])

    def _on_reqHistogramData(self, client, v) -> None:
        """Trade counts per price over the period ("1 day", "2 weeks", ...), from 1-minute bars."""
        req_id = v["reqId"]
        found = self._instrument(client, req_id, v)
        if found is None:
            return
        period = (v["timePeriod"] or "").split()
        if (
            len(period) != 2
            or not period[0].isdigit()
            or period[1].rstrip("s") not in ("day", "week")
        ):
            client.error(
                req_id,
                162,
                "Historical Market Data Service error message:time period "
                f"{v['timePeriod']!r} is not '<n> days' or '<n> weeks'",
            )
            return
        duration = f"{int(period[0]) * (7 if period[1].startswith('week') else 1)} D"
        bars = self.market.bars(found.symbol, self.clock.now(), duration, "1 min", "TRADES")
        counts: dict[float, int] = {}
        for bar in bars:
            counts[bar.close] = counts.get(bar.close, 0) + max(bar.count, 1)
        items = [{"price": p, "count": c} for p, c in sorted(counts.items())]
        client.send("histogramData", reqId=req_id, items=items)

    def _on_cancelHistogramData(self, client, v) -> None:
        """Histograms are sent at once; nothing to cancel."""
