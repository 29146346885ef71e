"""The wash-sale sweep (`ibkr_nb.tax.wash_kernel`, compiled) against a reference.

The reference applies the same rule (see `ibkr_nb.tax.wash`) the plain way: one closing trade
at a time in time order, on Python lists, scanning every lot for replacements. Both must give
the same realized and open-lot frames to the last bit.
"""

from itertools import groupby
from unittest.mock import patch

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ibkr_nb.tax.lots import Lots, Pieces, match_lots
from ibkr_nb.tax.wash import _LOSS_EPS, WINDOW_DAYS, Segments


def reference_segments(lots: Lots, pieces: Pieces) -> Segments:
    """Wash-sale segments, one closing trade at a time (shares in micro-shares, money in USD,
    dates in days since epoch)."""
    qty, acquired = lots.qty.tolist(), lots.day.tolist()
    key, side = lots.wash_key.tolist(), lots.direction.tolist()
    by_acquisition = sorted(range(len(qty)), key=lambda r: (lots.order[r], r))
    gain_unit = (lots.direction[pieces.lot] * (pieces.close_unit - pieces.open_unit)).tolist()
    disposed = [0] * len(qty)  # shares of each lot sold so far
    absorbed_end = [0] * len(qty)  # end of the shares that already absorbed a loss
    spans = [[] for _ in qty]  # per lot: (a0, a1, adjustment per share, holding period start)
    sold, held = [], []  # (piece or lot, qty, adj_in, hps, disallowed)

    in_time_order = sorted(range(len(pieces.lot)), key=lambda k: (pieces.event[k], k))
    for _, trade in groupby(in_time_order, key=lambda k: pieces.close[k]):
        shares = []  # (piece, lot, first and past-last share sold)
        for k in trade:  # the trade's shares are no replacement for each other
            lot = int(pieces.lot[k])
            shares.append((k, lot, disposed[lot], disposed[lot] + int(pieces.qty[k])))
            disposed[lot] += int(pieces.qty[k])
        for k, lot, start, end in shares:
            day = int(pieces.day[k])
            for sq, adj_share, hps in runs(spans[lot], start, end, acquired[lot]):
                adj_in = adj_share * sq
                gain = sq * gain_unit[k] - adj_in
                disallowed = 0.0
                if gain < -_LOSS_EPS:
                    need, loss_share = sq, -gain / sq
                    for r in by_acquisition:
                        if need == 0:
                            break
                        room = qty[r] - max(absorbed_end[r], disposed[r])
                        if (
                            r == lot
                            or (key[r], side[r]) != (key[lot], side[lot])
                            or abs(acquired[r] - day) > WINDOW_DAYS
                            or room <= 0
                        ):
                            continue
                        a0 = qty[r] - room
                        a1 = a0 + min(room, need)
                        spans[r].append((a0, a1, loss_share, acquired[r] - (day - hps)))
                        absorbed_end[r] = a1
                        need -= a1 - a0
                    disallowed = -gain if need == 0 else loss_share * (sq - need)
                sold.append((k, sq, adj_in, hps, disallowed))
    for lot, n in enumerate(qty):
        for sq, adj_share, hps in runs(spans[lot], disposed[lot], n, acquired[lot]):
            held.append((lot, sq, adj_share * sq, hps, 0.0))

    return Segments(*columns(sold), *columns(held)[:4])


TYPES = (np.int64, np.int64, float, np.int64, float)


def columns(records: list[tuple]) -> list[np.ndarray]:
    """Records (piece or lot, qty, adj_in, hps, disallowed) as typed arrays."""
    return [np.array([r[i] for r in records], dtype=t) for i, t in enumerate(TYPES)]


def runs(spans, d0: int, d1: int, acquired: int) -> list[tuple[int, float, int]]:
    """Shares [d0, d1) of a lot as (qty, adjustment per share, holding period start) runs:
    the lot's absorbed spans (in share order) and the shares between them, which absorbed
    nothing."""
    out, cur = [], d0
    for a0, a1, adj, hps in spans:
        if a1 <= cur or a0 >= d1:
            continue
        if a0 > cur:
            out.append((a0 - cur, 0.0, acquired))
        end = min(a1, d1)
        out.append((end - max(a0, cur), adj, hps))
        cur = end
    if cur < d1:
        out.append((d1 - cur, 0.0, acquired))
    return out


def assert_sweep_matches_reference(trades: pd.DataFrame, method: str = "fifo") -> None:
    got = match_lots(trades, method=method)
    with patch("ibkr_nb.tax.lots.wash_sale_segments", reference_segments):
        want = match_lots(trades, method=method)
    pd.testing.assert_frame_equal(got.realized, want.realized, check_exact=True)
    pd.testing.assert_frame_equal(got.open_lots, want.open_lots, check_exact=True)


quantities = st.one_of(
    st.integers(-40, 40).filter(bool).map(lambda q: q / 4),  # quarter shares
    st.integers(-9_999, 9_999).filter(bool).map(lambda q: q / 1000),  # fractional shares
)
fills = st.lists(
    st.tuples(
        st.integers(0, 90),  # day: many sales within 30 days of a purchase
        st.sampled_from(["A", "B", "C"]),  # symbol
        st.sampled_from(["U1", "U2"]),  # account (wash sales look across accounts)
        quantities,  # selling past zero opens a short
        st.integers(500, 1500).map(lambda c: c / 100),  # price: losses and gains
        st.sampled_from([0.0, 0.35]),  # commission
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fills, st.sampled_from(["fifo", "lifo", "highest_cost", "average"]))
def test_sweep_equals_reference(rows, method):
    frame = pd.DataFrame(
        rows, columns=["day", "symbol", "account", "quantity", "price", "commission"]
    )
    frame = frame.sort_values("day", kind="stable").reset_index(drop=True)
    frame["datetime"] = (
        pd.Timestamp("2023-12-01 10:00", tz="America/New_York")
        + pd.to_timedelta(frame.pop("day"), unit="D")
        + pd.to_timedelta(np.arange(len(frame)), unit="s")
    )
    frame["trade_id"] = [f"T{i}" for i in range(len(frame))]
    assert_sweep_matches_reference(frame, method)


def test_sweep_equals_reference_on_a_long_history():
    # 600 trades: three symbols in two accounts, shorts and flips, chains of wash sales
    # across year ends, symbols of different lengths.
    rng = np.random.default_rng(7)
    n = 600
    trades = pd.DataFrame(
        {
            "symbol": rng.choice(["A", "B", "C"], n, p=[0.6, 0.3, 0.1]),
            "account": rng.choice(["U1", "U2"], n),
            "quantity": rng.choice([-3, -2, -1, 1, 2, 3], n) * 10.0,
            "price": rng.integers(100, 5000, n) / 100,
            "commission": 1.0,
            "datetime": pd.Timestamp("2023-11-01 10:00", tz="America/New_York")
            + pd.to_timedelta(np.sort(rng.integers(0, 400, n)), unit="D"),
        }
    )
    assert (match_lots(trades).realized["adjustment_code"] == "W").any()
    assert_sweep_matches_reference(trades)
