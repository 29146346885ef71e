"""Positions from before the history starts, and several statements merged into one history.

A statement that sells shares bought before its period says so: the sale is a closing trade
(`open_close` "C") and IBKR lists the lots it closed (`ClosedLot` / `<Lot>` rows). The closed
lots of a closing trade acquired before the history's first fill of the symbol were bought
before the history starts: they become opening rows of the history (date acquired,
quantity, basis as IBKR gives them). Where the history, with those lots, still holds less
than a closing trade closes, the rest is left out of the trades and listed in `unexplained`
with a reason, never booked as a short sale.
A sale with `open_close` "O" is a genuine short sale, "CO" closes then opens a short (IBKR's
"C;O"); one with "" (unknown: plain files, executions) is booked as the trades say.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ibkr_nb.tax.trades import (
    OPENING_LOT_COLUMNS,
    UNEXPLAINED_COLUMNS,
    ImportResult,
)

_EPS = 1e-9


def resolve_prior_positions(
    fills: pd.DataFrame, closed_lots: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Trades with opening rows for pre-history lots, the opening lots, and unexplained sales.

    `fills` is a normalised trades frame; `closed_lots` IBKR's closed-lot detail
    (`ImportResult.ibkr_closed_lots`). See the module docstring.
    """
    if fills.empty or "open_close" not in fills:
        return (
            fills,
            pd.DataFrame(columns=OPENING_LOT_COLUMNS),
            pd.DataFrame(columns=UNEXPLAINED_COLUMNS),
        )
    account_code = pd.factorize(fills["account"], sort=True)[0]  # codes sort as the names
    symbol_code = pd.factorize(fills["symbol"], sort=True)[0]
    order = np.lexsort(
        (
            np.arange(len(fills)),
            fills["datetime"].to_numpy(dtype="datetime64[ns]"),
            symbol_code,
            account_code,
        )
    )
    # The columns the checks below read; all of them only if some sale needs pre-history lots.
    read = ["symbol", "datetime", "quantity", "open_close", "trade_id", "kind", "ratio"]
    ordered = fills[[c for c in read if c in fills]].iloc[order].reset_index(drop=True)
    key = (account_code * (symbol_code.max() + 2) + symbol_code + 1)[order]  # account+symbol
    is_split = (ordered["kind"] == "split").to_numpy() if "kind" in ordered else None
    splits = _splits(ordered, is_split)
    factor = np.ones(len(ordered))
    for symbol, events in splits.items():  # per symbol: product of the later splits' ratios
        rows = np.flatnonzero((ordered["symbol"] == symbol).to_numpy())
        for when, ratio in events:
            later = (ordered["datetime"].iloc[rows] < when).to_numpy()
            factor[rows[later]] *= ratio
    qty = ordered["quantity"].to_numpy(dtype=float)
    final = qty * factor  # in shares of the latest split era, so positions add up across splits
    after = pd.Series(final).groupby(key).cumsum().to_numpy()
    before = after - final
    closing = (ordered["open_close"] == "C").to_numpy()
    held = np.where(final < 0, np.maximum(before, 0), np.maximum(-before, 0))
    detailed = closing & ordered["trade_id"].isin(closed_lots["trade_id"]).to_numpy()
    shortfall = closing & (np.abs(final) - held > _EPS)
    if not (shortfall | detailed).any():
        return (
            fills,
            pd.DataFrame(columns=OPENING_LOT_COLUMNS),
            pd.DataFrame(columns=UNEXPLAINED_COLUMNS),
        )
    ordered = fills.iloc[order].reset_index(drop=True)
    lots_by_trade = {t: g for t, g in closed_lots.groupby("trade_id", sort=False)}
    first_day = pd.Series(ordered["datetime"]).groupby(key).transform("min").dt.normalize()
    first_day = first_day.dt.tz_localize(None).to_numpy()
    new_qty = qty.copy()
    openings, unexplained = [], []
    for k in pd.unique(key[shortfall | detailed]):
        extra = 0.0  # final-era shares added before this row by pre-history lots
        for r in np.flatnonzero((key == k) & closing):
            q, f = qty[r], factor[r]
            row = ordered.iloc[r]
            taken = _take_lots(lots_by_trade.get(row["trade_id"]), first_day[r], abs(q))
            covered = 0.0
            for n, (acquired, take, basis) in enumerate(taken, start=1):
                covered += take
                then = take * f / _factor(splits, row["symbol"], _local(acquired, row))
                openings.append(_opening_row(row, n, acquired, -np.sign(q) * then, basis))
            extra += -np.sign(q) * covered * f
            h = before[r] + extra
            held_r = (max(h, 0.0) if q < 0 else max(-h, 0.0)) / f  # in this trade's shares
            rest = abs(q) - held_r
            if rest > _EPS:
                new_qty[r] = q + np.sign(-q) * rest
                unexplained.append(
                    {
                        "trade_id": row["trade_id"],
                        "account": row["account"],
                        "symbol": row["symbol"],
                        "datetime": row["datetime"],
                        "quantity": np.sign(q) * rest,
                        "reason": f"closes {abs(q):g} but the history holds {held_r - covered:g}"
                        + (
                            f" and the closed-lot detail explains {covered:g}"
                            if covered
                            else " and the statement gives no closed-lot detail for the rest"
                        )
                        + "; import the statement with the purchase, or its closed lots",
                    }
                )
                extra += -np.sign(q) * rest * f
    opening = pd.DataFrame(openings)
    trades = ordered.assign(quantity=new_qty)
    trades = trades[(np.abs(new_qty) > _EPS) | (is_split if is_split is not None else False)]
    if len(opening):
        lots = opening[OPENING_LOT_COLUMNS]
        rows = opening.drop(columns=["closing_trade_id", "date_acquired", "cost_basis"])
        trades = pd.concat([rows.astype(trades.dtypes.to_dict()), trades], ignore_index=True)
    else:
        lots = pd.DataFrame(columns=OPENING_LOT_COLUMNS)
    restore = np.argsort(trades["datetime"].to_numpy(dtype="datetime64[ns]"), kind="stable")
    trades = trades.iloc[restore].reset_index(drop=True)
    return (
        trades,
        lots.reset_index(drop=True),
        pd.DataFrame(unexplained, columns=UNEXPLAINED_COLUMNS),
    )


def _splits(ordered: pd.DataFrame, is_split: np.ndarray | None) -> dict[str, list[tuple]]:
    """Split rows per symbol: (time, new shares per old share)."""
    out: dict[str, list[tuple]] = {}
    if is_split is None:
        return out
    for _, row in ordered[is_split].iterrows():
        out.setdefault(row["symbol"], []).append((row["datetime"], float(row["ratio"])))
    return out


def _factor(splits: dict[str, list[tuple]], symbol: str, when: pd.Timestamp) -> float:
    """Shares of the latest split era per share held at `when` (a split at the same time as a
    trade comes first, as in `lots`)."""
    return float(np.prod([r for t, r in splits.get(symbol, ()) if t > when] or [1.0]))


def _local(acquired, row: pd.Series) -> pd.Timestamp:
    return pd.Timestamp(acquired).tz_localize(row["datetime"].tz)


def _take_lots(lots: pd.DataFrame | None, first_day, missing: float) -> list[tuple]:
    """(date acquired, quantity, basis) of closed lots covering up to `missing` units: the
    lots acquired before the history's first day, in the order IBKR lists them (later lots
    are the history's own)."""
    if lots is None or lots.empty:
        return []
    out = []
    for _, lot in lots[lots["date_acquired"].to_numpy() < first_day].iterrows():
        size = abs(float(lot["quantity"]))
        if missing <= _EPS or not size > 0 or pd.isna(lot["date_acquired"]):
            continue
        take = min(size, missing)
        out.append((lot["date_acquired"], take, abs(float(lot["cost_basis"])) * take / size))
        missing -= take
    return out


def _opening_row(row: pd.Series, n: int, acquired, quantity: float, basis: float) -> dict:
    """An opening trade for a pre-history lot: its basis as price (commission included)."""
    multiplier = float(row.get("multiplier", 1.0))
    when = _local(acquired, row)
    return {
        **row.to_dict(),
        "trade_id": f"{row['trade_id']}:lot{n}",
        "closing_trade_id": row["trade_id"],
        "datetime": when,
        "date_acquired": pd.Timestamp(acquired),
        "quantity": quantity,
        "price": basis / abs(quantity) / multiplier,
        "commission": 0.0,
        "cost_basis": basis,
        "open_close": "O",
    }


def with_prior_positions(result: ImportResult, fills: pd.DataFrame) -> ImportResult:
    """`result` with `trades`, `opening_lots` and `unexplained` worked out from `fills`."""
    trades, opening, unexplained = resolve_prior_positions(fills, result.ibkr_closed_lots)
    return replace(
        result, trades=trades, fills=fills, opening_lots=opening, unexplained=unexplained
    )


def merge_imports(results: list[ImportResult]) -> ImportResult:
    """One history from several statements (overlapping periods, years, accounts).

    Fills, IBKR's figures and closed lots are concatenated and deduplicated by trade id
    (IBKR's trade / exec id, so a trade in two overlapping statements counts once); rejects
    and corrections are kept from every file; pre-history lots are worked out again over the
    merged history. A statement that cancels or corrects a trade has the last word on that
    trade id: the other statements' rows under it (the trade as first booked) are dropped.
    """
    if not results:
        raise ValueError("merge_imports needs at least one ImportResult.")
    corrected = [set(r.corrections["trade_id"]) for r in results]

    def settled(i: int, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` of statement i without the trade ids only other statements corrected."""
        others = set().union(*(c for j, c in enumerate(corrected) if j != i)) - corrected[i]
        return frame[~frame["trade_id"].isin(others)] if others else frame

    fills = pd.concat(
        [settled(i, r.trades if r.fills is None else r.fills) for i, r in enumerate(results)],
        ignore_index=True,
    )
    fills = fills.drop_duplicates("trade_id", keep="first")
    fills = fills.iloc[
        np.argsort(fills["datetime"].to_numpy(dtype="datetime64[ns]"), kind="stable")
    ]
    realized = pd.concat(
        [settled(i, r.ibkr_realized) for i, r in enumerate(results)], ignore_index=True
    )
    lots = pd.concat(
        [settled(i, r.ibkr_closed_lots) for i, r in enumerate(results)], ignore_index=True
    )
    base: dict[str, str] = {}
    for r in results:
        base.update(r.base_currency)
    merged = ImportResult(
        trades=fills,
        rejects=pd.concat([r.rejects for r in results], ignore_index=True),
        source="+".join(r.source for r in results),
        ibkr_realized=realized.drop_duplicates("trade_id", keep="first").reset_index(drop=True),
        ibkr_closed_lots=lots.drop_duplicates(
            ["trade_id", "date_acquired", "quantity", "cost_basis"]
        ).reset_index(drop=True),
        corrections=pd.concat([r.corrections for r in results], ignore_index=True),
        base_currency=base,
    )
    return with_prior_positions(merged, fills.reset_index(drop=True))
