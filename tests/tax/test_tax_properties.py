"""Properties over random trade histories (hypothesis), for every lot method.

Once every lot is closed, total realized gain equals cash in minus cash out, whatever the
method and with or without wash sales (they move a loss in time, never change the total);
every disallowed amount lies between 0 and the loss; quantities are conserved.
"""

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ibkr_nb.tax.lots import METHODS, match_lots

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

fills = st.lists(
    st.tuples(
        st.integers(0, 420),  # day
        st.sampled_from(["A", "B"]),  # symbol
        st.sampled_from(["U1", "U2"]),  # account
        st.integers(-60, 60).filter(bool).map(lambda q: q / 4),  # quantity, quarter shares
        st.integers(100, 5000).map(lambda c: c / 100),  # price
        st.sampled_from([0.0, 0.35, 1.0]),  # commission
    ),
    min_size=1,
    max_size=30,
)


def history(rows, close_all: bool) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["day", "symbol", "account", "quantity", "price", "commission"]
    )
    frame = frame.sort_values("day", kind="stable").reset_index(drop=True)
    if close_all:
        net = frame.groupby(["account", "symbol"], as_index=False)["quantity"].sum()
        net = net[net["quantity"] != 0]
        last = frame["day"].max() + 1
        frame = pd.concat(
            [frame, net.assign(day=last, quantity=-net["quantity"], price=20.0, commission=1.0)],
            ignore_index=True,
        )
    start = pd.Timestamp("2023-11-01 10:00", tz="America/New_York")
    frame["datetime"] = (
        start
        + pd.to_timedelta(frame["day"], unit="D")
        + pd.to_timedelta(np.arange(len(frame)), unit="s")
    )
    frame["trade_id"] = [f"T{i}" for i in range(len(frame))]
    return frame.drop(columns="day")


def cash(frame: pd.DataFrame) -> float:
    return float((-frame["quantity"] * frame["price"] - frame["commission"]).sum())


@SETTINGS
@given(fills, st.sampled_from([m for m in METHODS if m != "specific"]), st.booleans())
def test_closed_histories_realize_exactly_the_cash(rows, method, wash_sales):
    trades = history(rows, close_all=True)
    result = match_lots(trades, method=method, wash_sales=wash_sales)
    assert result.open_lots.empty
    assert abs(result.realized["gain_loss"].sum() - cash(trades)) < 1e-6
    # Each share is opened once and closed once.
    assert abs(result.realized["quantity"].abs().sum() - trades["quantity"].abs().sum() / 2) < 1e-6


@SETTINGS
@given(fills, st.sampled_from(["fifo", "lifo", "highest_cost", "max_st_loss"]))
def test_wash_sales_change_timing_not_total(rows, method):
    trades = history(rows, close_all=True)
    washed = match_lots(trades, method=method).realized
    plain = match_lots(trades, method=method, wash_sales=False).realized
    assert abs(washed["gain_loss"].sum() - plain["gain_loss"].sum()) < 1e-6
    raw_gain = washed["proceeds"] - washed["cost_basis"]
    loss = (-raw_gain).clip(lower=0)
    assert (washed["adjustment_amount"] >= 0).all()
    assert (washed["adjustment_amount"] <= loss + 1e-9).all()
    assert ((washed["adjustment_amount"] > 0) == (washed["adjustment_code"] == "W")).all()
    # Every disallowed dollar reappears as basis carried into a later sale.
    assert abs(washed["adjustment_amount"].sum() - washed["wash_sale_adjustment"].sum()) < 1e-6


@SETTINGS
@given(fills, st.sampled_from(METHODS), st.booleans())
def test_open_positions_are_conserved(rows, method, wash_sales):
    trades = history(rows, close_all=False)
    result = match_lots(trades, method=method, wash_sales=wash_sales)
    net = trades.groupby(["account", "symbol"])["quantity"].sum()
    held = result.open_lots.groupby(["account", "symbol"])["quantity"].sum()
    both = pd.concat([net, held], axis=1, keys=["net", "held"]).fillna(0.0)
    assert (both["net"] - both["held"]).abs().max() < 1e-6
    # Basis carried in open lots plus what was realized equals what was disallowed.
    disallowed = result.realized["adjustment_amount"].sum()
    carried = (
        result.realized["wash_sale_adjustment"].sum()
        + result.open_lots["wash_sale_adjustment"].sum()
    )
    assert abs(disallowed - carried) < 1e-6
