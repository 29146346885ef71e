"""The paper account's cash, positions and trade history, and its account values.

P&L follows IBKR's average cost: average cost includes commissions (buy: (cost + commission) /
shares; short: (proceeds - commission) / shares). Closing ``n`` shares realizes ``(price - avg)
* n`` (long) or ``(avg - price) * n`` (short) minus the closing share of the commission; a flip
closes then opens. Unrealized = ``(market price - avg) * quantity``. RealizedPnL counts this
account's fills since it was created (not the seeded history).
"""

from __future__ import annotations

from dataclasses import dataclass

from .margin import margin
from .market import Market, instrument_by_con_id
from .records import PositionRow, TradeRecord

INITIAL_CASH = 1_000_000.0
EPS = 1e-9


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


def multiplier(con_id: int) -> float:
    """Units of the underlying per unit of quantity (100 for an option, 1 for stocks, FX)."""
    inst = instrument_by_con_id(con_id)
    return inst.multiplier if inst else 1.0


@dataclass
class Position:
    quantity: float = 0.0
    avg_cost: float = 0.0
    realized: float = 0.0  # from this account's fills (not seeded history)


class Account:
    """Cash (USD), positions by conId and every trade booked, valued on ``market``."""

    def __init__(self, account_id: str, market: Market, cash: float = INITIAL_CASH) -> None:
        self.account_id = account_id
        self.market = market
        self.cash = cash
        self.positions: dict[int, Position] = {}
        self.trades: list[TradeRecord] = []

    def book(self, trade: TradeRecord, session: bool) -> float | None:
        """Apply ``trade`` to cash and position; ``session`` trades count in RealizedPnL.
        Returns the realized P&L (None when the trade only opens or adds)."""
        pos = self.positions.setdefault(trade.con_id, Position())
        unit = trade.price * multiplier(trade.con_id)  # USD per unit of quantity
        pos.quantity, pos.avg_cost, realized = book_trade(
            pos.quantity, pos.avg_cost, trade.quantity, unit, trade.commission
        )
        if session and realized is not None:
            pos.realized += realized
        self.cash -= trade.quantity * unit + trade.commission
        self.trades.append(trade)
        return realized

    def quantities(self) -> dict[int, float]:
        """Signed non-zero quantities by conId."""
        return {c: p.quantity for c, p in self.positions.items() if abs(p.quantity) > EPS}

    def mark(self, con_id: int) -> float:
        """Value in USD of one unit of a conId's quantity: last price x multiplier (0 for an
        unknown conId)."""
        inst = instrument_by_con_id(con_id)
        return self.market.last_price(inst.symbol) * inst.multiplier if inst else 0.0

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

    def values(self) -> dict[str, float]:
        """Account summary tags -> value in USD (Reg T, see :mod:`.margin`).

        NetLiquidation = EquityWithLoanValue = TotalCashValue + L - S; GrossPositionValue =
        L + S; AvailableFunds = EquityWithLoanValue - InitMarginReq; ExcessLiquidity =
        EquityWithLoanValue - MaintMarginReq; BuyingPower = 4 x AvailableFunds (floored at 0).
        """
        rows = self.position_list()
        m = margin(
            self.cash,
            {r.con_id: r.quantity for r in rows},
            {r.con_id: r.market_price for r in rows},
        )
        long_v, short_v, init, maint, nlv = m
        available = nlv - init
        excess = nlv - maint
        values = {
            "NetLiquidation": nlv,
            "TotalCashValue": self.cash,
            "SettledCash": self.cash,
            "AccruedCash": 0.0,
            "GrossPositionValue": long_v + short_v,
            "StockMarketValue": long_v - short_v,
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
            "RealizedPnL": sum(p.realized for p in self.positions.values()),
            "UnrealizedPnL": sum(r.unrealized_pnl for r in rows),
        }
        return {
            k: round(v, 2) if k not in ("Cushion", "Leverage") else round(v, 6)
            for k, v in values.items()
        }
