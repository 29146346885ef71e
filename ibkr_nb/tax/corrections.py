"""Trades IBKR cancelled or corrected after the fact, taken out of a statement's rows.

IBKR never edits a booked trade: it books a cancellation that reverses it, and a corrected
trade is a cancellation followed by the trade as it should have been.
- A cancellation (Flex `buySell` "BUY (Ca.)" / "SELL (Ca.)", code `Ca` in `notes` or the
  Activity CSV `Code`, Flex `transactionType` TradeCancel / FracShareCancel) reverses one
  trade: the one named by `origTradeID` (Flex; of the rows carrying that trade id, the
  earliest not yet cancelled, because IBKR books the replacement under the same id), else
  the earliest trade of the same account and symbol with the opposite quantity at the
  original price (`origTradePrice`, else the cancellation's own), same-day ones first.
  Neither the cancellation nor the trade it cancels is booked.
- The replacement is the next trade, after the cancelled one, under the same trade id
  (Flex) or coded `Co` (corrected trade) in the same account and symbol: it is booked once,
  like any trade, and named in the correction record.
- A corrected trade (code `Co` or `transactionType` TradeCorrect) that names the trade it
  corrects (`origTradeID`) replaces that trade even without a cancellation row.
Each trade taken out is listed with the reason (the import summary shows them); a
cancellation whose trade is not in the statement is refused with a reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ibkr_nb.tax.trades import CORRECTION_COLUMNS

# Columns a staging frame carries for `apply_corrections` (dropped from what it returns).
CORRECTION_INPUTS = ["cancel", "correction", "orig_id", "orig_price"]
RECORD_COLUMNS = [c for c in CORRECTION_COLUMNS if c != "source"]


def apply_corrections(
    rows: pd.DataFrame,
) -> tuple[pd.DataFrame, list[dict], list[tuple[dict, str]]]:
    """`rows` (staging rows with `line`, `trade_id`, `account`, `symbol`, `datetime`,
    `quantity`, `price` and the CORRECTION_INPUTS) without cancellations and the trades
    they cancel or corrections replace; the correction records (RECORD_COLUMNS); and the
    refused cancellations as (row, reason)."""
    cancel = rows["cancel"].to_numpy(dtype=bool)
    correction = rows["correction"].to_numpy(dtype=bool)
    names = correction & ~cancel & (rows["orig_id"] != "").to_numpy()
    if not (cancel.any() or names.any()):
        return rows.drop(columns=CORRECTION_INPUTS), [], []
    events = cancel | names
    # only the symbols with a cancellation or correction need looking at
    pool = np.flatnonzero(~cancel & rows["symbol"].isin(set(rows["symbol"][events])).to_numpy())
    pool = pool[np.argsort(rows["line"].to_numpy()[pool], kind="stable")]
    p = rows.iloc[pool]
    trade_id, account, symbol = (
        p[c].astype(str).to_numpy() for c in ("trade_id", "account", "symbol")
    )
    quantity = pd.to_numeric(p["quantity"], errors="coerce").to_numpy(dtype=float)
    price = pd.to_numeric(p["price"], errors="coerce").to_numpy(dtype=float)
    day = p["datetime"].astype(str).str[:10].to_numpy()
    line = p["line"].to_numpy()
    fixed = p["correction"].to_numpy(dtype=bool)
    live = np.ones(len(pool), dtype=bool)  # not cancelled or replaced
    claimed = np.zeros(len(pool), dtype=bool)  # already some trade's replacement
    gone: list[int] = [int(i) for i in np.flatnonzero(cancel)]
    records: list[dict] = []
    refused: list[tuple[dict, str]] = []

    def record(k: int, replaced_by: int | None, why: str) -> None:
        live[k] = False
        gone.append(int(pool[k]))
        if replaced_by is not None:
            claimed[replaced_by] = True
            r = replaced_by
            why += (
                f" and rebooked as trade {trade_id[r]} (line {line[r]}: "
                f"{quantity[r]:g} at {price[r]:g}), which is booked"
            )
        records.append(
            {
                "line": int(line[k]),
                "trade_id": trade_id[k],
                "account": account[k],
                "symbol": symbol[k],
                "datetime": p["datetime"].iloc[k],
                "quantity": quantity[k],
                "price": price[k],
                "replaced_by": "" if replaced_by is None else trade_id[replaced_by],
                "reason": why,
            }
        )

    def replacement(k: int) -> int | None:
        after = (
            live
            & ~claimed
            & (line > line[k])
            & (account == account[k])
            & (symbol == symbol[k])
            & ((trade_id == trade_id[k]) | fixed)
        )
        found = np.flatnonzero(after)
        return int(found[0]) if len(found) else None

    event_rows = np.flatnonzero(events)
    for e in event_rows[np.argsort(rows["line"].to_numpy()[event_rows], kind="stable")]:
        c = rows.iloc[e]
        orig = str(c["orig_id"])
        here = pool == e
        if cancel[e]:
            if orig:
                match = live & (trade_id == orig)
            else:
                size = abs(float(pd.to_numeric(c["quantity"], errors="coerce")))
                at = c["orig_price"] if pd.notna(c["orig_price"]) else c["price"]
                at = float(pd.to_numeric(at, errors="coerce"))
                match = (
                    live
                    & (account == str(c["account"]))
                    & (symbol == str(c["symbol"]))
                    & np.isclose(np.abs(quantity), size, rtol=0, atol=1e-9)
                    & np.isclose(price, at, rtol=1e-9, atol=1e-12)
                )
            found = np.flatnonzero(match & ~here)
            if not len(found):
                refused.append(
                    (
                        c.to_dict(),
                        "cancels a trade that is not in this statement; "
                        "import the statement with it",
                    )
                )
                continue
            opposite = np.sign(quantity[found]) != np.sign(
                float(pd.to_numeric(c["quantity"], errors="coerce"))
            )
            same_day = day[found] == str(c["datetime"])[:10]
            k = int(found[np.lexsort((line[found], ~same_day, ~opposite))[0]])
            record(k, replacement(k), f"cancelled by IBKR (code Ca, line {c['line']})")
        else:  # a corrected trade naming the trade it corrects
            found = np.flatnonzero(live & (trade_id == orig) & ~here & (line < c["line"]))
            if len(found):
                k = int(found[0])
                record(
                    k,
                    int(np.flatnonzero(here)[0]),
                    f"corrected by IBKR (code Co, line {c['line']})",
                )
    keep = np.ones(len(rows), dtype=bool)
    keep[gone] = False
    kept = rows[keep].drop(columns=CORRECTION_INPUTS).reset_index(drop=True)
    return kept, records, refused
