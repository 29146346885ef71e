"""From paper fills to tax lots: Session.executions() feeds the tax engine unchanged."""

from __future__ import annotations

import pytest

import ibkr_nb
from ibkr_nb.tax import from_executions, match_lots


def test_round_trip_through_the_gateway_books_the_right_gain(gateway):
    with ibkr_nb.connect(port=gateway.port, client_id=41) as session:
        bought = session.place_order("AAPL", 100, order_ref="lot-1")
        gateway.set_price("AAPL", 250.00)
        sold = session.place_order("AAPL", -60, order_ref="lot-1-exit")
        executions = session.executions()
    assert list(bought.status) == list(sold.status) == ["Filled"]

    imported = from_executions(executions)
    assert imported.rejects.empty
    trades = imported.trades
    assert list(trades.quantity) == [100, -60]

    result = match_lots(trades)
    (row,) = result.realized.itertuples()
    buy, sell = executions.iloc[0], executions.iloc[1]
    basis = 60 * buy.price + buy.commission * 60 / 100  # buy commission adds to basis
    proceeds = 60 * sell.price - sell.commission  # sell commission reduces proceeds
    assert row.cost_basis == pytest.approx(basis, abs=0.005)
    assert row.proceeds == pytest.approx(proceeds, abs=0.005)
    assert row.gain_loss == pytest.approx(proceeds - basis, abs=0.01)
    (lot,) = result.open_lots.itertuples()
    assert lot.quantity == 40
