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
- IRA (Rev. Rul. 2008-5): replacement shares bought in an IRA wash the loss like any
  others, but the disallowed loss is lost for good: it is not added to the IRA shares' basis
  and no holding period is tacked (`permanent` on the segments). Sales inside an IRA are not
  taxable and trigger nothing.
- Short sales: a loss on covering a short lot is washed by new short sales within the
  window (Pub. 550, "Short sales" under Wash Sales); the disallowed amount is added to the
  cost of covering the replacement short lot.
Shares within a lot are consumed front to back, so a lot that absorbed a loss on only some
of its shares is reported in segments with their own basis and holding period.

How the sweep runs (`wash_kernel.sweep`, one compiled loop): the rule is sequential within a
symbol (a disallowed loss changes the basis of a later sale) but symbols are independent, so
the loop walks the pieces in (symbol, time) order. Each piece goes through these steps:
- ADVANCE: at the first piece of a closing trade, all of the trade's shares are marked sold
  (shares sold by one trade are no replacement for each other). A piece with no loss and no
  adjustment carried in is passed over (it keeps the lot's basis and date); any other goes
  to EMIT.
- EMIT: cut the piece's next segment: shares that carry one adjustment (one absorbed span, or
  a run of shares that absorbed nothing). A segment without a loss is recorded (EMIT again
  until the piece is done); a segment with a loss goes to VISIT.
- VISIT: try one replacement candidate, the next lot in the sale's window that may still
  absorb: it absorbs min(its free shares, shares still without a replacement) as a new span.
  When every sold share has a replacement or the window is exhausted, the segment is recorded
  with its disallowed loss (back to EMIT until the piece is done).

Lots are renumbered in candidate order (symbol, side, acquisition), so a sale's replacement
candidates are the lot numbers [lo, hi); lots that can no longer absorb (all shares absorbed
or sold) are skipped for good. Absorbed spans live in flat arrays (`_Spans`), a linked list
per lot in share order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW_DAYS = 30
_LOSS_EPS = 1e-9  # USD: smaller "losses" are float noise, not wash-sale triggers


@dataclass
class Pieces:
    """Matched (closing row, lot, quantity) pieces, in time order within each (account, symbol).

    `open_unit` is the lot's USD value per micro-share at the match (cost for a long lot,
    net short-sale proceeds for a short lot); it differs from the lot's own only under
    average cost.
    """

    close: np.ndarray  # index into the book's closing rows
    lot: np.ndarray
    qty: np.ndarray  # micro-shares
    open_unit: np.ndarray
    offset: np.ndarray  # where the piece starts within its lot's shares (consumed in order)
    close_unit: np.ndarray  # USD per micro-share of the closing row
    day: np.ndarray  # trade date of the closing row, days since epoch
    event: np.ndarray  # global event order of the closing row


@dataclass
class Lots:
    """Opening rows: one lot each. Day numbers are days since 1970-01-01 (trade dates)."""

    row: np.ndarray  # index into the book's rows
    qty: np.ndarray  # micro-shares, > 0
    direction: np.ndarray  # +1 long, -1 short
    unit: np.ndarray  # USD per micro-share
    day: np.ndarray
    order: np.ndarray  # global event order
    wash_key: np.ndarray  # symbol code: lots that are substantially identical
    ira: np.ndarray | None = None  # True for lots held in an IRA (see the module docstring)

    def in_ira(self) -> np.ndarray:
        return np.zeros(len(self.qty), dtype=bool) if self.ira is None else self.ira


@dataclass(frozen=True)
class Segments:
    """Sold segments (one per piece, or several where shares carry different adjustments)
    in time order of their closing trades (a trade's pieces in order, a piece's segments in
    share order), and the open remainder of each lot, with wash-sale adjustments in USD.

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
    permanent: np.ndarray | None = None  # of `disallowed`, the part washed by IRA shares

    def permanently_disallowed(self) -> np.ndarray:
        return np.zeros(len(self.qty)) if self.permanent is None else self.permanent


# Segment records: (piece or lot, qty in micro-shares, adj_in in USD, hps in days since
# epoch, disallowed in USD), as parallel arrays.
Records = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def wash_sale_segments(lots: Lots, pieces: Pieces) -> Segments:
    """Apply the wash-sale rule to matched pieces (see the module docstring)."""
    sweep = _Sweep(lots, pieces)
    sweep.run()
    return sweep.segments()


def plain_segments(lots: Lots, pieces: Pieces) -> Segments:
    """Segments without wash sales: one per piece, the unsold rest of each lot open."""
    disposed = np.zeros(len(lots.qty), dtype=np.int64)
    np.add.at(disposed, pieces.lot, pieces.qty)
    piece = np.lexsort((np.arange(len(pieces.qty)), pieces.event))  # time order
    zeros = np.zeros(len(piece))
    sold = (piece, pieces.qty[piece], zeros, lots.day[pieces.lot[piece]], zeros)
    return _assemble(lots, sold, _no_records(), disposed, zeros)


class _Spans:
    """Shares of lots that absorbed a disallowed loss, one span per absorption, in flat arrays
    that grow by doubling: `lot` (candidate order), shares [a0, a1) of the lot (micro-shares),
    `adj` (USD added per micro-share), `hps` (holding period start, days since epoch), `next`
    (the lot's next span in share order, -1 for none).

    Index -1 (the arrays' last element) is a sentinel that starts and ends past every lot's
    shares, so "no span (left)" reads as "no adjusted shares before the end of the lot".
    """

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self.lot = np.empty(capacity + 1, dtype=np.int64)
        self.a0 = np.empty(capacity + 1, dtype=np.int64)
        self.a1 = np.empty(capacity + 1, dtype=np.int64)
        self.adj = np.empty(capacity + 1)
        self.hps = np.empty(capacity + 1, dtype=np.int64)
        self.next = np.empty(capacity + 1, dtype=np.int64)
        self.a0[-1] = self.a1[-1] = np.iinfo(np.int64).max
        self.next[-1] = -1


class _Sweep:
    """The sweep's inputs and state (see the module docstring), run by `wash_kernel.sweep`.

    Per piece, in sweep order (symbol, then time): `piece` (index into `pieces`), `lot`
    (candidate order), shares [start, end) of the lot it sells (micro-shares), `gain` (USD per
    micro-share before adjustments), `day` (sale date, days since epoch), candidate window
    [lo, hi), `trade_len` (number of the closing trade's pieces at its first piece, else 0).
    Per lot, in candidate order: `qty` (micro-shares), `acquired` (days since epoch), `disposed`
    (shares sold so far), `absorbed_end` (end of the shares that already absorbed a loss),
    `tail` (last span, -1 for none), `cursor` (first span not yet sold past, -1 for none).
    """

    def __init__(self, lots: Lots, pieces: Pieces) -> None:
        self.lots, self.pieces = lots, pieces
        n_lots = len(lots.qty)
        key = lots.wash_key[pieces.lot]
        order = np.lexsort((np.arange(len(pieces.lot)), pieces.event, key))
        cand, window_lo, window_hi = _windows(lots, pieces)
        slot = np.empty(n_lots, dtype=np.int64)
        slot[cand] = np.arange(n_lots)
        offset = pieces.offset
        gain = lots.direction[pieces.lot] * (pieces.close_unit - pieces.open_unit)
        gain[lots.in_ira()[pieces.lot]] = 0.0  # a sale inside an IRA triggers nothing
        self.cand = cand
        self.piece = order
        self.lot = slot[pieces.lot[order]]
        self.start = offset[order]
        self.end = (offset + pieces.qty)[order]
        self.gain = gain[order]
        self.day = pieces.day[order]
        self.lo = window_lo[order]
        self.hi = window_hi[order]
        trades = _run_bounds(pieces.close[order])
        self.trade_len = np.zeros(len(order), dtype=np.int64)
        self.trade_len[trades[:-1]] = np.diff(trades)

        self.qty = lots.qty[cand]
        self.ira = lots.in_ira()[cand]
        self.acquired = lots.day[cand]
        self.disposed = np.zeros(n_lots, dtype=np.int64)
        self.absorbed_end = np.zeros(n_lots, dtype=np.int64)
        self.tail = np.full(n_lots, -1, dtype=np.int64)
        self.cursor = np.full(n_lots, -1, dtype=np.int64)

    def run(self) -> None:
        """Run the compiled sweep: count each piece's segments, then write them in time order
        (numba is loaded on first use, about 0.35 s CPU once per process)."""
        import ibkr_nb.tax.wash_kernel as wash_kernel

        n = len(self.lot)
        spans = 2 * n + 1024
        first = np.zeros(n, dtype=np.int64)
        count = np.zeros(n, dtype=np.int64)
        out = [np.empty(0, dtype) for dtype in (np.int64, np.int64, float, np.int64)]
        out += [np.empty(0), np.empty(0)]
        write = False
        while True:  # count each piece's segments, then write them in time order
            state = [a.copy() for a in (self.disposed, self.absorbed_end, self.tail, self.cursor)]
            s = _Spans(spans)
            n_spans = wash_kernel.sweep(
                self.lot, self.start, self.end, self.gain, self.day, self.lo, self.hi,
                self.trade_len, self.qty, self.acquired, self.ira, *state,
                s.lot[:-1], s.a0[:-1], s.a1[:-1], s.adj[:-1], s.hps[:-1], s.next[:-1],
                self.piece, first, count, *out, write, _LOSS_EPS,
            )  # fmt: skip
            if n_spans < 0:
                spans *= 2
            elif write:
                break
            else:
                by_piece = np.empty(n, dtype=np.int64)
                by_piece[self.piece] = count
                first[:] = _first_slots(self.pieces, by_piece)[self.piece]
                out = [np.empty(count.sum(), a.dtype) for a in out]
                write = True
        self.disposed, self.absorbed_end, self.tail, self.cursor = state
        s.n = n_spans
        self.spans = s
        self.sold, self.permanent = tuple(out[:5]), out[5]

    def segments(self) -> Segments:
        """The recorded segments, plus segments of the shares still held (see `_held`)."""
        n_lots = len(self.qty)
        disposed = np.empty(n_lots, dtype=np.int64)
        disposed[self.cand] = self.disposed
        held = self._held()
        held = (self.cand[held[0]], *held[1:])
        return _assemble(self.lots, self.sold, held, disposed, self.permanent)

    def _held(self) -> Records:
        """Segments of the unsold shares [disposed, qty) of lots that absorbed a loss: each
        span's shares, the shares before it back to the previous span (or to `disposed`), and
        the shares after the last span, in share order. Lots in candidate order."""
        s = self.spans
        held = (self.qty > self.disposed) & (self.tail >= 0)
        ids = np.flatnonzero(held[s.lot[: s.n]])
        ids = ids[s.a1[ids] > self.disposed[s.lot[ids]]]
        ids = ids[np.argsort(s.lot[ids], kind="stable")]  # by lot, in share order
        lot = s.lot[ids]
        d0 = self.disposed[lot]
        a0 = np.maximum(s.a0[ids], d0)
        a1 = s.a1[ids]
        first = np.ones(len(ids), dtype=bool)
        first[1:] = lot[1:] != lot[:-1]
        last = np.ones(len(ids), dtype=bool)
        last[:-1] = first[1:]
        gap0 = np.where(first, d0, np.r_[0, a1[:-1]])
        seq = np.arange(len(ids)) * 2
        bare = np.flatnonzero(held)  # held lots whose spans are all sold
        bare = bare[~np.isin(bare, lot)]
        tail = lot[last]
        g_lot = np.concatenate([lot, lot, tail, bare])
        g_start = np.concatenate([gap0, a0, a1[last], self.disposed[bare]])
        g_end = np.concatenate([a0, a1, self.qty[tail], self.qty[bare]])
        g_seq = np.concatenate([seq, seq + 1, seq[last] + 2, np.zeros(len(bare), np.int64)])
        adj = np.concatenate([np.zeros(len(ids)), s.adj[ids], np.zeros(len(tail) + len(bare))])
        hps = np.concatenate(
            [self.acquired[lot], s.hps[ids], self.acquired[tail], self.acquired[bare]]
        )
        qty = g_end - g_start
        keep = np.flatnonzero(qty > 0)
        keep = keep[np.lexsort((g_seq[keep], g_lot[keep]))]
        q = qty[keep]
        return g_lot[keep], q, adj[keep] * q, hps[keep], np.zeros(len(keep))


def _no_records() -> Records:
    return tuple(np.empty(0, dtype) for dtype in (np.int64, np.int64, float, np.int64, float))


def _assemble(
    lots: Lots, sold: Records, held: Records, disposed: np.ndarray, permanent: np.ndarray
) -> Segments:
    """`Segments` from the sold ones (in time order, `permanent` their part disallowed for
    good) plus the held segments and every lot not among them that still has shares, which
    keeps the lot's own basis and acquisition date (one segment each)."""
    h_lot, h_qty, h_adj, h_hps, _ = held
    left = lots.qty - disposed
    untouched = left > 0
    untouched[h_lot] = False
    lot = np.flatnonzero(untouched)
    return Segments(
        *sold,
        open_lot=np.concatenate([lot, h_lot]),
        open_qty=np.concatenate([left[lot], h_qty]),
        open_adj=np.concatenate([np.zeros(len(lot)), h_adj]),
        open_hps=np.concatenate([lots.day[lot], h_hps]),
        permanent=permanent,
    )


def _first_slots(pieces: Pieces, count: np.ndarray) -> np.ndarray:
    """Per piece, the place of its first segment in time order ((event, piece) order), given
    each piece's number of segments."""
    order = np.lexsort((np.arange(len(count)), pieces.event))
    first = np.empty(len(count), dtype=np.int64)
    c = count[order]
    first[order] = np.cumsum(c) - c
    return first


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
