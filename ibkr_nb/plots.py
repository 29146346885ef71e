"""Plotly figures for notebooks and HTML reports. Each function returns a `go.Figure` and
never shows it.

Every figure has axis titles with units and a hover that shows the numbers; figures carry no
random ids, so the same input gives the same figure JSON. Money is in the account currency
(``currency``, USD unless said); returns and rates are shown in percent; times in New York.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ibkr_nb.evaluation import require_columns
from ibkr_nb.frames import EXCHANGE_TZ

if TYPE_CHECKING:
    from ibkr_nb.tax.lots import LotResult

GAIN_COLOR, LOSS_COLOR = "#2ca02c", "#d62728"
LONG_COLOR, SHORT_COLOR = "#1f77b4", "#ff7f0e"


def _by_symbol(frame: pd.DataFrame, column: str) -> pd.Series:
    """``column`` summed per symbol (several accounts), largest magnitude first."""
    totals = frame.groupby("symbol")[column].sum(min_count=1).dropna()
    order = np.lexsort((totals.index.to_numpy(dtype=str), -totals.abs().to_numpy()))
    return totals.iloc[order]


def fig_allocation(portfolio: pd.DataFrame, currency: str = "USD") -> go.Figure:
    """Market value per position (``symbol``, ``market_value``; shorts negative), largest
    first, each bar labelled with its share of gross exposure (sum of |market value|)."""
    require_columns(portfolio, ["symbol", "market_value"], "portfolio")
    value = _by_symbol(portfolio, "market_value")
    gross = value.abs().sum()
    share = value.abs() / gross * 100 if gross > 0 else value * 0.0
    fig = go.Figure(
        go.Bar(
            x=value.index.tolist(),
            y=value.to_numpy(),
            customdata=share.to_numpy(),
            marker_color=np.where(value.to_numpy() < 0, SHORT_COLOR, LONG_COLOR).tolist(),
            text=[f"{s:.1f} %" for s in share],
            textposition="auto",
            name="market value",
            hovertemplate=f"<b>%{{x}}</b><br>market value: %{{y:,.2f}} {currency}"
            "<br>share of gross: %{customdata:.2f} %<extra></extra>",
        )
    )
    fig.update_layout(
        title="Allocation by position (short positions negative)",
        xaxis_title="symbol",
        yaxis_title=f"market value ({currency})",
    )
    return fig


def fig_unrealized_pnl(portfolio: pd.DataFrame, currency: str = "USD") -> go.Figure:
    """Unrealized P&L per position (``symbol``, ``unrealized_pnl``), gains green, losses red."""
    require_columns(portfolio, ["symbol", "unrealized_pnl"], "portfolio")
    pnl = _by_symbol(portfolio, "unrealized_pnl").sort_values(ascending=False, kind="stable")
    fig = go.Figure(
        go.Bar(
            x=pnl.index.tolist(),
            y=pnl.to_numpy(),
            marker_color=np.where(pnl.to_numpy() < 0, LOSS_COLOR, GAIN_COLOR).tolist(),
            name="unrealized P&L",
            hovertemplate=f"<b>%{{x}}</b><br>unrealized P&L: %{{y:,.2f}} {currency}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Unrealized P&L by position (total {pnl.sum():,.2f} {currency})",
        xaxis_title="symbol",
        yaxis_title=f"unrealized P&L ({currency})",
    )
    return fig


def _new_york(times: pd.Series) -> pd.Series:
    """Timestamps as New York wall time without a zone (naive ones are taken as given)."""
    times = pd.to_datetime(times)
    return times.dt.tz_convert(EXCHANGE_TZ).dt.tz_localize(None) if times.dt.tz else times


def fig_price_history(
    bars: pd.DataFrame,
    fills: pd.DataFrame | None = None,
    symbol: str | None = None,
    currency: str = "USD",
) -> go.Figure:
    """Closing prices of one symbol with its fills marked (buys ▲, sells ▼ at the fill price).

    ``bars``: ``date``, ``close`` and, for several symbols, ``symbol``. ``fills``: ``symbol``,
    ``time``, ``quantity`` (signed: + bought, - sold) and ``price``, e.g. the ledger's fills
    or `Session.executions()`. ``symbol`` picks the symbol; it may be left out when the bars
    hold only one.
    """
    require_columns(bars, ["date", "close"], "bars")
    if "symbol" in bars.columns:
        symbols = pd.unique(bars["symbol"])
        if symbol is None:
            if len(symbols) != 1:
                raise ValueError(
                    f"the bars hold {len(symbols)} symbols; pass symbol= to choose one."
                )
            symbol = str(symbols[0])
        bars = bars[bars["symbol"] == symbol]
        if bars.empty:
            raise ValueError(f"the bars have no rows for {symbol!r}; fetch its bars first.")
    bars = bars.assign(date=_new_york(bars["date"])).sort_values("date")
    label = symbol or "price"
    fig = go.Figure(
        go.Scatter(
            x=bars["date"],
            y=bars["close"].to_numpy(dtype=float),
            mode="lines",
            name=f"{label} close",
            line_color=LONG_COLOR,
            hovertemplate=f"%{{x|%Y-%m-%d}}<br>close: %{{y:,.2f}} {currency}<extra></extra>",
        )
    )
    if fills is not None:
        require_columns(fills, ["symbol", "time", "quantity", "price"], "fills")
        mine = fills if symbol is None else fills[fills["symbol"] == symbol]
        mine = mine.assign(time=_new_york(mine["time"])).sort_values("time", kind="stable")
        for name, rows, marker, color, verb in (
            ("buys", mine[mine["quantity"] > 0], "triangle-up", GAIN_COLOR, "bought"),
            ("sells", mine[mine["quantity"] < 0], "triangle-down", LOSS_COLOR, "sold"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=rows["time"],
                    y=rows["price"].to_numpy(dtype=float),
                    customdata=rows["quantity"].abs().to_numpy(dtype=float),
                    mode="markers",
                    name=name,
                    marker={"symbol": marker, "size": 11, "color": color},
                    hovertemplate=f"{verb} %{{customdata:,}} at %{{y:,.2f}} {currency}"
                    "<br>%{x|%Y-%m-%d %H:%M:%S} New York<extra></extra>",
                )
            )
    fig.update_layout(
        title=f"{label}: daily close and fills",
        xaxis_title="date (New York time)",
        yaxis_title=f"price ({currency})",
    )
    return fig


# --------------------------------------------------------------------------- decision evaluation


def _sessions(horizon) -> str:
    return f"{horizon} session" if horizon == 1 else f"{horizon} sessions"


def fig_returns_by_decile(by_decile: pd.DataFrame) -> go.Figure:
    """Mean directional return (%) per stated-confidence decile, one bar group per horizon,
    from `ibkr_nb.evaluation.returns_by_decile`."""
    require_columns(
        by_decile,
        ["horizon", "confidence_low", "confidence_high", "evaluated", "mean_return", "hit_rate"],
        "returns by decile",
    )
    fig = go.Figure()
    for horizon, rows in by_decile.groupby("horizon", sort=False):
        fig.add_bar(
            x=[
                f"{lo:g}-{hi:g}"
                for lo, hi in zip(rows["confidence_low"], rows["confidence_high"], strict=True)
            ],
            y=(rows["mean_return"] * 100).to_numpy(dtype=float),
            customdata=np.column_stack(
                [
                    rows["evaluated"].to_numpy(dtype=float),
                    (rows["hit_rate"] * 100).to_numpy(dtype=float),
                ]
            ),
            name=_sessions(horizon),
            hovertemplate=f"horizon: {_sessions(horizon)}<br>confidence: %{{x}} %"
            "<br>mean return: %{y:.2f} %<br>hit rate: %{customdata[1]:.1f} %"
            "<br>decisions: %{customdata[0]:,}<extra></extra>",
        )
    fig.update_layout(
        title="Mean directional return by stated confidence",
        xaxis_title="stated confidence (%)",
        yaxis_title="mean directional return (%)",
        legend_title="horizon",
        barmode="group",
    )
    return fig


def fig_calibration(calibration: pd.DataFrame, brier: pd.DataFrame | None = None) -> go.Figure:
    """Observed hit rate against stated confidence (both %), one line per horizon, with the
    diagonal of perfect calibration; from `ibkr_nb.evaluation.calibration` (buckets with
    decisions only). With ``brier`` (`ibkr_nb.evaluation.brier_score`) the legend shows each
    horizon's Brier score."""
    require_columns(calibration, ["horizon", "evaluated", "stated", "observed"], "calibration")
    scores = {} if brier is None else dict(zip(brier["horizon"], brier["brier"], strict=True))
    fig = go.Figure(
        go.Scatter(
            x=[0.0, 100.0],
            y=[0.0, 100.0],
            mode="lines",
            name="perfectly calibrated",
            line={"dash": "dash", "color": "gray"},
            hoverinfo="skip",
        )
    )
    for horizon, rows in calibration.groupby("horizon", sort=False):
        rows = rows[rows["evaluated"] > 0]
        score = f", Brier {scores[horizon]:.3f}" if pd.notna(scores.get(horizon)) else ""
        fig.add_scatter(
            x=(rows["stated"] * 100).to_numpy(dtype=float),
            y=(rows["observed"] * 100).to_numpy(dtype=float),
            customdata=rows["evaluated"].to_numpy(dtype=float),
            mode="lines+markers",
            name=f"{_sessions(horizon)}{score}",
            hovertemplate=f"horizon: {_sessions(horizon)}<br>stated: %{{x:.1f}} %"
            "<br>observed: %{y:.1f} %<br>decisions: %{customdata:,}<extra></extra>",
        )
    fig.update_layout(
        title="Calibration: stated confidence vs. observed hit rate",
        xaxis={"title": "stated confidence (%)", "range": [0, 100]},
        yaxis={"title": "observed hit rate (%)", "range": [0, 100]},
        legend_title="horizon",
    )
    return fig


# --------------------------------------------------------------------------- taxes


def _month_sold(realized: pd.DataFrame) -> pd.Series:
    return realized["date_sold"].dt.to_period("M").dt.to_timestamp()


def fig_realized_by_month(result: LotResult, currency: str = "USD") -> go.Figure:
    """Realized gain (after wash-sale adjustments) per month sold, stacked by term."""
    realized = result.realized
    table = (
        realized.assign(month=_month_sold(realized))
        .pivot_table(
            index="month", columns="term", values="gain_loss", aggfunc="sum", fill_value=0.0
        )
        .reindex(columns=["short", "long"], fill_value=0.0)
        .round(2)  # cents, without float dust such as 4.5e-13
    )
    fig = go.Figure()
    for term in ("short", "long"):
        fig.add_bar(
            x=table.index,
            y=table[term].to_numpy(dtype=float),
            name=term,
            hovertemplate=f"%{{x|%b %Y}}<br>{term}-term gain: %{{y:,.2f}} {currency}<extra></extra>",
        )
    fig.update_layout(
        title="Realized gain by month and term",
        xaxis_title="month sold",
        yaxis_title=f"realized gain ({currency})",
        legend_title="term",
        barmode="relative",
    )
    return fig


def fig_wash_sale_effect(result: LotResult, currency: str = "USD") -> go.Figure:
    """Per month sold: realized gain as reported vs. as if there were no wash-sale rule, and
    the disallowed losses still deferred (carried in open lots) at month end."""
    realized = result.realized
    raw = realized["proceeds"] - realized["cost_basis"] + realized["wash_sale_adjustment"]
    frame = (
        pd.DataFrame(
            {
                "month": _month_sold(realized),
                "reported": realized["gain_loss"],
                "without": raw,
                "deferred": realized["adjustment_amount"] - realized["wash_sale_adjustment"],
            }
        )
        .groupby("month")
        .sum()
    )
    frame["deferred"] = frame["deferred"].cumsum()
    frame = frame.round(2)  # cents, without float dust
    hover = f"%{{x|%b %Y}}<br>%{{fullData.name}}: %{{y:,.2f}} {currency}<extra></extra>"
    fig = go.Figure()
    fig.add_bar(
        x=frame.index,
        y=frame["without"].to_numpy(),
        name="without wash-sale rule",
        hovertemplate=hover,
    )
    fig.add_bar(
        x=frame.index,
        y=frame["reported"].to_numpy(),
        name="reported (after wash sales)",
        hovertemplate=hover,
    )
    fig.add_scatter(
        x=frame.index,
        y=frame["deferred"].to_numpy(),
        name="losses deferred (cumulative)",
        mode="lines+markers",
        hovertemplate=hover,
    )
    fig.update_layout(
        barmode="group",
        title="Effect of wash sales",
        xaxis_title="month sold",
        yaxis_title=f"gain / deferred loss ({currency})",
    )
    return fig
