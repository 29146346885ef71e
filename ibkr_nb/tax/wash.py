"""Wash sales (IRS Publication 550, "Wash Sales"; Internal Revenue Code section 1091).

A loss on a sale is disallowed to the extent that substantially identical shares are acquired
within 30 days before or after the sale (Pub. 550: "A wash sale occurs when you sell or trade
stock or securities at a loss and within 30 days before or after the sale you buy substantially
identical stock or securities"). The disallowed loss is added to the basis of the replacement
shares and their holding period includes that of the shares sold ("Your holding period for the
new stock or securities includes the holding period of the stock or securities sold"). When
more or fewer shares are bought than sold, replacement shares are matched to the shares sold
"in the same order that you bought them, beginning with the first shares bought" (Pub. 550,
"More or less stock bought than sold"); earlier losses are matched first.

How the rule is applied here, per symbol across all accounts given:
- Sales are processed in time order; each lot piece sold at a loss (after any adjustment it
  already carries) looks for replacement shares of the same symbol and position side: shares of
  other lots acquired within 30 calendar days before or after the sale date and still held
  after the sale. Shares of the lot being sold are never its own replacement.
- Each replacement share absorbs at most one sold share's loss. The disallowed amount is
  loss x (replacement shares found / shares sold), added to the replacement shares' basis;
  their holding period starts earlier by the sold shares' holding period (days from the day
  after the start to the sale). Chains carry through: a replacement share later sold at a
  loss carries its added basis into the next wash sale, across year ends.
- Short sales: a loss on covering a short lot is washed by new short sales within the
  window (Pub. 550, "Short sales" under Wash Sales); the disallowed amount is added to the
  cost of covering the replacement short lot.
Shares within a lot are consumed front to back, so a lot that absorbed a loss on only some
of its shares is reported in segments with their own basis and holding period.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ibkr_nb.tax.lots import Lots, Pieces

WINDOW_DAYS = 30
_LOSS_EPS = 1e-9  # USD: smaller "losses" are float noise, not wash-sale triggers


@dataclass(frozen=True)
class Segments:
    """Sold segments (one per piece, or several where shares carry different adjustments)
    and the open remainder of each lot, with wash-sale adjustments in USD.

    piece, qty (micro-shares), adj_in (basis added by earlier wash sales), hps (holding period
    start, days since epoch), disallowed (loss disallowed on this segment, >= 0);
    open_lot, open_qty, open_adj, open_hps likewise for shares still held.
    """

    piece: np.ndarray
    qty: np.ndarray
    adj_in: np.ndarray
    hps: np.ndarray
    disallowed: np.ndarray
    open_lot: np.ndarray
    open_qty: np.ndarray
    open_adj: np.ndarray
    open_hps: np.ndarray


def plain_segments(lots: Lots, pieces: Pieces) -> Segments:
    """Segments without wash sales: one per piece, the unsold rest of each lot open."""
    disposed = np.zeros(len(lots.qty), dtype=np.int64)
    np.add.at(disposed, pieces.lot, pieces.qty)
    left = lots.qty - disposed
    open_lot = np.flatnonzero(left > 0)
    zeros = np.zeros(len(pieces.qty))
    return Segments(
        piece=np.arange(len(pieces.qty)),
        qty=pieces.qty,
        adj_in=zeros,
        hps=lots.day[pieces.lot],
        disallowed=zeros,
        open_lot=open_lot,
        open_qty=left[open_lot],
        open_adj=np.zeros(len(open_lot)),
        open_hps=lots.day[open_lot],
    )


def wash_sale_segments(lots: Lots, pieces: Pieces) -> Segments:
    """Apply the wash-sale rule to matched pieces (see the module docstring)."""
    n_lots = len(lots.qty)
    lot_key = lots.wash_key
    # Candidate replacement lots per (symbol, side), in acquisition order.
    cand = np.lexsort((lots.order, lots.direction, lot_key))
    cand_group = lot_key[cand] * 2 + (lots.direction[cand] > 0)
    bounds = (
        np.flatnonzero(np.r_[True, cand_group[1:] != cand_group[:-1], True])
        if n_lots
        else np.array([0])
    )
    group_start = np.empty(n_lots, dtype=np.int64)
    group_end = np.empty(n_lots, dtype=np.int64)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        group_start[cand[a:b]] = a
        group_end[cand[a:b]] = b
    cand_days = lots.day[cand].tolist()
    cand_lot = cand.tolist()

    p_lot = pieces.lot
    order = np.lexsort((np.arange(len(p_lot)), pieces.event, lot_key[p_lot])).tolist()
    gain_unit = (lots.direction[p_lot] * (pieces.close_unit - pieces.open_unit)).tolist()
    offset = pieces.offsets().tolist()
    qty = pieces.qty.tolist()
    close = pieces.close.tolist()
    sale_day = pieces.day.tolist()
    lot_of = p_lot.tolist()
    lot_qty = lots.qty.tolist()
    lot_day = lots.day.tolist()
    g_start = group_start.tolist()
    g_end = group_end.tolist()

    # Lots that can no longer absorb (all shares absorbed or sold) are skipped for good:
    # nxt[k] leads to the next candidate position that may still absorb (path halving).
    slot = np.empty(n_lots, dtype=np.int64)
    slot[cand] = np.arange(n_lots)
    slot_of = slot.tolist()
    nxt = list(range(n_lots + 1))

    def find(k: int) -> int:
        while nxt[k] != k:
            nxt[k] = nxt[nxt[k]]
            k = nxt[k]
        return k

    disposed = [0] * n_lots  # shares of each lot sold so far
    absorbed_end = [0] * n_lots  # end of the shares that already absorbed a loss
    ranges: dict[int, list[tuple[int, int, float, int]]] = {}  # lot -> (a0, a1, adj/share, hps)
    cursor: dict[int, int] = {}

    out: list[tuple[int, int, float, int, float]] = []  # piece, qty, adj_in, hps, disallowed
    emit = out.append

    n = len(order)
    i = 0
    while i < n:
        j = i
        c = close[order[i]]
        while j < n and close[order[j]] == c:
            p = order[j]
            lot = lot_of[p]
            disposed[lot] = offset[p] + qty[p]
            if disposed[lot] == lot_qty[lot]:
                nxt[slot_of[lot]] = slot_of[lot] + 1
            j += 1
        for k in range(i, j):
            p = order[k]
            lot = lot_of[p]
            if lot in ranges:
                segments = _split(lot, offset[p], offset[p] + qty[p], ranges, cursor, lot_day[lot])
            elif gain_unit[p] >= 0:  # no adjustment carried in and no loss: nothing to do
                emit((p, qty[p], 0.0, lot_day[lot], 0.0))
                continue
            else:
                segments = [(qty[p], 0.0, lot_day[lot])]
            for sq, adj_share, hps in segments:
                adj_in = adj_share * sq
                gain = sq * gain_unit[p] - adj_in
                disallowed = 0.0
                if gain < -_LOSS_EPS:
                    day = sale_day[p]
                    lo = bisect_left(cand_days, day - WINDOW_DAYS, g_start[lot], g_end[lot])
                    hi = bisect_right(cand_days, day + WINDOW_DAYS, lo, g_end[lot])
                    need = sq
                    loss_share = -gain / sq
                    k = find(lo)
                    while k < hi:
                        r = cand_lot[k]
                        if r != lot:
                            start = max(absorbed_end[r], disposed[r])
                            take = min(lot_qty[r] - start, need)
                            tacked = lot_day[r] - (day - hps)
                            ranges.setdefault(r, []).append(
                                (start, start + take, loss_share, tacked)
                            )
                            absorbed_end[r] = start + take
                            if start + take == lot_qty[r]:
                                nxt[k] = k + 1
                            need -= take
                            if need == 0:
                                break
                        k = find(k + 1)
                    disallowed = -gain if need == 0 else loss_share * (sq - need)
                emit((p, sq, adj_in, hps, disallowed))
        i = j

    open_lot: list[int] = []
    open_qty: list[int] = []
    open_adj: list[float] = []
    open_hps: list[int] = []
    for lot in range(n_lots):
        if disposed[lot] < lot_qty[lot]:
            for sq, adj_share, hps in _split(
                lot, disposed[lot], lot_qty[lot], ranges, cursor, lot_day[lot]
            ):
                open_lot.append(lot)
                open_qty.append(sq)
                open_adj.append(adj_share * sq)
                open_hps.append(hps)
    piece, sold, adj_in, hps, disallowed = (
        (list(c) for c in zip(*out, strict=True)) if out else ([],) * 5
    )
    return Segments(
        piece=np.array(piece, dtype=np.int64),
        qty=np.array(sold, dtype=np.int64),
        adj_in=np.array(adj_in, dtype=float),
        hps=np.array(hps, dtype=np.int64),
        disallowed=np.array(disallowed, dtype=float),
        open_lot=np.array(open_lot, dtype=np.int64),
        open_qty=np.array(open_qty, dtype=np.int64),
        open_adj=np.array(open_adj, dtype=float),
        open_hps=np.array(open_hps, dtype=np.int64),
    )


def _split(
    lot: int,
    d0: int,
    d1: int,
    ranges: dict[int, list[tuple[int, int, float, int]]],
    cursor: dict[int, int],
    acquired: int,
) -> list[tuple[int, float, int]]:
    """Shares [d0, d1) of a lot as (qty, adjustment per share, holding period start) runs."""
    spans = ranges.get(lot)
    if spans is None:
        return [(d1 - d0, 0.0, acquired)]
    k = cursor.get(lot, 0)
    out = []
    cur = d0
    while cur < d1:
        while k < len(spans) and spans[k][1] <= cur:
            k += 1
        if k < len(spans) and spans[k][0] <= cur:
            end = min(spans[k][1], d1)
            out.append((end - cur, spans[k][2], spans[k][3]))
        else:
            end = d1 if k == len(spans) else min(spans[k][0], d1)
            out.append((end - cur, 0.0, acquired))
        cur = end
    cursor[lot] = k
    return out
