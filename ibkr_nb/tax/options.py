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

IBKR marks the option's closing row and the stock row with code Ex (exercise) or A
(assignment); importers put that in the `action` column ("exercise" / "assignment"). The
option row is paired with a stock row of its underlying (the symbol's first word) in the
same account on the same date with quantity contracts x multiplier.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EXERCISE_ACTIONS = ("exercise", "assignment")


def exercise_pairs(trades: pd.DataFrame) -> pd.DataFrame:
    """Pairs (option_row, stock_row) of positional row numbers in `trades`."""
    empty = pd.DataFrame({"option_row": [], "stock_row": []}, dtype=np.int64)
    if "action" not in trades or not trades["action"].isin(EXERCISE_ACTIONS).any():
        return empty
    action = trades["action"].isin(EXERCISE_ACTIONS).to_numpy()
    category = trades.get("asset_category", pd.Series("STK", index=trades.index)).to_numpy()
    multiplier = trades.get("multiplier", pd.Series(1.0, index=trades.index)).to_numpy(float)
    day = trades["datetime"].dt.date.to_numpy()
    account = trades.get("account", pd.Series("", index=trades.index)).to_numpy()
    symbol = trades["symbol"].to_numpy()
    quantity = trades["quantity"].to_numpy(float)
    stock_rows = [i for i in np.flatnonzero(action) if category[i] == "STK"]
    used: set[int] = set()
    pairs = []
    for i in np.flatnonzero(action):
        if category[i] not in ("OPT", "WAR"):
            continue
        underlying = str(symbol[i]).split()[0]
        shares = abs(quantity[i]) * multiplier[i]
        for j in stock_rows:
            if (
                j not in used
                and symbol[j] == underlying
                and account[j] == account[i]
                and day[j] == day[i]
                and abs(abs(quantity[j]) - shares) < 1e-9
            ):
                used.add(j)
                pairs.append((i, j))
                break
    return pd.DataFrame(pairs, columns=["option_row", "stock_row"]).astype(np.int64)


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
