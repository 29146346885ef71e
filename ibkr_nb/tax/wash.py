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

from array import array
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ibkr_nb.tax.lots import Lots, Pieces

WINDOW_DAYS = 30
BATCH_PIECES = 100_000  # pieces swept at a time (a batch holds whole symbols)
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


def wash_sale_segments(lots: Lots, pieces: Pieces) -> Segments:
    """Apply the wash-sale rule to matched pieces (see the module docstring).

    Symbols are independent, so they are swept in batches of about BATCH_PIECES pieces:
    the sweep's Python lists then stay small (memory) and warm in cache (speed).
    """
    key_of_piece = lots.wash_key[pieces.lot]
    lot_by_key = np.argsort(lots.wash_key, kind="stable")
    piece_by_key = np.argsort(key_of_piece, kind="stable")
    lot_keys = lots.wash_key[lot_by_key]
    piece_keys = key_of_piece[piece_by_key]
    n_keys = int(lots.wash_key.max(initial=-1)) + 1
    per_key = np.cumsum(np.bincount(piece_keys, minlength=n_keys))
    cuts = np.searchsorted(per_key, np.arange(BATCH_PIECES, len(piece_keys), BATCH_PIECES))
    edges = np.r_[0, np.unique(cuts), n_keys]
    local = np.empty(len(lots.qty), dtype=np.int64)
    parts = []
    for k0, k1 in zip(edges[:-1], edges[1:], strict=True):
        lot_sel = lot_by_key[np.searchsorted(lot_keys, k0) : np.searchsorted(lot_keys, k1)]
        piece_sel = piece_by_key[np.searchsorted(piece_keys, k0) : np.searchsorted(piece_keys, k1)]
        local[lot_sel] = np.arange(len(lot_sel))
        batch_pieces = replace(_take(pieces, piece_sel), lot=local[pieces.lot[piece_sel]])
        seg = _sweep(_take(lots, lot_sel), batch_pieces)
        parts.append(replace(seg, piece=piece_sel[seg.piece], open_lot=lot_sel[seg.open_lot]))
    return Segments(
        *(np.concatenate([getattr(part, f.name) for part in parts]) for f in fields(Segments))
    )


def _sweep(lots: Lots, pieces: Pieces) -> Segments:
    """The wash-sale rule for some symbols: one sweep over their closing trades in time
    order, on plain Python lists (the rule is sequential: a disallowed loss changes the basis
    of a later sale). Pieces with no loss and no carried adjustment, the common case, are
    left to `_assemble`; so are lots still held that never absorbed a loss.
    """
    n_lots = len(lots.qty)
    order = np.lexsort((np.arange(len(pieces.lot)), pieces.event, lots.wash_key[pieces.lot]))
    cand, window_lo, window_hi = _windows(lots, pieces)
    cand_lot = cand.tolist()
    lot_qty = lots.qty.tolist()
    lot_day = lots.day.tolist()
    bounds = _run_bounds(pieces.close[order])
    offset = pieces.offsets()
    gain_unit = lots.direction[pieces.lot] * (pieces.close_unit - pieces.open_unit)
    piece_of = order.tolist()
    lot_of = pieces.lot[order].tolist()
    qty_of = pieces.qty[order].tolist()
    start_of = offset[order].tolist()
    end_of = (offset + pieces.qty)[order].tolist()
    gain_of = gain_unit[order].tolist()
    day_of = pieces.day[order].tolist()
    lo_of = window_lo[order].tolist()
    hi_of = window_hi[order].tolist()

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
    spans: list[list[tuple[int, int, float, int]] | None] = [None] * n_lots  # (a0, a1, adj, hps)
    cursor = [0] * n_lots  # first span of each lot not yet sold
    sold = array("d")  # segment records, see _columns
    record = sold.extend

    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        for k in range(a, b):  # shares sold by this trade are no replacement for each other
            lot = lot_of[k]
            disposed[lot] = end_of[k]
            if end_of[k] == lot_qty[lot]:
                nxt[slot_of[lot]] = slot_of[lot] + 1
        for k in range(a, b):
            lot = lot_of[k]
            gain_unit = gain_of[k]
            if spans[lot] is not None:
                segments = _split(spans[lot], cursor, lot, start_of[k], end_of[k], lot_day[lot])
            elif gain_unit >= 0:  # no adjustment carried in and no loss: left to _assemble
                continue
            else:
                segments = [(qty_of[k], 0.0, lot_day[lot])]
            piece, lo, hi, day = piece_of[k], lo_of[k], hi_of[k], day_of[k]
            for sq, adj_share, hps in segments:
                adj_in = adj_share * sq
                gain = sq * gain_unit - adj_in
                disallowed = 0.0
                if gain < -_LOSS_EPS:
                    need = sq
                    loss_share = -gain / sq
                    tacked = day - hps  # the sold shares' holding period, days
                    c = lo if nxt[lo] == lo else find(lo)
                    while c < hi:
                        r = cand_lot[c]
                        if r != lot:
                            start = absorbed_end[r]
                            if disposed[r] > start:
                                start = disposed[r]
                            end = lot_qty[r]
                            if end - start > need:
                                end = start + need
                            else:
                                nxt[c] = c + 1  # lot r absorbs up to its last share
                            span = (start, end, loss_share, lot_day[r] - tacked)
                            if spans[r] is None:
                                spans[r] = [span]
                            else:
                                spans[r].append(span)
                            absorbed_end[r] = end
                            need -= end - start
                            if need == 0:
                                break
                        c += 1
                        if nxt[c] != c:
                            c = find(c)
                    disallowed = -gain if need == 0 else loss_share * (sq - need)
                record((piece, sq, adj_in, hps, disallowed))

    held = array("d")
    for lot in np.flatnonzero(lots.qty > np.array(disposed, dtype=np.int64)).tolist():
        if spans[lot] is not None:
            for sq, adj_share, hps in _split(
                spans[lot], cursor, lot, disposed[lot], lot_qty[lot], lot_day[lot]
            ):
                held.extend((lot, sq, adj_share * sq, hps, 0.0))
    return _assemble(lots, pieces, sold, held, np.array(disposed, dtype=np.int64))


def _take(arrays: Lots | Pieces, sel: np.ndarray) -> Lots | Pieces:
    """A dataclass of parallel arrays (`Lots`, `Pieces`) restricted to the rows `sel`."""
    return type(arrays)(**{f.name: getattr(arrays, f.name)[sel] for f in fields(arrays)})


def plain_segments(lots: Lots, pieces: Pieces) -> Segments:
    """Segments without wash sales: one per piece, the unsold rest of each lot open."""
    disposed = np.zeros(len(lots.qty), dtype=np.int64)
    np.add.at(disposed, pieces.lot, pieces.qty)
    return _assemble(lots, pieces, array("d"), array("d"), disposed)


def _columns(flat: array) -> tuple[np.ndarray, ...]:
    """(piece or lot, qty, adj_in, hps, disallowed) from a flat array of segment records.

    Records are float64 (8 bytes a value, no Python objects); integers stay exact below 2**53.
    """
    index, qty, adj, hps, disallowed = np.frombuffer(flat, dtype=float).reshape(-1, 5).T
    return index.astype(np.int64), qty.astype(np.int64), adj, hps.astype(np.int64), disallowed


def _assemble(
    lots: Lots, pieces: Pieces, sold: array, held: array, disposed: np.ndarray
) -> Segments:
    """`Segments` from the recorded ones (see `_columns`) plus every piece and held lot not
    among them, which keep the lot's own basis and acquisition date (one segment each)."""
    s_piece, s_qty, s_adj, s_hps, s_disallowed = _columns(sold)
    h_lot, h_qty, h_adj, h_hps, _ = _columns(held)
    plain = np.ones(len(pieces.qty), dtype=bool)
    plain[s_piece] = False
    piece = np.flatnonzero(plain)
    left = lots.qty - disposed
    untouched = left > 0
    untouched[h_lot] = False
    lot = np.flatnonzero(untouched)
    return Segments(
        piece=np.concatenate([piece, s_piece]),
        qty=np.concatenate([pieces.qty[piece], s_qty]),
        adj_in=np.concatenate([np.zeros(len(piece)), s_adj]),
        hps=np.concatenate([lots.day[pieces.lot[piece]], s_hps]),
        disallowed=np.concatenate([np.zeros(len(piece)), s_disallowed]),
        open_lot=np.concatenate([lot, h_lot]),
        open_qty=np.concatenate([left[lot], h_qty]),
        open_adj=np.concatenate([np.zeros(len(lot)), h_adj]),
        open_hps=np.concatenate([lots.day[lot], h_hps]),
    )


def _windows(lots: Lots, pieces: Pieces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replacement candidates: lots ordered by (symbol, side, acquisition), and for each piece
    the [lo, hi) positions in that order of the lots of its own symbol and side acquired
    within WINDOW_DAYS calendar days of its sale (found with one searchsorted each)."""
    group = lots.wash_key * 2 + (lots.direction > 0)
    cand = np.lexsort((lots.order, group))
    first = min(lots.day.min(initial=0), pieces.day.min(initial=0)) - WINDOW_DAYS
    span = max(lots.day.max(initial=0), pieces.day.max(initial=0)) - first + WINDOW_DAYS + 1
    cand_key = group[cand] * span + (lots.day[cand] - first)  # sorted: days rise within a group
    piece_key = group[pieces.lot] * span + (pieces.day - first)
    lo = np.searchsorted(cand_key, piece_key - WINDOW_DAYS, side="left")
    hi = np.searchsorted(cand_key, piece_key + WINDOW_DAYS, side="right")
    return cand, lo, hi


def _run_bounds(values: np.ndarray) -> np.ndarray:
    """Start of each run of equal consecutive values, then len(values)."""
    change = np.ones(len(values) + 1, dtype=bool)
    change[1:-1] = values[1:] != values[:-1]
    return np.flatnonzero(change)


def _split(
    spans: list[tuple[int, int, float, int]],
    cursor: list[int],
    lot: int,
    d0: int,
    d1: int,
    acquired: int,
) -> list[tuple[int, float, int]]:
    """Shares [d0, d1) of a lot with absorbed `spans` (a0, a1, adjustment per share,
    holding period start) as (qty, adjustment per share, holding period start) runs.
    `cursor[lot]` remembers the first span not yet passed (shares are sold front to back)."""
    k = cursor[lot]
    n = len(spans)
    while k < n and spans[k][1] <= d0:
        k += 1
    out = []
    cur = d0
    while cur < d1:
        if k < n:
            a0, a1, adj, hps = spans[k]
            if a0 <= cur:  # inside span k
                if a1 > d1:
                    out.append((d1 - cur, adj, hps))
                    break
                out.append((a1 - cur, adj, hps))
                cur = a1
                k += 1
                continue
            end = a0 if a0 < d1 else d1
        else:
            end = d1
        out.append((end - cur, 0.0, acquired))  # shares that absorbed no loss
        cur = end
    cursor[lot] = k
    return out
