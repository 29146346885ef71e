"""What the paper gateway lists: stocks, FX pairs, indices, futures and options.

Every instrument is an :class:`Instrument` keyed by ``symbol``, the gateway's own unique key:
the ticker for stocks and indices, ``EUR.USD`` for an FX pair, the local symbol for a future
(``ESZ6``) or an option (``SPX   261218C05800000``). ``api_symbol`` is what TWS calls the
symbol (``EUR`` for EUR.USD, ``ES`` for ESZ6).

* :data:`UNIVERSE`: US stocks and ETFs (SMART, USD), with real conIds.
* :data:`LISTED`: the universe plus FX pairs on IDEALPRO and the SPX, NDX and VIX indices.
* Futures (ES on SPX, NQ on NDX, CME): the next five quarterly months (third Friday).
* Options on every stock and on SPX: weekly Fridays for eight weeks and third Fridays for a
  year (SPX: monthly class SPX, weekly class SPXW); strikes on a grid around the underlying's
  base price (fine step within 15 %, five times coarser out to 35 %). Multiplier 100.

Futures and options conIds encode the contract (underlying, month or Friday, strike, right),
so :func:`instrument_by_con_id` decodes any of them without a registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache


@dataclass(frozen=True)
class Instrument:
    """A listed contract (fields as in TWS contract details). Prices in ``currency``."""

    symbol: str
    con_id: int
    primary_exchange: str
    long_name: str
    min_tick: float
    industry: str
    category: str
    subcategory: str
    base_price: float
    annual_vol: float
    avg_volume: int
    listed: date = date(1990, 1, 2)  # first trading day (the simulation starts 1990-01-02)
    sec_type: str = "STK"
    exchange: str = "SMART"
    currency: str = "USD"
    api_symbol: str = ""
    multiplier: float = 1.0
    expiry: str = ""  # YYYYMMDD last trading day (FUT, OPT)
    strike: float = 0.0
    right: str = ""  # C or P
    underlying: str = ""  # key of the underlying (FUT, OPT)
    trading_class: str = ""

    @property
    def tws_symbol(self) -> str:
        """The symbol as TWS reports it."""
        return self.api_symbol or self.symbol


def _i(symbol, con_id, exch, name, industry, category, sub, price, vol, avg_vol) -> Instrument:
    return Instrument(
        symbol, con_id, exch, name, 0.01, industry, category, sub, price, vol, avg_vol
    )


_TECH, _COMM, _FIN = "Technology", "Communications", "Financial"
_CNC, _CC = "Consumer, Non-cyclical", "Consumer, Cyclical"

# fmt: off
UNIVERSE: dict[str, Instrument] = {  # US stocks and ETFs on SMART
    i.symbol: i
    for i in (
        _i("AAPL", 265598, "NASDAQ", "APPLE INC", _TECH, "Computers", "Computers", 190.0, 0.25, 55_000_000),
        _i("MSFT", 272093, "NASDAQ", "MICROSOFT CORP", _TECH, "Software", "Software", 410.0, 0.24, 20_000_000),
        _i("IBM", 8314, "NYSE", "INTL BUSINESS MACHINES CORP", _TECH, "Computers", "Computer Services", 180.0, 0.22, 4_000_000),
        _i("SPY", 756733, "ARCA", "SPDR S&P 500 ETF TRUST", "Funds", "Equity Fund", "Growth&Income-Large Cap", 520.0, 0.15, 70_000_000),
        _i("QQQ", 320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1", "Funds", "Equity Fund", "Growth-Large Cap", 450.0, 0.20, 40_000_000),
        _i("AMZN", 3691937, "NASDAQ", "AMAZON.COM INC", _COMM, "Internet", "E-Commerce/Products", 180.0, 0.30, 40_000_000),
        _i("NVDA", 4815747, "NASDAQ", "NVIDIA CORP", _TECH, "Semiconductors", "Electronic Compo-Semicon", 120.0, 0.50, 250_000_000),
        _i("TSLA", 76792991, "NASDAQ", "TESLA INC", _CC, "Auto Manufacturers", "Auto-Cars/Light Trucks", 220.0, 0.55, 90_000_000),
        _i("GOOGL", 208813719, "NASDAQ", "ALPHABET INC-CL A", _COMM, "Internet", "Web Portals/ISP", 165.0, 0.28, 25_000_000),
        _i("META", 107113386, "NASDAQ", "META PLATFORMS INC-CLASS A", _COMM, "Internet", "Internet Content-Entmnt", 500.0, 0.35, 15_000_000),
        _i("JPM", 1520593, "NYSE", "JPMORGAN CHASE & CO", _FIN, "Banks", "Money Center Banks", 200.0, 0.22, 9_000_000),
        _i("JNJ", 8719, "NYSE", "JOHNSON & JOHNSON", _CNC, "Pharmaceuticals", "Medical-Drugs", 155.0, 0.15, 7_000_000),
        _i("XOM", 13977, "NYSE", "EXXON MOBIL CORP", "Energy", "Oil&Gas", "Oil Comp-Integrated", 115.0, 0.24, 16_000_000),
        _i("KO", 8894, "NYSE", "COCA-COLA CO/THE", _CNC, "Beverages", "Beverages-Non-alcoholic", 62.0, 0.14, 13_000_000),
        _i("PEP", 11017, "NASDAQ", "PEPSICO INC", _CNC, "Beverages", "Beverages-Non-alcoholic", 170.0, 0.15, 5_000_000),
        _i("WMT", 13824, "NASDAQ", "WALMART INC", _CC, "Retail", "Retail-Discount", 65.0, 0.17, 15_000_000),
        _i("PG", 15016, "NYSE", "PROCTER & GAMBLE CO/THE", _CNC, "Cosmetics/Personal Care", "Cosmetics&Toiletries", 165.0, 0.15, 6_000_000),
        _i("DIS", 6459, "NYSE", "WALT DISNEY CO/THE", _COMM, "Media", "Multimedia", 100.0, 0.26, 9_000_000),
        _i("INTC", 270639, "NASDAQ", "INTEL CORP", _TECH, "Semiconductors", "Electronic Compo-Semicon", 30.0, 0.38, 45_000_000),
        _i("CSCO", 268084, "NASDAQ", "CISCO SYSTEMS INC", _COMM, "Telecommunications", "Networking Products", 50.0, 0.20, 18_000_000),
        _i("BAC", 10098, "NYSE", "BANK OF AMERICA CORP", _FIN, "Banks", "Super-Regional Banks-US", 38.0, 0.25, 35_000_000),
        _i("NFLX", 15124833, "NASDAQ", "NETFLIX INC", _COMM, "Internet", "Internet Content-Entmnt", 650.0, 0.35, 3_500_000),
        _i("AMD", 4391, "NASDAQ", "ADVANCED MICRO DEVICES", _TECH, "Semiconductors", "Electronic Compo-Semicon", 150.0, 0.48, 50_000_000),
        _i("ORCL", 272800, "NYSE", "ORACLE CORP", _TECH, "Software", "Enterprise Software/Serv", 130.0, 0.28, 8_000_000),
    )
}
# fmt: on
# first trading days of the symbols listed after the simulation starts (their IPOs)
for _symbol, _listed in {
    "SPY": date(1993, 1, 29), "AMZN": date(1997, 5, 15), "NVDA": date(1999, 1, 22),
    "QQQ": date(1999, 3, 10), "NFLX": date(2002, 5, 23), "GOOGL": date(2004, 8, 19),
    "TSLA": date(2010, 6, 29), "META": date(2012, 5, 18), "CSCO": date(1990, 2, 16),
}.items():  # fmt: skip
    UNIVERSE[_symbol] = replace(UNIVERSE[_symbol], listed=_listed)


def _fx(base: str, quote: str, con_id: int, price: float, vol: float) -> Instrument:
    tick = 0.005 if quote == "JPY" else 0.00005
    name = f"{base}.{quote}"
    return Instrument(
        name, con_id, "IDEALPRO", f"{base} {quote}", tick, "", "", "", price, vol, 0,
        sec_type="CASH", exchange="IDEALPRO", currency=quote, api_symbol=base, trading_class=name,
    )  # fmt: skip


def _index(symbol, con_id, exch, name, price, vol) -> Instrument:
    return Instrument(
        symbol, con_id, exch, name, 0.01, "Indices", "Broad Range Equity Index", "", price, vol,
        0, sec_type="IND", exchange=exch, trading_class=symbol,
    )  # fmt: skip


FX_PAIRS: dict[str, Instrument] = {
    i.symbol: i
    for i in (
        _fx("EUR", "USD", 12087792, 1.08, 0.07),
        _fx("USD", "JPY", 15016059, 150.0, 0.09),
        _fx("GBP", "USD", 12087797, 1.27, 0.08),
        _fx("USD", "CHF", 12087820, 0.88, 0.07),
        _fx("USD", "CAD", 15016062, 1.37, 0.06),
        _fx("AUD", "USD", 14433401, 0.66, 0.10),
    )
}
INDICES: dict[str, Instrument] = {
    i.symbol: i
    for i in (
        _index("SPX", 416904, "CBOE", "S&P 500 Stock Index", 5800.0, 0.15),
        _index("NDX", 416843, "NASDAQ", "NASDAQ 100 Stock Index", 20500.0, 0.19),
        _index("VIX", 13455763, "CBOE", "CBOE Volatility Index", 16.0, 0.80),
    )
}
LISTED: dict[str, Instrument] = {**UNIVERSE, **FX_PAIRS, **INDICES}
_BY_CON_ID: dict[int, Instrument] = {i.con_id: i for i in LISTED.values()}

# Derivatives: (root, underlying key, exchange, multiplier, min tick, long name).
FUTURE_ROOTS = {
    "ES": ("SPX", "CME", 50.0, 0.25, "E-mini S&P 500"),
    "NQ": ("NDX", "CME", 20.0, 0.25, "E-mini NASDAQ 100"),
}
OPTIONABLE: tuple[str, ...] = (*UNIVERSE, "SPX")  # append only: the order is in the conIds
DIVIDEND_YIELD = {"SPX": 0.013, "NDX": 0.007, "SPY": 0.013, "QQQ": 0.006}
_MONTH_CODES = "FGHJKMNQUVXZ"
_FUT_BASE = 1_400_000_000
_OPT_BASE = 1_500_000_000
_FRIDAY0 = date(2020, 1, 3)  # week 0 of the option conId encoding
_FUTURE_MONTHS = 5
_WEEKLIES = 8
_MONTHLIES = 12


# Market rules (reqMarketRule): id -> ((low edge, increment), ...); one per minimum tick here.
MARKET_RULES: dict[int, tuple[tuple[float, float], ...]] = {
    26: ((0.0, 0.01),),
    239: ((0.0, 0.00005),),
    240: ((0.0, 0.005),),
    67: ((0.0, 0.25),),
    110: ((0.0, 0.05),),
}
_RULE_BY_TICK = {rule[0][1]: rule_id for rule_id, rule in MARKET_RULES.items()}


def market_rule_id(min_tick: float) -> int:
    """The market rule whose only increment is ``min_tick``."""
    return _RULE_BY_TICK[min_tick]


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def future_months(today: date) -> list[date]:
    """Expiry dates (third Fridays of Mar/Jun/Sep/Dec) of the listed futures, nearest first."""
    out = []
    year, month = today.year, today.month
    while len(out) < _FUTURE_MONTHS:
        if month % 3 == 0 and third_friday(year, month) >= today:
            out.append(third_friday(year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _future(root: str, expiry: date) -> Instrument:
    under_key, exch, mult, tick, name = FUTURE_ROOTS[root]
    under = INDICES[under_key]
    u = list(FUTURE_ROOTS).index(root)
    con_id = _FUT_BASE + u * 4096 + (expiry.year - 2000) * 12 + expiry.month - 1
    local = f"{root}{_MONTH_CODES[expiry.month - 1]}{expiry.year % 10}"
    return _register(
        Instrument(
            local, con_id, exch, f"{name} {expiry:%b%y}".upper(), tick, "Indices",
            "Broad Range Equity Index", "", under.base_price, under.annual_vol, 1_500_000,
            sec_type="FUT", exchange=exch, api_symbol=root, multiplier=mult,
            expiry=expiry.strftime("%Y%m%d"), underlying=under_key, trading_class=root,
        )
    )  # fmt: skip


def listed_futures(root: str, today: date) -> list[Instrument]:
    return [_future(root, d) for d in future_months(today)]


def strike_steps(base_price: float) -> tuple[float, float]:
    """(fine, coarse) strike spacing for an underlying trading near ``base_price``."""
    if base_price < 25:
        fine = 0.5
    elif base_price < 100:
        fine = 1.0
    elif base_price < 250:
        fine = 2.5
    else:
        fine = 5.0
    return fine, fine * 5


def listed_strikes(underlying: str) -> list[float]:
    """The strike grid of ``underlying``'s options, ascending."""
    base = LISTED[underlying].base_price
    fine, coarse = strike_steps(base)
    lo, hi = base * 0.65, base * 1.35
    strikes = set()
    k = coarse * int(lo / coarse)
    while k <= hi:
        strikes.add(round(k, 2))
        k += coarse
    k = fine * int(base * 0.85 / fine)
    while k <= base * 1.15:
        strikes.add(round(k, 2))
        k += fine
    return sorted(s for s in strikes if s > 0)


def listed_expiries(today: date) -> list[date]:
    """Option expiries: the next eight Fridays and the third Fridays of the next 12 months."""
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    days = {friday + timedelta(weeks=w) for w in range(_WEEKLIES)}
    year, month = today.year, today.month
    for _ in range(_MONTHLIES + 1):
        if third_friday(year, month) >= today:
            days.add(third_friday(year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return sorted(days)[: _WEEKLIES + _MONTHLIES]


def option_class(underlying: str, expiry: date) -> str:
    """Trading class: SPXW for SPX's non-monthly Fridays, else the underlying's symbol."""
    if underlying == "SPX" and expiry != third_friday(expiry.year, expiry.month):
        return "SPXW"
    return underlying


def option(underlying: str, expiry: date, strike: float, right: str) -> Instrument:
    """The listed option (no check that the strike is on the grid; see :func:`option_chain`)."""
    under = LISTED[underlying]
    fine, _ = strike_steps(under.base_price)
    u = OPTIONABLE.index(underlying)
    week = (expiry - _FRIDAY0).days // 7
    slot = (week * 2048 + round(strike / fine)) * 2 + (right == "P")
    tclass = option_class(underlying, expiry)
    local = f"{tclass:<6}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"
    return _register(
        Instrument(
            local, _OPT_BASE + u * (1 << 22) + slot, under.primary_exchange,
            f"{underlying} {expiry:%b%d'%y} {strike:g} {'Call' if right == 'C' else 'Put'}",
            0.05 if underlying == "SPX" else 0.01, under.industry, under.category,
            under.subcategory, under.base_price, under.annual_vol, under.avg_volume // 1000,
            sec_type="OPT", api_symbol=underlying, multiplier=100.0,
            expiry=expiry.strftime("%Y%m%d"), strike=float(strike), right=right,
            underlying=underlying, trading_class=tclass,
        )
    )  # fmt: skip


def option_chain(underlying: str, today: date) -> list[Instrument]:
    """Every listed option of ``underlying``: expiries x strikes x (call, put)."""
    strikes = listed_strikes(underlying)
    return [
        option(underlying, d, k, r)
        for d in listed_expiries(today)
        for k in strikes
        for r in ("C", "P")
    ]


_DERIVED: dict[str, Instrument] = {}


def _register(inst: Instrument) -> Instrument:
    return _DERIVED.setdefault(inst.symbol, inst)


@lru_cache(maxsize=65536)
def _decode(con_id: int) -> Instrument | None:
    if _FUT_BASE <= con_id < _FUT_BASE + 4096 * len(FUTURE_ROOTS):
        u, months = divmod(con_id - _FUT_BASE, 4096)
        year, month = divmod(months, 12)
        return _future(list(FUTURE_ROOTS)[u], third_friday(2000 + year, month + 1))
    if _OPT_BASE <= con_id < _OPT_BASE + (len(OPTIONABLE) << 22):
        u, slot = divmod(con_id - _OPT_BASE, 1 << 22)
        rest, put = divmod(slot, 2)
        week, k = divmod(rest, 2048)
        underlying = OPTIONABLE[u]
        fine, _ = strike_steps(LISTED[underlying].base_price)
        expiry = _FRIDAY0 + timedelta(weeks=week)
        return option(underlying, expiry, round(k * fine, 2), "P" if put else "C")
    return None


def instrument(symbol: str) -> Instrument | None:
    """The instrument with this key (case-insensitive), or None if nothing is listed as it."""
    if not symbol:
        return None
    key = symbol.strip().upper()
    return LISTED.get(key) or _DERIVED.get(symbol) or _DERIVED.get(key)


def instrument_by_con_id(con_id: int) -> Instrument | None:
    """The instrument with this IBKR conId, or None."""
    return _BY_CON_ID.get(con_id) or _decode(con_id)


def resolve(v: dict, today: date) -> list[Instrument]:
    """The listed instruments a request's contract fields describe (empty fields match all).

    ``v`` holds ib_async's Contract field names. Stocks need USD; FX pairs are ``symbol`` +
    ``currency`` (or ``localSymbol`` EUR.USD); futures and options match an expiry given as
    YYYYMM or YYYYMMDD, a strike, a right and a trading class when those are given.
    """
    if v.get("conId"):
        found = instrument_by_con_id(v["conId"])
        symbol = (v.get("symbol") or "").upper()
        if found is None or (symbol and symbol != found.tws_symbol):
            return []
        return [found]
    sec_type = (v.get("secType") or "STK").upper()
    symbol = (v.get("symbol") or "").strip().upper()
    local = (v.get("localSymbol") or "").strip()
    currency = (v.get("currency") or "").upper()
    if sec_type == "STK":
        found = UNIVERSE.get(symbol or local.upper())
        return [found] if found and currency in ("", "USD") else []
    if sec_type == "CASH":
        found = FX_PAIRS.get(local.upper() or f"{symbol}.{currency or 'USD'}")
        return [found] if found else []
    if sec_type == "IND":
        found = INDICES.get(symbol or local.upper())
        return [found] if found and currency in ("", "USD") else []
    if sec_type == "FUT":
        return _match_derivatives(
            v, listed_futures(symbol, today) if symbol in FUTURE_ROOTS else []
        )
    if sec_type == "CONTFUT":  # the continuous future is the front month
        return listed_futures(symbol, today)[:1] if symbol in FUTURE_ROOTS else []
    if sec_type == "OPT" and symbol in OPTIONABLE:
        return _match_derivatives(v, _options_for(v, symbol, today))
    return []


def _options_for(v: dict, underlying: str, today: date) -> list[Instrument]:
    """The listed options of ``underlying`` with the request's expiry, strike and right."""
    when = v.get("lastTradeDateOrContractMonth") or ""
    expiries = [d for d in listed_expiries(today) if d.strftime("%Y%m%d").startswith(when)]
    strikes = listed_strikes(underlying)
    wanted = v.get("strike") or 0.0
    if wanted:
        strikes = [k for k in strikes if abs(k - wanted) < 1e-6]
    rights = {"C": ("C",), "CALL": ("C",), "P": ("P",), "PUT": ("P",)}.get(
        (v.get("right") or "").upper(), ("C", "P")
    )
    return [option(underlying, d, k, r) for d in expiries for k in strikes for r in rights]


def _match_derivatives(v: dict, candidates: list[Instrument]) -> list[Instrument]:
    when = v.get("lastTradeDateOrContractMonth") or ""
    local = (v.get("localSymbol") or "").strip()
    tclass = (v.get("tradingClass") or "").upper()
    exchange = (v.get("exchange") or "").upper()
    multiplier = v.get("multiplier") or ""
    out = []
    for inst in candidates:
        if when and not inst.expiry.startswith(when):
            continue
        if local and " ".join(local.split()) != " ".join(inst.symbol.split()):
            continue
        if tclass and tclass != inst.trading_class:
            continue
        if exchange not in ("", "SMART", inst.exchange, inst.primary_exchange, "GLOBEX", "CBOE"):
            continue
        if multiplier and float(multiplier) != inst.multiplier:
            continue
        out.append(inst)
    return out


def matching_symbols(pattern: str, limit: int = 16) -> list[Instrument]:
    """Instruments whose symbol or long name matches ``pattern``, best first, at most 16.

    Rank: exact symbol, symbol prefix, a word of the name starts with it, symbol contains it,
    name contains it; ties by symbol.
    """
    p = pattern.strip().upper()
    if not p:
        return []
    ranked = []
    for inst in UNIVERSE.values():
        name = inst.long_name.upper()
        if inst.symbol == p:
            rank = 0
        elif inst.symbol.startswith(p):
            rank = 1
        elif any(w.startswith(p) for w in re.split(r"[\s\-/.&]+", name)):
            rank = 2
        elif p in inst.symbol:
            rank = 3
        elif p in name:
            rank = 4
        else:
            continue
        ranked.append((rank, inst.symbol, inst))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in ranked[:limit]]
