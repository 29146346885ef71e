"""The wash-sale sweep as one compiled loop (numba), piece by piece in sweep order.

The steps are those of `wash.py`'s docstring (ADVANCE, EMIT, VISIT): symbols are independent,
so walking the pieces in (symbol, time) order visits each symbol's steps in its own order.
Imported on first use (numba takes about 0.3 s CPU to load): `ibkr-nb tax` paths without
wash sales never pay for it. Compiled once per machine (`cache=True`).

Units as in `wash.py`: micro-shares, USD, days since 1970-01-01. Lots are in candidate
order; "no span" is -1.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_NONE = np.int64(-1)
_END = np.iinfo(np.int64).max  # "no span left": past every lot's shares


@njit(cache=True)
def sweep(
    lot, start, end, gain, day, lo, hi, trade_len,  # per piece, sweep order
    qty, acquired, ira,  # per lot, candidate order
    disposed, absorbed_end, tail, cursor,  # per lot, state (updated in place)
    span_lot, span_a0, span_a1, span_adj, span_hps, span_next,  # spans (capacity)
    piece, first, count,  # per piece: index into the pieces, first segment, segments
    out_piece, out_qty, out_adj, out_hps, out_disallowed, out_permanent,  # segments
    write, loss_eps,
):  # fmt: skip
    """Run the sweep. Without `write`, count each piece's segments into `count`; with it,
    write them from `first` on (a plain piece's one segment too). Returns the number of
    spans, or -1 when their capacity is too small (the caller retries with fresh state)."""
    n_lots = len(qty)
    alive = np.ones(n_lots + 1, dtype=np.bool_)
    skip = np.arange(1, n_lots + 2)
    n_spans = 0
    for p in range(len(lot)):
        k = trade_len[p]
        for j in range(p, p + k):  # ADVANCE at a trade's first piece: its shares are sold
            sold = lot[j]
            disposed[sold] = end[j]
            if end[j] == qty[sold]:
                alive[sold] = False
        own = lot[p]
        i = first[p]  # where the piece's next segment goes
        if tail[own] < 0 and not gain[p] < 0:  # no wash sale: the lot's basis and date
            if write:
                out_piece[i] = piece[p]
                out_qty[i] = end[p] - start[p]
                out_adj[i] = 0.0
                out_hps[i] = acquired[own]
                out_disallowed[i] = 0.0
                out_permanent[i] = 0.0
            else:
                count[p] = 1
            continue
        cur = start[p]
        stop = end[p]
        node = cursor[own]
        while node >= 0 and span_a1[node] <= cur:  # pass spans wholly before the piece
            node = span_next[node]
        while True:  # EMIT: the piece's segments
            a0 = span_a0[node] if node >= 0 else _END
            a1 = span_a1[node] if node >= 0 else _END
            inside = a0 <= cur
            seg_end = min(a1 if inside else a0, stop)
            q = seg_end - cur
            adj_in = span_adj[node] * q if inside else 0.0
            hps = span_hps[node] if inside else acquired[own]
            if inside and a1 <= stop:
                node = span_next[node]
            cur = seg_end
            if seg_end == stop:
                cursor[own] = node
            g = q * gain[p] - adj_in
            disallowed = 0.0
            permanent = 0.0
            if g < -loss_eps:  # VISIT the candidates in the window in turn
                need = q
                perm = 0
                loss_share = -g / q
                tacked = day[p] - hps
                c = lo[p]
                while True:
                    r = c  # the first live lot at or after c; `skip` points past dead lots
                    while not alive[r]:
                        r = skip[r]
                    while c != r:  # path compression
                        nxt = skip[c]
                        skip[c] = r
                        c = nxt
                    if c >= hi[p]:
                        break
                    if c != own:  # shares of the lot being sold are no replacement
                        a = max(absorbed_end[c], disposed[c])
                        if qty[c] - a <= need:
                            b = qty[c]
                            alive[c] = False
                        else:
                            b = a + need
                        if n_spans >= len(span_lot):
                            return -1
                        s = n_spans
                        n_spans += 1
                        span_lot[s] = c
                        span_a0[s] = a
                        span_a1[s] = b
                        if ira[c]:  # washed for good: no basis added, no period tacked
                            span_adj[s] = 0.0
                            span_hps[s] = acquired[c]
                            perm += b - a
                        else:
                            span_adj[s] = loss_share
                            span_hps[s] = acquired[c] - tacked
                        span_next[s] = _NONE
                        if tail[c] >= 0:
                            span_next[tail[c]] = s
                        tail[c] = s
                        if cursor[c] < 0:
                            cursor[c] = s
                        absorbed_end[c] = b
                        need -= b - a
                        if need == 0:
                            break
                    c += 1
                disallowed = -g if need == 0 else loss_share * (q - need)
                permanent = min(loss_share * perm, disallowed)
            if write:
                out_piece[i] = piece[p]
                out_qty[i] = q
                out_adj[i] = adj_in
                out_hps[i] = hps
                out_disallowed[i] = disallowed
                out_permanent[i] = permanent
            i += 1
            if cur == stop:
                break
        if not write:
            count[p] = i - first[p]
    return n_spans
