"""Option exercise and assignment as data (IRS Publication 550, "Options"): the premium of
an exercised or assigned option is not a gain or loss of its own but moves into the stock
trade it produced:
- a call you bought and exercise: the premium paid adds to the basis of the stock bought;
- a put you bought and exercise: the premium paid reduces the amount realized on the stock sold;
- a call you wrote and are assigned: the premium received adds to the amount realized;
- a put you wrote and are assigned: the premium received reduces the basis of the stock bought.
All four are one rule: with G the option's realized result at the exercise (- premium paid,
+ premium received), the stock trade's cash changes by G, i.e. its price by -G / quantity.
An option that expires (IBKR code Ep) is simply closed at price 0: the buyer loses the
premium, the writer gains it, on the expiry date.
A warrant (asset category WAR) is a call for these rules: its own Form 8949 lines when
sold, a loss of its cost when it lapses, its cost added to the stock's basis when exercised.

IBKR marks the option's closing row and the stock row with code Ex (exercise) or A
(assignment); importers put that in the `action` column ("exercise" / "assignment"). The
option row is paired with a stock row of its underlying (the symbol's first word) in the
same account on the same date with quantity contracts x multiplier. A warrant's symbol
often does not name its stock ("DBKW", "XYZ.WS"): a warrant left unpaired takes a stock row
marked the same way in the same account on the same date with that quantity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EXERCISE_ACTIONS = ("exercise", "assignment")


def exercise_pairs(trades: pd.DataFrame) -> pd.DataFrame:
    """Pairs (option_row, stock_row) of positional row numbers in `trades`.

    Rows marked exercise or assignment are paired by account, date, underlying (the
    option's first word is the stock's symbol) and share count (contracts x multiplier):
    within each such group the k-th option row, in row order, takes the k-th stock row.
    Warrants left unpaired are then paired the same way by account, date, share count and
    action, whatever the stock's symbol.
    """
    empty = pd.DataFrame({"option_row": [], "stock_row": []}, dtype=np.int64)
    if "action" not in trades or not trades["action"].isin(EXERCISE_ACTIONS).any():
        return empty
    rows = np.flatnonzero(trades["action"].isin(EXERCISE_ACTIONS).to_numpy())
    marked = trades.iloc[rows]
    category = marked.get("asset_category", pd.Series("STK", index=marked.index))
    multiplier = marked.get("multiplier", pd.Series(1.0, index=marked.index)).astype(float)
    is_option = category.isin(["OPT", "WAR"]).to_numpy()
    is_stock = (category == "STK").to_numpy()
    symbol = marked["symbol"].astype(str)
    shares = (marked["quantity"].astype(float).abs() * multiplier.where(is_option, 1.0)).round(9)
    legs = pd.DataFrame(
        {
            "row": rows,
            "account": marked.get("account", pd.Series("", index=marked.index)).to_numpy(),
            "day": marked["datetime"].dt.tz_localize(None).dt.normalize().to_numpy(),
            "stock": np.where(is_option, symbol.str.split().str[0], symbol),
            "shares": shares.to_numpy(),
            "action": marked["action"].to_numpy(),
        }
    )

    def matched(options: np.ndarray, stocks: np.ndarray, key: list[str]) -> pd.DataFrame:
        """The k-th option row of each `key` group with the k-th stock row of that group."""
        a, b = legs[options], legs[stocks]
        a = a.assign(rank=a.groupby(key, sort=False).cumcount())
        b = b.assign(rank=b.groupby(key, sort=False).cumcount())
        return a.merge(b, on=[*key, "rank"], suffixes=("_option", "_stock"))

    pairs = matched(is_option, is_stock, ["account", "day", "stock", "shares"])
    paired = legs["row"].isin(pairs[["row_option", "row_stock"]].to_numpy().ravel()).to_numpy()
    warrants = (category == "WAR").to_numpy() & ~paired
    if warrants.any():
        more = matched(warrants, is_stock & ~paired, ["account", "day", "shares", "action"])
        pairs = pd.concat([pairs, more], ignore_index=True)
    if pairs.empty:
        return empty
    pairs = pairs.sort_values("row_option")
    return pd.DataFrame(
        {"option_row": pairs["row_option"], "stock_row": pairs["row_stock"]}, dtype=np.int64
    ).reset_index(drop=True)


def fold_premiums(
    trades: pd.DataFrame, pairs: pd.DataFrame, option_result: np.ndarray, consumed: pd.DataFrame
) -> pd.DataFrame:
    """`trades` with exercised options folded into their stock trades.

    `option_result` is G per pair (USD, see the module docstring) in trade currency units
    of the stock (the option and stock share a currency); `consumed` lists the option lots the
    exercise closed (lot_id = opening trade_id, quantity in contracts). The stock rows' prices
    move by -G / quantity; the option's closing rows go, and the opening rows lose the
    contracts the exercise consumed (with their share of the commission).
    """
    out = trades.reset_index(drop=True).copy()
    stock = pairs["stock_row"].to_numpy()
    price = out["price"].to_numpy(float).copy()
    price[stock] -= option_result / out["quantity"].to_numpy(float)[stock]
    out["price"] = price
    left = out["quantity"].to_numpy(float).copy()
    commission = out["commission"].to_numpy(float).copy() if "commission" in out else None
    row_of = {t: i for i, t in enumerate(out["trade_id"])}
    for lot_id, qty in consumed.groupby("lot_id")["quantity"].sum().items():
        i = row_of[lot_id]
        if commission is not None:
            commission[i] *= 1 - abs(qty) / abs(left[i])
        left[i] -= np.sign(left[i]) * abs(qty)
    out["quantity"] = left
    if commission is not None:
        out["commission"] = commission
    keep = np.abs(left) > 1e-12
    keep[pairs["option_row"].to_numpy()] = False
    return out[keep].reset_index(drop=True)
