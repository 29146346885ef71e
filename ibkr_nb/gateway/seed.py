"""The seeded portfolio a new paper account starts with: lots bought over the past two years."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from ibkr_nb.commissions import stock_commission

from .market import ET, UNIVERSE, Market, day_index, is_session, session_before, session_bounds
from .records import TradeRecord


def seed_history(market: Market, seed: int, account_id: str) -> list[TradeRecord]:
    """~6 positions in 2-3 lots each: long-term (400-700 days) and short-term (40-330 days)
    lots, one position bought near its 2-year highs (a loss now), one partial sale."""
    rng = np.random.Generator(np.random.PCG64([seed & ((1 << 64) - 1), 0xB0B]))
    start = market.clock.now()
    symbols = sorted(UNIVERSE)
    order = [symbols[i] for i in rng.permutation(len(symbols))]
    raw: list[tuple[datetime, str, float]] = []  # (time, symbol, signed qty)

    def trade_time(days_back: float) -> datetime:
        day = (start - timedelta(days=days_back)).astimezone(ET).date()
        idx = day_index(day) if is_session(day) else session_before(day_index(day))
        return in_session(idx, int(rng.integers(0, 330)))

    def shares(when: datetime, symbol: str) -> float:
        price = market.price_at(symbol, when)
        value = float(rng.uniform(12_000, 45_000))
        return float(max(5, int(value / price / 5) * 5))

    # the loss position: bought at the highest closes of both windows
    current = {s: market.price_at(s, start) for s in order}
    loss_symbol = None
    for sym in order:
        lt = _best_close(market, sym, start, 400, 700)
        st = _best_close(market, sym, start, 40, 330)
        if lt[1] > current[sym] * 1.05 and st[1] > current[sym] * 1.05:
            loss_symbol = sym
            for d, _ in (lt, st):
                when = in_session(day_index(d), 330)  # bought near the close
                raw.append((when, sym, shares(when, sym)))
            break
    others = [s for s in order if s != loss_symbol][: 6 - (loss_symbol is not None)]
    for n, sym in enumerate(others):
        lt = trade_time(float(rng.uniform(400, 700)))
        st = trade_time(float(rng.uniform(40, 330)))
        lt_qty = shares(lt, sym)
        raw.append((lt, sym, lt_qty))
        raw.append((st, sym, shares(st, sym)))
        if rng.random() < 0.5:
            extra = trade_time(float(rng.uniform(10, 720)))
            raw.append((extra, sym, shares(extra, sym)))
        if n == 0:  # one partial sale, 20-60 days ago, of half the long-term lot's size
            sell = trade_time(float(rng.uniform(20, 60)))
            raw.append((sell, sym, -float(max(5, int(lt_qty / 2 / 5) * 5))))
    raw.sort(key=lambda r: (r[0], r[1]))
    out = []
    for n, (when, sym, qty) in enumerate(raw, start=1):
        price = market.price_at(sym, when)
        inst = UNIVERSE[sym]
        out.append(
            TradeRecord(
                trade_id=f"{account_id}-S{n:04d}",
                time=when.astimezone(UTC),
                symbol=sym,
                con_id=inst.con_id,
                quantity=qty,
                price=price,
                commission=stock_commission(qty, price),
                source="seed",
            )
        )
    return out


def _best_close(market: Market, symbol: str, start: datetime, lo_days: int, hi_days: int):
    first = (start - timedelta(days=hi_days)).date()
    last = (start - timedelta(days=lo_days)).date()
    return max(market.daily_closes(symbol, first, last), key=lambda r: r[1])


def in_session(idx: int, minutes: int) -> datetime:
    """``minutes`` after 10:00 ET on session ``idx``, kept at least 30 minutes before its close
    (early-close days end at 13:00)."""
    open_ts, close_ts = session_bounds(idx)
    latest = int((close_ts - open_ts) // 60) - 60  # minutes from 10:00 to 30 before the close
    return datetime.fromtimestamp(open_ts + 1800 + 60 * min(minutes, latest), UTC)
