"""The paper account's cash per currency, positions and trade history, and its account values.

P&L follows IBKR's average cost: average cost includes commissions (buy: (cost + commission) /
shares; short: (proceeds - commission) / shares). Closing ``n`` shares realizes ``(price - avg)
* n`` (long) or ``(avg - price) * n`` (short) minus the closing share of the commission; a flip
closes then opens. Unrealized = ``(market price - avg) * quantity``. RealizedPnL counts this
account's fills since it was created (not the seeded history). Average cost, P&L and market
value of a position are in its contract's currency, per unit of quantity x multiplier (an
option's average cost is per contract, x 100; a future's x 50 for ES).

Cash moves as IBKR books it:

* stocks and options: the trade value (price x quantity x multiplier) and the commission, USD;
* FX on IDEALPRO (``CASH`` pairs such as EUR.USD): both legs, +quantity of the base currency
  and -quantity x price of the quote currency; the commission in USD;
* futures: the commission, and the variation (price - entry price) x multiplier x contracts,
  settled daily (:meth:`Account.settle`): at each settlement (:func:`.hours.last_settlement`)
  the variation since the last one moves into USD cash, and when a position closes its
  variation since the last settlement does. ``FuturesPNL`` is the variation since the last
  settlement; a future's average cost and unrealized P&L stay those of its trades, as in TWS.

Account values are in USD (BASE), converting other currencies at the gateway's own FX mids
(:meth:`Account.rates`), and per currency (:meth:`Account.by_currency`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ibkr_nb.commissions import commission

from .hours import last_settlement
from .instruments import FX_PAIRS, Instrument
from .margin import Holding, Margin, margin
from .market import Market, instrument_by_con_id
from .records import PositionRow, TradeRecord

INITIAL_CASH = 1_000_000.0
BASE = "USD"
EPS = 1e-9
BROAD_INDICES = frozenset({"SPX", "NDX"})


def book_trade(
    position: float, avg_cost: float, quantity: float, price: float, fee: float
) -> tuple[float, float, float | None]:
    """Apply one trade to a position, IBKR average-cost style.

    ``position``/``quantity`` signed, ``fee`` >= 0. Returns ``(new_position, new_avg_cost,
    realized)`` where ``realized`` is None when the trade only opens or adds.
    """
    if abs(quantity) < EPS:
        return position, avg_cost, None
    side = 1.0 if quantity > 0 else -1.0
    if abs(position) < EPS or (position > 0) == (quantity > 0):
        new = position + quantity
        avg = (avg_cost * abs(position) + price * abs(quantity) + side * fee) / abs(new)
        return new, avg, None
    closed = min(abs(quantity), abs(position))
    fee_close = fee * closed / abs(quantity)
    realized = (price - avg_cost) * closed * (1.0 if position > 0 else -1.0) - fee_close
    new = position + quantity
    if abs(new) < EPS:
        return 0.0, 0.0, realized
    if (new > 0) == (position > 0):
        return new, avg_cost, realized
    opened = abs(quantity) - closed
    avg = (price * opened + side * (fee - fee_close)) / opened
    return new, avg, realized


def usd_per_quote(inst: Instrument, price: float) -> float:
    """USD per unit of ``inst``'s currency, from the trade's own price for a USD pair (every
    listed FX pair has USD on one side); 1 for USD instruments."""
    if inst.currency == BASE:
        return 1.0
    if inst.sec_type == "CASH" and inst.tws_symbol == BASE:
        return 1.0 / price
    raise ValueError(f"{inst.symbol} is quoted in {inst.currency}: no USD rate from its price")


def order_fee(inst: Instrument, quantity: float, price: float) -> float:
    """The Fixed-schedule commission in USD of ``quantity`` (signed) of ``inst`` at ``price``:
    FX on its trade value in USD, everything else on contracts and price."""
    if inst.sec_type == "CASH":
        return commission("CASH", abs(quantity) * price * usd_per_quote(inst, price), 1.0)
    return commission(inst.sec_type, quantity, price)


@dataclass
class Position:
    quantity: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0  # from this account's fills (not seeded history), contract currency
    entry: float = 0.0  # futures: value per contract at the last settlement or the entry
    settled: float = 0.0  # futures: POSIX time of the settlement ``entry`` reflects


class Account:
    """Cash by currency, positions by conId and every trade booked, valued on ``market``."""

    def __init__(self, account_id: str, market: Market, cash: float = INITIAL_CASH) -> None:
        self.account_id = account_id
        self.market = market
        self.balances: dict[str, float] = {BASE: cash}
        self.positions: dict[int, Position] = {}
        self.trades: list[TradeRecord] = []
        self.expiries: dict[int, str] = {}  # conId -> YYYYMMDD of held options and futures
        self.futures: set[int] = set()  # conIds of futures positions, open or closed
        self._rates: tuple[int | None, dict[str, float]] = (None, {})

    @property
    def cash(self) -> float:
        """The USD balance (other currencies: :attr:`balances`)."""
        return self.balances.get(BASE, 0.0)

    def book(self, trade: TradeRecord, session: bool) -> float | None:
        """Apply ``trade`` to cash and position; ``session`` trades count in RealizedPnL.
        Returns the realized P&L in USD (None when the trade only opens or adds)."""
        inst = instrument_by_con_id(trade.con_id)
        is_future = inst is not None and inst.sec_type == "FUT"
        if is_future:
            when = trade.time.timestamp()
            self.settle(when)
            self.futures.add(trade.con_id)
        realized = _apply(trade, self.balances, self.positions, session)
        if is_future:
            pos = self.positions[trade.con_id]
            pos.settled = max(pos.settled, last_settlement(when))
        if inst is not None and inst.expiry:
            if abs(self.positions[trade.con_id].quantity) > EPS:
                self.expiries[trade.con_id] = inst.expiry
            else:
                self.expiries.pop(trade.con_id, None)
        self.trades.append(trade)
        return realized

    def quantities(self) -> dict[int, float]:
        """Signed non-zero quantities by conId."""
        return {c: p.quantity for c, p in self.positions.items() if abs(p.quantity) > EPS}

    def settle(self, ts: float) -> None:
        """Daily futures settlement up to ``ts``: each open future's variation since its last
        settlement, at its price at the latest settlement time, moves into USD cash. Only the
        latest settlement is booked: the variations of the ones between add up to it."""
        if not self.futures:
            return
        at = last_settlement(ts)
        for con_id in sorted(self.futures):
            pos = self.positions[con_id]
            if abs(pos.quantity) < EPS or pos.settled >= at:
                continue
            inst = instrument_by_con_id(con_id)
            price = self.market.quote_at(inst.symbol, datetime.fromtimestamp(at, UTC)).last
            unit = price * inst.multiplier
            self.balances[BASE] += pos.quantity * (unit - pos.entry)
            pos.entry, pos.settled = unit, at

    # ---- FX rates and margin ---------------------------------------------------------------

    def rates(self) -> dict[str, float]:
        """USD per unit of every simulated currency (USD 1.0), from the FX mids at
        ``clock.now()``, recomputed once a simulated second."""
        second = int(self.market.clock.timestamp())
        if self._rates[0] != second:
            rates = {BASE: 1.0}
            for pair in FX_PAIRS.values():
                q = self.market.quote(pair.symbol)
                mid = (q.bid + q.ask) / 2.0
                if pair.currency == BASE:
                    rates[pair.tws_symbol] = mid
                else:
                    rates[pair.currency] = 1.0 / mid
            self._rates = (second, rates)
        return self._rates[1]

    def cash_value(self, balances: dict[str, float] | None = None) -> float:
        """Every currency's balance converted to USD."""
        rates = self.rates()
        return sum(v * rates[c] for c, v in (balances or self.balances).items())

    def _holding(self, con_id: int, p: Position, prices: dict[int, float]) -> Holding:
        inst = instrument_by_con_id(con_id)
        price = prices.get(con_id)
        if price is None:
            price = prices[con_id] = self.market.last_price(inst.symbol)
        under = self.market.last_price(inst.underlying) if inst.sec_type == "OPT" else 0.0
        return Holding(
            inst.sec_type, p.quantity, price * inst.multiplier, p.entry, under, inst.strike,
            inst.right, inst.multiplier, inst.underlying in BROAD_INDICES, inst.tws_symbol,
        )  # fmt: skip

    def _holdings(self, prices: dict[int, float]) -> dict[int, Holding]:
        """Every open position for margin, by conId; ``prices`` caches last prices."""
        return {
            c: self._holding(c, p, prices)
            for c, p in self.positions.items()
            if abs(p.quantity) > EPS
        }

    def margin(self, prices: dict[int, float] | None = None) -> Margin:
        """Margin figures (:mod:`.margin`) of this account at ``clock.now()``; ``prices``
        caches last prices by conId."""
        self.settle(self.market.clock.timestamp())
        held = self._holdings({} if prices is None else prices)
        return margin(self.cash_value(), held.values())

    def projection(self, trade: TradeRecord) -> tuple[Margin, Margin]:
        """Margin before and after booking ``trade`` (nothing is booked)."""
        self.settle(self.market.clock.timestamp())
        prices: dict[int, float] = {}
        held = self._holdings(prices)
        before = margin(self.cash_value(), held.values())
        balances = dict(self.balances)
        position = replace(self.positions.get(trade.con_id, Position()))
        _apply(trade, balances, {trade.con_id: position}, session=False)
        held.pop(trade.con_id, None)
        if abs(position.quantity) > EPS:
            held[trade.con_id] = self._holding(trade.con_id, position, prices)
        return before, margin(self.cash_value(balances), held.values())

    # ---- positions ---------------------------------------------------------------------------

    def row(self, con_id: int, p: Position) -> PositionRow:
        """A position valued at the last price at ``clock.now()`` (flat: quantity 0, cost 0).
        Average cost, market value and P&L are per contract for options (x 100)."""
        inst = instrument_by_con_id(con_id)
        mark = self.market.last_price(inst.symbol)
        unit = mark * inst.multiplier
        flat = abs(p.quantity) < EPS
        return PositionRow(
            account=self.account_id,
            con_id=con_id,
            symbol=inst.symbol,
            quantity=0.0 if flat else p.quantity,
            average_cost=0.0 if flat else p.avg_cost,
            market_price=mark,
            market_value=0.0 if flat else p.quantity * unit,
            unrealized_pnl=0.0 if flat else (unit - p.avg_cost) * p.quantity,
            realized_pnl=p.realized,
        )

    def position_list(self) -> list[PositionRow]:
        """Non-zero positions, by symbol, valued at the last price at ``clock.now()``."""
        rows = [self.row(c, p) for c, p in self.positions.items() if abs(p.quantity) >= EPS]
        return sorted(rows, key=lambda r: r.symbol)

    def portfolio(self) -> list[PositionRow]:
        """Same rows as :meth:`position_list`, plus closed positions with realized P&L today."""
        rows = [
            self.row(c, p)
            for c, p in self.positions.items()
            if abs(p.quantity) >= EPS or abs(p.realized) > EPS
        ]
        return sorted(rows, key=lambda r: r.symbol)

    def position_rows(self, con_ids) -> list[PositionRow]:
        """The rows of these contracts, flat ones included (quantity 0), as TWS reports a
        position a fill has just closed."""
        return [self.row(c, self.positions.get(c, Position())) for c in con_ids]

    # ---- account values ----------------------------------------------------------------------

    def _pnl_by_currency(self, rows: list[PositionRow]) -> dict[str, dict[str, float]]:
        """Per contract currency: unrealized and realized P&L, stock and option values."""
        out: dict[str, dict[str, float]] = {}
        for r in rows:
            inst = instrument_by_con_id(r.con_id)
            d = out.setdefault(
                inst.currency,
                {"UnrealizedPnL": 0.0, "RealizedPnL": 0.0, "StockMarketValue": 0.0,
                 "OptionMarketValue": 0.0, "FuturesPNL": 0.0},
            )  # fmt: skip
            d["UnrealizedPnL"] += r.unrealized_pnl
            d["RealizedPnL"] += r.realized_pnl
            if inst.sec_type == "STK":
                d["StockMarketValue"] += r.market_value
            elif inst.sec_type == "OPT":
                d["OptionMarketValue"] += r.market_value
            elif inst.sec_type == "FUT":
                p = self.positions[r.con_id]
                d["FuturesPNL"] += p.quantity * (r.market_price * inst.multiplier - p.entry)
        return out

    def values(self) -> dict[str, float]:
        """Account summary tags -> value in USD (see :meth:`report`)."""
        return self.report()[0]

    def by_currency(self) -> dict[str, dict[str, float]]:
        """Each currency's own figures (see :meth:`report`)."""
        return self.report()[1]

    def report(self) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        """The account values at ``clock.now()``: (tags -> value in USD, currency -> tags ->
        value in that currency), from one valuation of the positions.

        In USD (margin as in :mod:`.margin`): NetLiquidation = EquityWithLoanValue =
        TotalCashValue (every currency in USD) + long - short stock and option value +
        FuturesPNL; GrossPositionValue = long + short; AvailableFunds = EquityWithLoanValue -
        InitMarginReq; ExcessLiquidity = EquityWithLoanValue - MaintMarginReq; BuyingPower = 4 x
        AvailableFunds (floored at 0).

        Per currency (every simulated one: its ExchangeRate; once held, in that currency):
        CashBalance, TotalCashBalance,
        NetLiquidationByCurrency (cash + stock and option value + futures variation in it),
        UnrealizedPnL, RealizedPnL, StockMarketValue, OptionMarketValue, FuturesPNL; and
        ExchangeRate (USD per unit), as reqAccountUpdates reports them.
        """
        self.settle(self.market.clock.timestamp())
        rows = self.portfolio()
        prices = {r.con_id: r.market_price for r in rows}
        long_v, short_v, init, maint, nlv, futures = self.margin(prices=prices)
        available = nlv - init
        excess = nlv - maint
        cash = self.cash_value()
        rates = self.rates()
        pnl = {"UnrealizedPnL": 0.0, "RealizedPnL": 0.0, "StockMarketValue": 0.0,
               "OptionMarketValue": 0.0}  # fmt: skip
        by_currency = self._pnl_by_currency(rows)
        for currency, d in by_currency.items():
            for k in pnl:
                pnl[k] += d[k] * rates[currency]
        values = {
            "NetLiquidation": nlv,
            "TotalCashValue": cash,
            "SettledCash": cash,
            "AccruedCash": 0.0,
            "GrossPositionValue": long_v + short_v,
            "StockMarketValue": pnl["StockMarketValue"],
            "OptionMarketValue": pnl["OptionMarketValue"],
            "FuturesPNL": futures,
            "EquityWithLoanValue": nlv,
            "InitMarginReq": init,
            "MaintMarginReq": maint,
            "FullInitMarginReq": init,
            "FullMaintMarginReq": maint,
            "AvailableFunds": available,
            "FullAvailableFunds": available,
            "ExcessLiquidity": excess,
            "FullExcessLiquidity": excess,
            "BuyingPower": max(0.0, 4.0 * available),
            "Cushion": excess / nlv if nlv else 0.0,
            "Leverage": (long_v + short_v) / nlv if nlv else 0.0,
            "RealizedPnL": pnl["RealizedPnL"],
            "UnrealizedPnL": pnl["UnrealizedPnL"],
        }
        usd = {
            k: round(v, 2) if k not in ("Cushion", "Leverage") else round(v, 6)
            for k, v in values.items()
        }
        return usd, self._currency_figures(by_currency, rates)

    def _currency_figures(self, pnl: dict[str, dict[str, float]], rates) -> dict[str, dict]:
        """Per currency: its ExchangeRate, and its figures once the account has held it (a
        balance, even back at zero, or a position quoted in it)."""
        out = {}
        for currency in sorted(set(rates) | set(self.balances)):
            out[currency] = figures = {"ExchangeRate": rates.get(currency, 0.0)}
            if currency not in self.balances and currency not in pnl:
                continue
            cash = self.balances.get(currency, 0.0)
            d = pnl.get(currency, {})
            held = (
                d.get("StockMarketValue", 0.0)
                + d.get("OptionMarketValue", 0.0)
                + d.get("FuturesPNL", 0.0)
            )
            figures.update(
                CashBalance=cash,
                TotalCashBalance=cash,
                NetLiquidationByCurrency=cash + held,
                UnrealizedPnL=d.get("UnrealizedPnL", 0.0),
                RealizedPnL=d.get("RealizedPnL", 0.0),
                StockMarketValue=d.get("StockMarketValue", 0.0),
                OptionMarketValue=d.get("OptionMarketValue", 0.0),
                FuturesPNL=d.get("FuturesPNL", 0.0),
            )
        return out


def _apply(
    trade: TradeRecord,
    balances: dict[str, float],
    positions: dict[int, Position],
    session: bool,
) -> float | None:
    """Book ``trade`` into ``balances`` and ``positions`` (see the module docstring); returns
    the realized P&L in USD, None when the trade only opens or adds."""
    inst = instrument_by_con_id(trade.con_id)
    pos = positions.setdefault(trade.con_id, Position())
    mult = inst.multiplier if inst else 1.0
    unit = trade.price * mult  # contract currency per unit of quantity
    to_usd = usd_per_quote(inst, trade.price) if inst else 1.0
    start = pos.quantity
    pos.quantity, pos.avg_cost, realized = book_trade(
        start, pos.avg_cost, trade.quantity, unit, trade.commission / to_usd
    )
    if session and realized is not None:
        pos.realized += realized
    currency = inst.currency if inst else BASE
    balances[BASE] = balances.get(BASE, 0.0) - trade.commission
    if inst is not None and inst.sec_type == "FUT":
        _, pos.entry, variation = book_trade(start, pos.entry, trade.quantity, unit, 0.0)
        balances[BASE] += variation or 0.0
    else:
        balances[currency] = balances.get(currency, 0.0) - trade.quantity * unit
    if inst is not None and inst.sec_type == "CASH":
        base = inst.tws_symbol
        balances[base] = balances.get(base, 0.0) + trade.quantity
    return None if realized is None else realized * to_usd
