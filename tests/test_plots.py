"""Plotly figures: the traces' data, titles with units, hovers with numbers, same JSON each run."""

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ibkr_nb import plots, tax
from ibkr_nb.evaluation import brier_score, calibration, evaluate, returns_by_decile
from ibkr_nb.tax.importers import load_trades
from ibkr_nb.tax.lots import match_lots

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
NY = "America/New_York"

PORTFOLIO = pd.DataFrame(
    {
        "account": ["DU1", "DU1", "DU1", "DU2"],
        "symbol": ["AAPL", "MSFT", "TSLA", "AAPL"],
        "market_value": [1000.0, -500.0, 2500.0, 500.0],
        "unrealized_pnl": [10.0, -20.0, 30.0, 5.0],
    }
)
BARS = pd.DataFrame(
    {
        "symbol": ["AAPL"] * 3 + ["MSFT"] * 3,
        "date": list(pd.bdate_range("2024-07-01", periods=3).tz_localize(NY)) * 2,
        "open": 1.0,
        "high": 1.0,
        "low": 1.0,
        "close": [190.0, 191.5, 189.25, 400.0, 401.0, 402.0],
        "volume": 1000,
    }
)
FILLS = pd.DataFrame(
    {
        "symbol": ["AAPL", "AAPL", "MSFT", "AAPL"],
        "time": pd.to_datetime(
            [
                "2024-07-01 14:30:05Z",
                "2024-07-03 19:59:00Z",
                "2024-07-01 14:31:00Z",
                "2024-07-02 15:00:00Z",
            ]
        ),
        "quantity": [100.0, -40.0, 5.0, 20.0],
        "price": [190.1, 189.3, 400.2, 191.0],
    }
)


@pytest.fixture(scope="module")
def lots():
    return match_lots(load_trades(SAMPLES / "trades.csv").trades)


@pytest.fixture(scope="module")
def evaluation():
    days = pd.bdate_range("2024-01-02", periods=40)
    bars = pd.DataFrame(
        {"symbol": "AAA", "date": days, "close": 100 + np.sin(np.arange(40)) * 5 + np.arange(40)}
    )
    made = pd.DataFrame(
        {
            "decision_id": [f"d{i}" for i in range(12)],
            "ticker": "AAA",
            "decision": ["BUY", "SELL", "HOLD"] * 4,
            "confidence": [5.0, 15.0, 25.0, 35.0, 45.0, 55.0, 65.0, 75.0, 85.0, 95.0, 100.0, 62.0],
            "current_price": 100.0,
            "created_at": (days[:12] + pd.Timedelta(hours=12)).tz_localize("UTC"),
        }
    )
    return evaluate(made, bars, horizons=[1, 5])


def test_allocation():
    fig = plots.fig_allocation(PORTFOLIO)
    (bar,) = fig.data
    assert list(bar.x) == ["TSLA", "AAPL", "MSFT"]  # largest |market value| first, accounts summed
    assert bar.y.tolist() == [2500.0, 1500.0, -500.0]
    np.testing.assert_allclose(bar.customdata, [2500 / 45, 1500 / 45, 500 / 45])
    assert list(bar.text) == ["55.6 %", "33.3 %", "11.1 %"]
    assert list(bar.marker.color) == [plots.LONG_COLOR, plots.LONG_COLOR, plots.SHORT_COLOR]
    assert "%{y:,.2f} USD" in bar.hovertemplate and "%{customdata:.2f} %" in bar.hovertemplate
    assert fig.layout.yaxis.title.text == "market value (USD)"
    assert fig.layout.xaxis.title.text == "symbol"
    assert plots.fig_allocation(PORTFOLIO, currency="EUR").layout.yaxis.title.text == (
        "market value (EUR)"
    )


def test_unrealized_pnl():
    fig = plots.fig_unrealized_pnl(PORTFOLIO)
    (bar,) = fig.data
    assert list(bar.x) == ["TSLA", "AAPL", "MSFT"]
    assert bar.y.tolist() == [30.0, 15.0, -20.0]
    assert list(bar.marker.color) == [plots.GAIN_COLOR, plots.GAIN_COLOR, plots.LOSS_COLOR]
    assert fig.layout.title.text == "Unrealized P&L by position (total 25.00 USD)"
    assert fig.layout.yaxis.title.text == "unrealized P&L (USD)"
    assert "%{y:,.2f} USD" in bar.hovertemplate


def test_price_history_marks_the_symbols_fills_in_new_york_time():
    fig = plots.fig_price_history(BARS, FILLS, symbol="AAPL")
    close, buys, sells = fig.data
    assert (close.name, buys.name, sells.name) == ("AAPL close", "buys", "sells")
    assert pd.DatetimeIndex(close.x).strftime("%Y-%m-%d").tolist() == [
        "2024-07-01",
        "2024-07-02",
        "2024-07-03",
    ]
    assert close.y.tolist() == [190.0, 191.5, 189.25]
    # 14:30:05 UTC is 10:30:05 in New York (EDT); the MSFT fill is left out.
    assert pd.DatetimeIndex(buys.x).strftime("%Y-%m-%d %H:%M:%S").tolist() == [
        "2024-07-01 10:30:05",
        "2024-07-02 11:00:00",
    ]
    assert buys.y.tolist() == [190.1, 191.0] and buys.customdata.tolist() == [100.0, 20.0]
    assert sells.y.tolist() == [189.3] and sells.customdata.tolist() == [40.0]
    assert (buys.marker.symbol, sells.marker.symbol) == ("triangle-up", "triangle-down")
    assert "%{y:,.2f} USD" in buys.hovertemplate and "%{customdata:,}" in buys.hovertemplate
    assert fig.layout.xaxis.title.text == "date (New York time)"
    assert fig.layout.yaxis.title.text == "price (USD)"
    assert fig.layout.title.text == "AAPL: daily close and fills"


def test_price_history_of_one_symbol_without_fills():
    one = BARS[BARS["symbol"] == "MSFT"].drop(columns="symbol")
    one = one.assign(date=one["date"].dt.tz_localize(None))  # naive dates are taken as given
    fig = plots.fig_price_history(one)
    assert len(fig.data) == 1 and fig.data[0].y.tolist() == [400.0, 401.0, 402.0]
    assert pd.DatetimeIndex(fig.data[0].x)[0] == pd.Timestamp("2024-07-01")
    assert len(plots.fig_price_history(BARS[BARS["symbol"] == "MSFT"]).data) == 1


def test_price_history_errors():
    with pytest.raises(ValueError, match="2 symbols; pass symbol="):
        plots.fig_price_history(BARS)
    with pytest.raises(ValueError, match="no rows for 'IBM'"):
        plots.fig_price_history(BARS, symbol="IBM")
    with pytest.raises(ValueError, match="fills frame lacks the column.*price"):
        plots.fig_price_history(BARS, FILLS.drop(columns="price"), symbol="AAPL")
    with pytest.raises(ValueError, match="portfolio frame lacks the column.*market_value"):
        plots.fig_allocation(PORTFOLIO.drop(columns="market_value"))


def test_returns_by_decile(evaluation):
    fig = plots.fig_returns_by_decile(evaluation.by_decile)
    assert [t.name for t in fig.data] == ["1 session", "5 sessions"]
    for trace, horizon in zip(fig.data, [1, 5], strict=True):
        rows = evaluation.by_decile[evaluation.by_decile["horizon"] == horizon]
        assert list(trace.x) == [f"{10 * k}-{10 * k + 10}" for k in range(10)]
        np.testing.assert_allclose(trace.y, rows["mean_return"] * 100)
        np.testing.assert_allclose(trace.customdata[:, 0], rows["evaluated"])
        np.testing.assert_allclose(trace.customdata[:, 1], rows["hit_rate"] * 100)
        assert "%{y:.2f} %" in trace.hovertemplate
    assert fig.layout.xaxis.title.text == "stated confidence (%)"
    assert fig.layout.yaxis.title.text == "mean directional return (%)"
    assert returns_by_decile(evaluation.forward).equals(evaluation.by_decile)


def test_calibration_curve(evaluation):
    table = calibration(evaluation.forward, buckets=5)
    brier = brier_score(evaluation.forward)
    fig = plots.fig_calibration(table, brier)
    diagonal, h1, h5 = fig.data
    assert diagonal.name == "perfectly calibrated"
    assert list(diagonal.x) == [0.0, 100.0] and list(diagonal.y) == [0.0, 100.0]
    assert h1.name == f"1 session, Brier {brier['brier'].iloc[0]:.3f}"
    used = table[(table["horizon"] == 1) & (table["evaluated"] > 0)]
    np.testing.assert_allclose(h1.x, used["stated"] * 100)
    np.testing.assert_allclose(h1.y, used["observed"] * 100)
    np.testing.assert_allclose(h1.customdata, used["evaluated"])
    assert fig.layout.xaxis.title.text == "stated confidence (%)"
    assert fig.layout.yaxis.title.text == "observed hit rate (%)"
    assert tuple(fig.layout.yaxis.range) == (0, 100)
    assert plots.fig_calibration(table).data[1].name == "1 session"


def test_realized_by_month(lots):
    fig = tax.fig_realized_by_month(lots)  # still importable from ibkr_nb.tax
    short, long_ = fig.data
    assert (short.name, long_.name) == ("short", "long")
    realized = lots.realized
    month = realized["date_sold"].dt.strftime("%Y-%m")
    for trace, term in ((short, "short"), (long_, "long")):
        expected = realized[realized["term"] == term].groupby(month)["gain_loss"].sum()
        got = pd.Series(trace.y, index=pd.DatetimeIndex(trace.x).strftime("%Y-%m"))
        np.testing.assert_allclose(got.reindex(expected.index), expected, atol=0.005)
        assert got.drop(expected.index).eq(0).all()  # months without that term are zero
    assert fig.layout.yaxis.title.text == "realized gain (USD)"
    assert fig.layout.xaxis.title.text == "month sold"
    assert "%{y:,.2f} USD" in short.hovertemplate


def test_wash_sale_effect(lots):
    fig = tax.fig_wash_sale_effect(lots)
    assert [trace.name for trace in fig.data] == [
        "without wash-sale rule",
        "reported (after wash sales)",
        "losses deferred (cumulative)",
    ]
    without, reported, deferred = fig.data
    # Reported = without the rule + losses deferred that month - deferred losses released;
    # over the whole history the two cancel when nothing is deferred at the end.
    assert reported.y.sum() == pytest.approx(lots.realized["gain_loss"].sum(), abs=0.01)
    assert without.y.sum() - reported.y.sum() == pytest.approx(0.0, abs=0.01)
    # data/samples/trades.csv: the $46.00 AAPL loss of 2024-01-16 is deferred until December.
    assert deferred.y[-1] == 0.0 and deferred.y.max() > 0
    assert fig.layout.yaxis.title.text == "gain / deferred loss (USD)"
    assert fig.layout.xaxis.title.text == "month sold"


def test_figures_are_deterministic(lots, evaluation):
    def build():
        return [
            plots.fig_allocation(PORTFOLIO),
            plots.fig_unrealized_pnl(PORTFOLIO),
            plots.fig_price_history(BARS, FILLS, symbol="AAPL"),
            plots.fig_returns_by_decile(evaluation.by_decile),
            plots.fig_calibration(evaluation.calibration, evaluation.brier),
            plots.fig_realized_by_month(lots),
            plots.fig_wash_sale_effect(lots),
        ]

    first, second = [f.to_json() for f in build()], [f.to_json() for f in build()]
    assert first == second
    for text in first:
        assert '"uid"' not in text
        assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-", text)  # no uuids
    for fig in build():
        assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
        assert all(trace.hovertemplate or trace.hoverinfo == "skip" for trace in fig.data)


def test_empty_inputs_draw_empty_figures(lots):
    empty = PORTFOLIO.iloc[:0]
    assert [len(t.y) for t in plots.fig_allocation(empty).data] == [0]
    assert [len(t.y) for t in plots.fig_unrealized_pnl(empty).data] == [0]
    nothing_sold = replace(lots, realized=lots.realized.iloc[:0])
    assert [len(t.y) for t in plots.fig_realized_by_month(nothing_sold).data] == [0, 0]
    assert [len(t.y) for t in plots.fig_wash_sale_effect(nothing_sold).data] == [0, 0, 0]
    no_fills = plots.fig_price_history(BARS, FILLS.iloc[:0], symbol="MSFT")
    assert [len(t.x) for t in no_fills.data] == [3, 0, 0]
