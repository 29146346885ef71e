"""Risk: limits, sizing and pre-trade checks as pure, vectorized functions (no I/O).

``plan_orders`` turns validated decisions into one order row per decision, sized by the base
size and capped by every limit; a row the limits reduce to nothing is ``rejected`` with the
binding rule named in ``reason``. ``check_orders`` applies the same limits to orders a person
types in. Rules are named after their settings (``MAX_POSITION_PCT``, ``MAX_PORTFOLIO_RISK``,
``AVAILABLE_FUNDS``, ...), so a denial says which setting to look at.

Conventions: quantities signed (+ buy, - sell), money in the account currency, ``pct_*`` as
fractions of NetLiquidation (0.05 = 5%).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime

import numpy as np
import pandas as pd

from .commissions import stock_commission
from .config import Settings, TradingState, load_settings
from .decisions import as_numbers, as_text, validate_decisions
from .sizing import base_quantity
from .tax.lots import is_long_term

PLAN_COLUMNS = [
    "decision_id",
    "symbol",
    "decision",
    "confidence",
    "action",
    "quantity",
    "position_before",
    "position_after",
    "order_type",
    "limit_price",
    "stop_price",
    "stop_loss",
    "take_profit",
    "trail_amount",
    "trail_percent",
    "reference_price",
    "notional",
    "pct_nav",
    "risk_to_stop",
    "pct_nav_at_risk",
    "est_commission",
    "est_realized_st",
    "est_realized_lt",
    "wash_sale_warning",
    "status",
    "reason",
    "order_ref",
]
"""``quantity`` signed; ``limit_price`` of the entry (a marketable limit); ``stop_loss`` /
``take_profit`` the bracket's STP and LMT legs (NaN: no leg); ``notional`` = |quantity| x
``reference_price``; ``risk_to_stop`` = loss if the stop fills (new shares x stop distance);
``est_realized_*`` estimated gain of a sale from the ledger's open lots (FIFO, before
commission), short- and long-term; ``status`` planned / rejected / hold."""

WASH_SALE_DAYS = 30


@dataclass(frozen=True)
class RiskLimits:
    """Risk limits; money in account currency, fractions of NetLiquidation."""

    max_position_size: float = 10_000.0
    max_position_pct: float = 0.10
    max_portfolio_risk: float = 0.02
    max_order_notional: float = 50_000.0
    max_batch_notional: float = 250_000.0
    max_daily_notional: float = 1_000_000.0
    max_orders_per_batch: int = 50
    max_order_quantity: float = 100_000
    max_slippage_pct: float = 0.02
    allow_short: bool = True
    trading_state: TradingState = TradingState.ACTIVE

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> RiskLimits:
        settings = settings or load_settings()
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class Account:
    """The two account figures the limits need (account currency)."""

    net_liquidation: float
    available_funds: float

    @classmethod
    def of(cls, account) -> Account:
        """From an ``Account``, a mapping of tags, or an ``account_summary()`` frame."""
        if isinstance(account, Account):
            return account
        if isinstance(account, pd.DataFrame):
            account = dict(zip(account["tag"], account["value"], strict=True))
        nav = float(account.get("NetLiquidation", np.nan))
        funds = float(account.get("AvailableFunds", nav))
        if not np.isfinite(nav) or nav <= 0:
            raise ValueError(
                f"NetLiquidation is {nav}; the risk limits need a positive account value. "
                "Pass account_summary() of a funded account."
            )
        return cls(nav, funds if np.isfinite(funds) else 0.0)


def _positions_by_symbol(positions: pd.DataFrame | None) -> pd.Series:
    if positions is None or len(positions) == 0:
        return pd.Series(dtype=float)
    return positions.groupby("symbol")["quantity"].sum().astype(float)


def reference_prices(symbols: pd.Series, fallback: pd.Series, quotes: pd.DataFrame | None):
    """Price to size and check against: last trade, else mid, else close, else ``fallback``."""
    if quotes is None or len(quotes) == 0:
        return fallback.astype(float).to_numpy()
    q = quotes.drop_duplicates("symbol", keep="last").set_index("symbol")

    def col(name: str) -> pd.Series:
        return q[name].astype(float) if name in q else pd.Series(np.nan, index=q.index)

    mid = (col("bid") + col("ask")) / 2
    best = col("last").where(col("last") > 0, mid.where(mid > 0, col("close")))
    picked = symbols.map(best).astype(float)
    return picked.where(picked > 0, fallback.astype(float)).to_numpy()


def _round_price(price: np.ndarray) -> np.ndarray:
    """US stock tick size: 0.01 at or above 1.00, 0.0001 below."""
    return np.where(price >= 1, np.round(price, 2), np.round(price, 4))


def exposure_caps(
    side: np.ndarray,
    position: np.ndarray,
    closing: np.ndarray,
    price: np.ndarray,
    stop: np.ndarray,
    account: Account,
    limits: RiskLimits,
) -> pd.DataFrame:
    """Most new shares (opening exposure in the direction ``side`` = +1 buy / -1 sell) that each
    limit allows, given the signed ``position`` before and the ``closing`` shares the same order
    closes first. One column per rule; inf where a rule does not bind."""
    nav, funds = account.net_liquidation, account.available_funds
    with np.errstate(all="ignore"):  # a tiny price overflows to inf: that cap then never binds
        same_way = np.where(np.sign(position) == side, np.abs(position), 0.0)
        pct = np.floor(limits.max_position_pct * nav / price) - same_way
        distance = np.abs(price - stop)
        risk = np.where(
            np.isfinite(stop) & (distance > 0),
            np.floor(limits.max_portfolio_risk * nav / distance),
            np.inf,
        )
        cash = np.floor(np.maximum(funds - stock_commission(1, price), 0.0) / price)
        notional = np.floor(limits.max_order_notional / price) - closing
        quantity = np.floor(limits.max_order_quantity) - closing
    return pd.DataFrame(
        {
            "MAX_POSITION_PCT": pct,
            "MAX_PORTFOLIO_RISK": risk,
            "AVAILABLE_FUNDS": cash,
            "MAX_ORDER_NOTIONAL": notional,
            "MAX_ORDER_QUANTITY": quantity,
        }
    )


CAP_TEXT = {
    "MAX_POSITION_PCT": "the position would exceed MAX_POSITION_PCT={:.2%} of NetLiquidation",
    "MAX_PORTFOLIO_RISK": "the loss to the stop would exceed MAX_PORTFOLIO_RISK={:.2%} of "
    "NetLiquidation",
    "AVAILABLE_FUNDS": "the cost would exceed AvailableFunds",
    "MAX_ORDER_NOTIONAL": "the order would exceed MAX_ORDER_NOTIONAL={:,.2f}",
    "MAX_ORDER_QUANTITY": "the order would exceed MAX_ORDER_QUANTITY={:,.0f} shares",
}
_CAP_SETTING = {
    "MAX_POSITION_PCT": "max_position_pct",
    "MAX_PORTFOLIO_RISK": "max_portfolio_risk",
    "MAX_ORDER_NOTIONAL": "max_order_notional",
    "MAX_ORDER_QUANTITY": "max_order_quantity",
}


def cap_reason(rule: str, limits: RiskLimits) -> str:
    """``RULE: sentence`` for a binding cap."""
    value = getattr(limits, _CAP_SETTING[rule]) if rule in _CAP_SETTING else None
    return f"{rule}: " + CAP_TEXT[rule].format(value)


@np.errstate(all="ignore")  # NaN / inf / tiny prices are rejected by rule, not warned about
def plan_orders(
    decisions: pd.DataFrame,
    positions: pd.DataFrame | None,
    account,
    limits: RiskLimits | None = None,
    *,
    quotes: pd.DataFrame | None = None,
    lots: pd.DataFrame | None = None,
    realized: pd.DataFrame | None = None,
    traded_today: float = 0.0,
    today: date | datetime | None = None,
    collar_pct: float = 0.002,
    trail_percent: float | None = None,
    tradable=None,
) -> pd.DataFrame:
    """One order row per decision (columns ``PLAN_COLUMNS``); pure and vectorized.

    Position logic: BUY flat/long buys the size; BUY short covers and buys the size; SELL long
    sells the position; SELL flat/short shorts the size (refused when ``allow_short`` is off);
    HOLD plans nothing. Size = ``base_quantity`` capped by ``exposure_caps``. Entries are
    marketable limits ``collar_pct`` through the reference price; a stop loss adds a bracket
    (STP, or TRAIL when ``trail_percent`` is given, and LMT take-profit) on the new shares.
    Batch limits (orders per batch, batch and daily notional with ``traded_today`` already sent,
    cumulative AvailableFunds) are applied in priority order: highest confidence first.
    ``lots`` / ``realized``: the ledger's open lots and realized rows, for the estimated gain of
    a sale and the wash-sale warning on a buy within 30 days of a loss sale. ``tradable``: the
    symbols the broker knows (None: all); another is rejected (UNKNOWN_SYMBOL) before the batch
    limits, so it takes no place in the batch.

    ``decisions`` as ``load_decisions`` returns them, or a raw table: each row is validated
    here too (``validate_decisions``) and a bad one is a ``rejected`` row whose reason starts
    with ``DECISION:``; nothing in the table makes this raise.
    """
    limits = limits or RiskLimits.from_settings()
    acct = Account.of(account)
    today = pd.Timestamp(today or pd.Timestamp.now(tz="UTC")).date()
    d, invalid = validate_decisions(decisions)  # a bad row is a rejected row, never an error
    n = len(d)
    symbol = d["ticker"].astype(str)
    action_in = d["decision"].to_numpy(dtype=object)  # validated: upper case
    confidence = d["confidence"].astype(float).to_numpy()
    decided_price = d["current_price"].astype(float)
    stop, target = d["stop_loss"].to_numpy(float), d["take_profit"].to_numpy(float)
    ref = reference_prices(symbol, decided_price, quotes)
    position = symbol.map(_positions_by_symbol(positions)).fillna(0.0).to_numpy()

    buy, sell, hold = action_in == "BUY", action_in == "SELL", action_in == "HOLD"
    side = np.where(buy, 1.0, np.where(sell, -1.0, 0.0))
    size = base_quantity(ref, confidence, limits.max_position_size)
    closing = np.where(buy, np.maximum(-position, 0), np.where(sell, np.maximum(position, 0), 0))
    opening = np.where(buy | (sell & (position <= 0)), size, 0.0)

    reason = np.full(n, "", dtype=object)
    rejected = np.zeros(n, dtype=bool)

    def reject(mask: np.ndarray, text) -> None:
        """``text``: one reason, or a function from the newly rejected rows to theirs."""
        new = mask & ~rejected & ~hold
        reason[new] = text(np.flatnonzero(new)) if callable(text) else text
        rejected[new] = True

    # decisions that cannot be planned at all
    if tradable is not None:
        reject(~symbol.isin(set(tradable)).to_numpy(), "UNKNOWN_SYMBOL: IBKR has no such US stock")
    superseded = _superseded(d)
    reject(superseded, "SUPERSEDED: a later decision for the same symbol is in this batch")
    limit_price = _round_price(ref * (1 + side * collar_pct))
    bad_price = ~(np.isfinite(ref) & (ref > 0) & (limit_price > 0))
    reject(bad_price, "PRICE: no usable price for this symbol (missing, or below one tick)")
    decided = decided_price.to_numpy()
    slip = np.abs(ref / decided - 1)
    reject(
        slip > limits.max_slippage_pct,
        lambda rows: [
            f"MAX_SLIPPAGE_PCT: the quote {r:,.2f} is {s:.2%} from the decision's price "
            f"{p:,.2f} (limit {limits.max_slippage_pct:.2%})"
            for r, s, p in zip(ref[rows], slip[rows], decided[rows], strict=True)
        ],
    )
    stop_passed = np.isfinite(stop) & (side * (ref - stop) <= 0)
    reject(stop_passed & (opening > 0), "STOP_LOSS: the quote is already through the stop loss")
    if limits.trading_state == TradingState.HALTED:
        reject(~hold, "TRADING_STATE: HALTED, no new orders")
    if not limits.allow_short:
        reject(sell & (position <= 0), "ALLOW_SHORT: shorting is switched off")
    if limits.trading_state == TradingState.REDUCING:
        reject(closing == 0, "TRADING_STATE: REDUCING, only orders that shrink a position")
        opening = np.zeros(n)

    # size caps on the new shares; the closing part is capped by the per-order limits only
    caps = exposure_caps(side, position, closing, ref, stop, acct, limits)
    cap = caps.min(axis=1).to_numpy()
    binding = caps.idxmin(axis=1).to_numpy() if n else np.array([], dtype=object)
    opened = np.clip(np.minimum(opening, cap), 0, None)
    order_cap = np.floor(np.minimum(limits.max_order_notional / ref, limits.max_order_quantity))
    closed = np.clip(np.minimum(closing, order_cap), 0, None)
    nothing = (opened + closed) <= 0
    reject(nothing, lambda rows: [cap_reason(r, limits) for r in binding[rows]])
    capped = ~rejected & ~hold & (opening > opened)
    reason[capped] = [
        f"capped from {int(o)} to {int(k)} shares: " + cap_reason(r, limits)
        for o, k, r in zip(opening[capped], opened[capped], binding[capped], strict=True)
    ]
    partial = ~rejected & ~hold & (closed < closing)
    reason[partial] = [
        f"closing {int(c)} of {int(w)} shares: the order would exceed MAX_ORDER_NOTIONAL / "
        "MAX_ORDER_QUANTITY"
        for c, w in zip(closed[partial], closing[partial], strict=True)
    ]
    quantity = side * (closed + opened)

    # batch limits, highest confidence first
    notional = np.abs(quantity) * ref
    commission = stock_commission(quantity, ref) if n else np.zeros(0)
    cost = np.where(side > 0, notional + commission, notional * 0 + commission)
    _apply_batch_limits(
        d, confidence, notional, cost, opened, acct, limits, traded_today, rejected, hold, reason
    )

    status = np.where(hold, "hold", np.where(rejected, "rejected", "planned"))
    live = status == "planned"
    quantity = np.where(live, quantity, 0.0)
    bracket = live & np.isfinite(stop) & (opened > 0)
    risk_to_stop = np.where(bracket, opened * np.abs(ref - stop), np.nan)
    est_st, est_lt = _estimated_gains(symbol, np.where(live & sell, closed, 0.0), ref, lots, today)
    plan = pd.DataFrame(
        {
            "decision_id": d["decision_id"].astype(str),
            "symbol": symbol,
            "decision": action_in,
            "confidence": confidence,
            "action": np.where(side > 0, "BUY", np.where(side < 0, "SELL", "")),
            "quantity": quantity,
            "position_before": position,
            "position_after": position + quantity,
            "order_type": np.where(live, "LMT", ""),
            "limit_price": np.where(live, limit_price, np.nan),
            "stop_price": np.nan,
            "stop_loss": np.where(bracket & (trail_percent is None), stop, np.nan),
            "take_profit": np.where(bracket & np.isfinite(target), target, np.nan),
            "trail_amount": np.nan,
            "trail_percent": np.where(bracket & (trail_percent is not None), trail_percent, np.nan),
            "reference_price": ref,
            "notional": np.where(live, notional, 0.0),
            "pct_nav": np.where(live, notional / acct.net_liquidation, 0.0),
            "risk_to_stop": risk_to_stop,
            "pct_nav_at_risk": risk_to_stop / acct.net_liquidation,
            "est_commission": np.where(live, commission, 0.0),
            "est_realized_st": est_st,
            "est_realized_lt": est_lt,
            "wash_sale_warning": _wash_warnings(symbol, live & buy, realized, today),
            "status": status,
            "reason": reason.astype(str),
            "order_ref": d["decision_id"].astype(str),
        },
        columns=PLAN_COLUMNS,
    )
    if len(invalid) == 0:
        return plan
    bad = invalid["row"].to_numpy() - 1
    plan.index = np.setdiff1d(np.arange(len(decisions)), bad)
    return pd.concat([plan, _invalid_rows(invalid).set_axis(bad)]).sort_index(ignore_index=True)


def _invalid_rows(invalid: pd.DataFrame) -> pd.DataFrame:
    """Rejected plan rows for decisions that failed validation (their reasons kept)."""
    ref = as_text(invalid["decision_id"])
    rows = pd.DataFrame(
        {
            "decision_id": ref,
            "symbol": as_text(invalid["ticker"]).str.upper(),
            "decision": as_text(invalid["decision"]).str.upper(),
            "confidence": as_numbers(invalid["confidence"]).astype(float),
            "action": "",
            "quantity": 0.0,
            "order_type": "",
            "notional": 0.0,
            "pct_nav": 0.0,
            "est_commission": 0.0,
            "wash_sale_warning": "",
            "status": "rejected",
            "reason": "DECISION: " + invalid["reason"].astype(str),
            "order_ref": ref,
        }
    )
    return rows.reindex(columns=PLAN_COLUMNS)


def _superseded(d: pd.DataFrame) -> np.ndarray:
    """All but the latest decision (then the most confident) per symbol."""
    if len(d) == 0:
        return np.zeros(0, dtype=bool)
    created = d["created_at"]
    order = pd.DataFrame(
        {"s": d["ticker"], "t": created, "c": d["confidence"], "i": d.index}
    ).sort_values(["s", "t", "c", "i"])
    latest = order.drop_duplicates("s", keep="last")["i"]
    return ~d.index.isin(latest)


def _apply_batch_limits(
    d, confidence, notional, cost, opened, acct, limits, traded_today, rejected, hold, reason
) -> None:
    """Greedy in priority order: a row that would break a batch limit is rejected, and a later,
    smaller row may still fit. Updates ``rejected`` / ``reason`` in place."""
    created = d["created_at"].to_numpy(dtype="datetime64[ns]")  # validated: UTC
    candidates = np.flatnonzero(~rejected & ~hold)
    if len(candidates) == 0:
        return
    priority = candidates[np.lexsort((candidates, created[candidates], -confidence[candidates]))]
    sizes = notional[priority]
    needs = np.where(opened[priority] > 0, cost[priority], 0.0)
    # the rows before the first that breaks a limit all fit: take them at once
    spent = np.cumsum(sizes)
    fits = (
        (np.arange(1, len(priority) + 1) <= limits.max_orders_per_batch)
        & (spent <= limits.max_batch_notional)
        & (traded_today + spent <= limits.max_daily_notional)
        & (np.cumsum(needs) <= acct.available_funds)
    )
    k = len(priority) if fits.all() else int(np.argmin(fits))
    count, batch = k, float(sizes[:k].sum())
    day, funds = float(traded_today) + batch, acct.available_funds - float(needs[:k].sum())
    rest = zip(priority[k:].tolist(), sizes[k:].tolist(), needs[k:].tolist(), strict=True)
    for i, size, need in rest:
        rule = ""
        if count >= limits.max_orders_per_batch:
            rule = f"MAX_ORDERS_PER_BATCH: already {count} orders in this batch"
        elif batch + size > limits.max_batch_notional:
            rule = (
                f"MAX_BATCH_NOTIONAL: {batch + size:,.2f} would exceed "
                f"{limits.max_batch_notional:,.2f} in this batch"
            )
        elif day + size > limits.max_daily_notional:
            rule = (
                f"MAX_DAILY_NOTIONAL: {day + size:,.2f} would exceed "
                f"{limits.max_daily_notional:,.2f} today"
            )
        elif need > funds:
            rule = f"AVAILABLE_FUNDS: {need:,.2f} needed, {max(funds, 0):,.2f} left in this batch"
        if rule:
            rejected[i], reason[i] = True, rule
            continue
        count, batch, day, funds = count + 1, batch + size, day + size, funds - need


def _estimated_gains(symbol, sold, price, lots, today) -> tuple[np.ndarray, np.ndarray]:
    """Estimated short- and long-term gain of selling ``sold`` shares FIFO from long ``lots``."""
    n = len(symbol)
    st, lt = np.full(n, np.nan), np.full(n, np.nan)
    selling = sold > 0
    if lots is None or not selling.any():
        return st, lt
    longs = lots[lots["quantity"] > 0]
    st[selling], lt[selling] = 0.0, 0.0
    if len(longs) == 0:
        return st, lt
    start = longs.get("holding_period_start")
    held = pd.DataFrame(
        {
            "symbol": longs["symbol"].astype(str).to_numpy(),
            "qty": longs["quantity"].astype(float).to_numpy(),
            "basis": longs["cost_basis"].astype(float).to_numpy(),
            "since": pd.to_datetime(start if start is not None else longs["date_acquired"])
            .dt.tz_localize(None)
            .to_numpy()
            .astype("datetime64[D]"),
        }
    ).sort_values(["symbol", "since"], kind="stable")
    held["end"] = held.groupby("symbol")["qty"].cumsum()
    held["begin"] = held["end"] - held["qty"]
    sales = pd.DataFrame({"row": np.flatnonzero(selling), "symbol": symbol[selling].to_numpy()})
    sales["sold"], sales["price"] = sold[selling], price[selling]
    pairs = sales.merge(held, on="symbol")
    take = np.clip(np.minimum(pairs["end"], pairs["sold"]) - pairs["begin"], 0, None)
    gain = take * (pairs["price"] - pairs["basis"] / pairs["qty"])
    long_term = is_long_term(pairs["since"].to_numpy(), np.datetime64(today, "D"))
    by_term = pd.DataFrame({"row": pairs["row"], "lt": long_term, "gain": gain})
    sums = by_term.groupby(["row", "lt"])["gain"].sum()
    for (row, is_lt), value in sums.items():
        (lt if is_lt else st)[row] += value
    return st, lt


def _wash_warnings(symbol: pd.Series, buying: np.ndarray, realized, today) -> np.ndarray:
    """A warning for a buy within 30 days after a loss sale of the same symbol (Pub. 550)."""
    out = np.full(len(symbol), "", dtype=object)
    if realized is None or len(realized) == 0 or not buying.any():
        return out
    sold = pd.to_datetime(realized["date_sold"]).dt.date
    window = (realized["gain_loss"] < 0) & (sold >= today - pd.Timedelta(days=WASH_SALE_DAYS))
    losses = realized[window.to_numpy() & (sold <= today).to_numpy()]
    if len(losses) == 0:
        return out
    worst = (
        losses.assign(sold=pd.to_datetime(losses["date_sold"]).dt.date)
        .groupby("symbol")
        .agg(loss=("gain_loss", "sum"), last=("sold", "max"))
    )
    for i in np.flatnonzero(buying & symbol.isin(worst.index).to_numpy()):
        row = worst.loc[symbol.iloc[i]]
        out[i] = (
            f"wash sale: {symbol.iloc[i]} was sold at a loss of {-row['loss']:,.2f} up to "
            f"{row['last']}, within {WASH_SALE_DAYS} days; buying now defers that loss"
        )
    return out


# -- manual orders ---------------------------------------------------------------------------


def order_value_problem(quantity, prices: dict[str, float | None], limits: RiskLimits):
    """``(rule, reason)`` for a quantity or price that must never be sent, else ``None``.

    Refused: NaN, inf, zero, fractional (stocks trade in whole shares) or absurd quantities
    (above MAX_ORDER_QUANTITY); NaN, inf, zero or negative prices.
    """
    try:
        q = float(quantity)
    except (TypeError, ValueError):
        return "QUANTITY", f"QUANTITY: {quantity!r} is not a number of shares"
    if not np.isfinite(q):
        return "QUANTITY", f"QUANTITY: {quantity!r} is not a finite number of shares"
    if q == 0:
        return "QUANTITY", "QUANTITY: must be non-zero, positive to buy, negative to sell"
    if q != np.floor(q):
        return "QUANTITY", f"QUANTITY: {q:g} is fractional; stocks trade in whole shares"
    if abs(q) > limits.max_order_quantity:
        return "QUANTITY", (
            f"QUANTITY: {abs(q):,.0f} shares is above MAX_ORDER_QUANTITY="
            f"{limits.max_order_quantity:,.0f}; a typo?"
        )
    for name, value in prices.items():
        if value is None:
            continue
        try:
            p = float(value)
        except (TypeError, ValueError):
            return "PRICE", f"PRICE: {name}={value!r} is not a number"
        if not np.isfinite(p) or p <= 0:
            return "PRICE", f"PRICE: {name}={value!r} must be a finite price above zero"
    return None


@np.errstate(all="ignore")
def check_orders(
    orders: pd.DataFrame,
    positions: pd.DataFrame | None,
    account,
    limits: RiskLimits | None = None,
    *,
    quotes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The plan's limits applied to orders as given (manual orders, widget tickets).

    ``orders``: ``symbol``, signed ``quantity``, optional ``limit_price``, ``stop_loss``,
    ``take_profit`` (checked against the limit price, else the quote).
    Returns ``orders`` with ``reference_price``, ``notional``, ``pct_nav``, ``rule`` and
    ``reason`` (empty where every limit passes). An order that only shrinks a position passes
    the exposure limits; the per-order caps and the trading state apply to every order.
    """
    limits = limits or RiskLimits.from_settings()
    acct = Account.of(account)
    o = orders.reset_index(drop=True).copy()
    n = len(o)
    quantity = o["quantity"].astype(float).to_numpy()
    limit = (
        o["limit_price"].astype(float) if "limit_price" in o else pd.Series(np.nan, index=o.index)
    )
    stop = o["stop_loss"].astype(float).to_numpy() if "stop_loss" in o else np.full(n, np.nan)
    last = reference_prices(o["symbol"], pd.Series(np.nan, index=o.index), quotes)
    ref = np.where(np.isfinite(limit), limit, last)
    position = o["symbol"].map(_positions_by_symbol(positions)).fillna(0.0).to_numpy()
    side = np.sign(quantity)
    closing = np.minimum(
        np.abs(quantity), np.where(np.sign(position) == -side, np.abs(position), 0)
    )
    opening = np.abs(quantity) - closing
    caps = exposure_caps(side, position, closing, ref, stop, acct, limits)
    order_cap = np.floor(np.minimum(limits.max_order_notional / ref, limits.max_order_quantity))
    rule = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)

    def deny(mask, name: str, text) -> None:
        new = np.asarray(mask, dtype=bool) & (rule == "")
        rule[new] = name
        reason[new] = text[new] if isinstance(text, np.ndarray) else text

    deny(~(np.isfinite(ref) & (ref > 0)), "PRICE", "PRICE: no limit price and no quote to check")
    target = o["take_profit"].astype(float).to_numpy() if "take_profit" in o else np.full(n, np.nan)
    deny(
        np.isfinite(stop) & (side * (ref - stop) <= 0),
        "STOP_LOSS",
        "STOP_LOSS: the stop loss is on the wrong side of the price; it would trigger at once",
    )
    deny(
        np.isfinite(target) & (side * (target - ref) <= 0),
        "TAKE_PROFIT",
        "TAKE_PROFIT: the take profit is on the wrong side of the price; it would fill at once",
    )
    if limits.trading_state == TradingState.HALTED:
        deny(np.ones(n, bool), "TRADING_STATE", "TRADING_STATE: HALTED, no new orders")
    if limits.trading_state == TradingState.REDUCING:
        deny(
            opening > 0,
            "TRADING_STATE",
            "TRADING_STATE: REDUCING, only orders that shrink a position",
        )
    if not limits.allow_short:
        deny((side < 0) & (opening > 0), "ALLOW_SHORT", "ALLOW_SHORT: shorting is switched off")
    slip = np.abs(limit.to_numpy() / last - 1)
    deny(
        np.isfinite(slip) & (slip > limits.max_slippage_pct),
        "MAX_SLIPPAGE_PCT",
        np.array(
            [
                f"MAX_SLIPPAGE_PCT: limit {p:,.2f} is {s:.2%} from the last quote {q:,.2f} "
                f"(limit {limits.max_slippage_pct:.2%})"
                for p, s, q in zip(limit, slip, last, strict=True)
            ],
            dtype=object,
        ),
    )
    for name in caps.columns:  # exposure first: a position limit is the one to name
        deny(opening > caps[name].to_numpy(), name, cap_reason(name, limits))
    deny(
        np.abs(quantity) > order_cap, "MAX_ORDER_NOTIONAL", cap_reason("MAX_ORDER_NOTIONAL", limits)
    )
    o["reference_price"] = ref
    o["notional"] = np.abs(quantity) * ref
    o["pct_nav"] = o["notional"] / acct.net_liquidation
    o["rule"] = rule.astype(str)
    o["reason"] = reason.astype(str)
    return o
