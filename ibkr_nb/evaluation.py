"""Decision evaluation: how AI decisions would have done against the daily bars that followed.

Conventions (no look-ahead):
- Sessions are the dates present in ``bars`` (all symbols together); a session closes at
  16:00 America/New_York on its date (early closes are not modelled). A bar's session is the
  calendar date of ``date`` in its own time zone (midnight New York from the session), or the
  plain date given. A session that has not closed by ``as_of`` (default: now) is left out,
  since its bar is still moving.
- Entry: the close of the first session whose close is at or after ``created_at``. A decision
  made before 16:00 New York on a trading day enters at that day's close; one made at 16:00:01
  or later, or on a weekend or holiday, at the next session's close. Exactly 16:00:00 counts as
  that session's close.
- The return at horizon h is the ticker's close h sessions after the entry session divided by
  the entry close, minus 1 (a fraction, 0.01 = 1 %). Sessions are counted on the calendar of
  all symbols: a ticker without a bar at its entry or exit session (halted, not yet listed, a
  hole in the data) gets a reason, never a later bar in its place. A SELL's directional return is the
  negative of that; a HOLD has no direction (its directional return is NaN).
- A hit is a directional return > 0 (0 is a miss); HOLDs are excluded from hit rates,
  confidence deciles, calibration and the Brier score. Stated confidence c (0-100) is read as
  the probability c / 100 that the decision's direction is right.
- Anything that cannot be evaluated (no bars, bars ending before the horizon, a gap at the
  entry or exit session, a bad decision field) leaves NaN returns and says why in ``reason``;
  rows with an empty ``reason`` have finite returns. Nothing raises on a bad row.

`forward_returns` makes the row-level frame; `hit_rate`, `returns_by_decile`, `calibration`,
`brier_score` and `simulated_pnl` summarise it; `evaluate` does all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ibkr_nb.commissions import stock_commission
from ibkr_nb.frames import EXCHANGE_TZ, SESSION_CLOSE
from ibkr_nb.sizing import base_quantity

HORIZONS = (1, 5, 20)
REQUIRED_COLUMNS = [
    "decision_id",
    "ticker",
    "decision",
    "confidence",
    "current_price",
    "created_at",
]
"""The decision columns an evaluation needs (see ``decisions.DECISION_COLUMNS``)."""
BAR_COLUMNS = ["symbol", "date", "close"]
SIDES = {"BUY": 1.0, "SELL": -1.0, "HOLD": 0.0}

# Reasons in order of precedence: a row gets the first that applies ("" = evaluated).
REASONS = np.array(
    [
        "",
        "created_at is missing",
        "decision is not BUY, SELL or HOLD",
        "confidence is not a number in 0-100",
        "no bars for this ticker",
        "created_at is before the first session in the bars",
        "no session in the bars has closed at or after created_at",
        "no bar for this ticker at the entry session",
        "the bars end before this horizon",
        "no bar for this ticker at the exit session",
        "current_price is not usable for sizing",
    ],
    dtype=object,
)
(
    OK,
    NO_TIME,
    BAD_DECISION,
    BAD_CONFIDENCE,
    NO_BARS,
    BEFORE_BARS,
    AFTER_BARS,
    NO_ENTRY_BAR,
    BARS_END,
    NO_EXIT_BAR,
    BAD_PRICE,
) = range(len(REASONS))

FORWARD_COLUMNS = [
    *REQUIRED_COLUMNS,
    "horizon",
    "entry_date",
    "entry_close",
    "exit_date",
    "exit_close",
    "return",
    "directional_return",
    "hit",
    "reason",
]


@dataclass(frozen=True)
class Evaluation:
    """Every table of `evaluate`; each is documented at the function that makes it."""

    forward: pd.DataFrame
    hit_rate: pd.DataFrame
    by_decile: pd.DataFrame
    calibration: pd.DataFrame
    brier: pd.DataFrame
    pnl: pd.DataFrame
    pnl_totals: pd.DataFrame


def evaluate(
    decisions: pd.DataFrame,
    bars: pd.DataFrame,
    horizons=HORIZONS,
    max_position_size: float = 10_000.0,
    buckets: int = 10,
    as_of=None,
) -> Evaluation:
    """Forward returns of ``decisions`` against ``bars`` and every summary of them."""
    forward = forward_returns(decisions, bars, horizons, as_of)
    pnl = simulated_pnl(forward, max_position_size)
    return Evaluation(
        forward=forward,
        hit_rate=hit_rate(forward),
        by_decile=returns_by_decile(forward),
        calibration=calibration(forward, buckets),
        brier=brier_score(forward),
        pnl=pnl,
        pnl_totals=pnl_totals(pnl),
    )


# --------------------------------------------------------------------------- forward returns


def forward_returns(
    decisions: pd.DataFrame, bars: pd.DataFrame, horizons=HORIZONS, as_of=None
) -> pd.DataFrame:
    """One row per (decision, horizon), decision by decision, horizons in the order given.

    ``decisions``: the decisions frame (``created_at`` tz-aware). ``bars``: daily bars of many
    symbols (``symbol``, ``date``, ``close``; other columns are ignored); a bar with a missing
    or non-positive close counts as no bar. ``horizons``: positive numbers of sessions.
    ``as_of``: a tz-aware time (default now); sessions closing later are not used (pass the
    session's clock when the bars include today's unfinished bar).
    Columns: the decision's fields, ``horizon`` (sessions), ``entry_date`` / ``exit_date``
    (session dates, midnight New York), ``entry_close`` / ``exit_close`` (USD), ``return`` and
    ``directional_return`` (fractions), ``hit`` (boolean, NA when not evaluated or HOLD) and
    ``reason`` (see the module docstring for the conventions).
    Raises ValueError for a missing column, naive ``created_at`` or ``as_of``, bad horizons or
    two bars for one symbol and session.
    """
    horizons = _check_horizons(horizons)
    require_columns(decisions, REQUIRED_COLUMNS, "decisions")
    book = _BarBook(bars, _as_of(as_of))
    n = len(decisions)

    created = _utc_nanoseconds(decisions["created_at"])
    side, action = _sides(decisions["decision"])
    confidence = pd.to_numeric(decisions["confidence"], errors="coerce").to_numpy(dtype=float)
    sym = book.symbol_codes(decisions["ticker"])

    entry = np.searchsorted(book.close_ns, created, side="left")
    entry_close = book.close_at(sym, entry)
    reason = np.select(
        [
            created == np.iinfo(np.int64).min,
            np.isnan(side),
            ~(np.isfinite(confidence) & (confidence >= 0) & (confidence <= 100)),
            sym < 0,
            created < book.first_open_ns,
            entry >= len(book.close_ns),
            np.isnan(entry_close),
        ],
        [NO_TIME, BAD_DECISION, BAD_CONFIDENCE, NO_BARS, BEFORE_BARS, AFTER_BARS, NO_ENTRY_BAR],
        OK,
    )
    entered = reason == OK

    h = np.asarray(horizons)
    exit_ = entry[:, None] + h[None, :]
    exit_close = book.close_at(np.repeat(sym, len(h)), exit_.ravel()).reshape(n, len(h))
    reason = np.where(
        entered[:, None],
        np.where(
            exit_ >= len(book.close_ns), BARS_END, np.where(np.isnan(exit_close), NO_EXIT_BAR, OK)
        ),
        reason[:, None],
    ).ravel()
    ok = reason == OK
    ret = np.where(ok, exit_close.ravel() / np.repeat(entry_close, len(h)) - 1.0, np.nan)
    side_rows = np.repeat(side, len(h))
    directional = np.where(side_rows != 0, side_rows * ret, np.nan)

    def per_row(values):
        values = values.array if isinstance(values, pd.Series) else np.asarray(values)
        return values.repeat(len(h))

    entered_rows = per_row(entered)
    out = pd.DataFrame(
        {
            "decision_id": per_row(decisions["decision_id"]),
            "ticker": per_row(decisions["ticker"]),
            "decision": per_row(
                np.where(np.isnan(side), decisions["decision"].to_numpy(dtype=object), action)
            ),
            "confidence": per_row(confidence),
            "current_price": per_row(pd.to_numeric(decisions["current_price"], errors="coerce")),
            "created_at": per_row(decisions["created_at"].dt.tz_convert("UTC")),
            "horizon": np.tile(h, n),
            "entry_date": book.session_dates(per_row(entry), entered_rows),
            "entry_close": np.where(entered_rows, per_row(entry_close), np.nan),
            "exit_date": book.session_dates(exit_.ravel(), ok),
            "exit_close": np.where(ok, exit_close.ravel(), np.nan),
            "return": ret,
            "directional_return": directional,
            "hit": pd.arrays.BooleanArray(directional > 0, np.isnan(directional)),
            "reason": REASONS[reason],
        },
        columns=FORWARD_COLUMNS,
    )
    return out


class _BarBook:
    """Bars indexed for vectorized look-ups of a symbol's close at a session number."""

    def __init__(self, bars: pd.DataFrame, as_of_ns: int):
        require_columns(bars, BAR_COLUMNS, "bars")
        codes, self.symbols = _upper_codes(bars["symbol"])
        sessions, session = _session_dates(bars["date"])
        closes = (pd.DatetimeIndex(sessions).tz_localize(EXCHANGE_TZ) + SESSION_CLOSE).asi8
        closed = int(np.searchsorted(closes, as_of_ns, side="right"))  # sessions over by as_of
        codes = np.where(session < closed, codes, -1)  # an unfinished bar is no one's bar
        sessions = sessions[:closed]
        self.sessions = pd.DatetimeIndex(sessions).tz_localize(EXCHANGE_TZ)  # midnight New York
        self.close_ns = closes[:closed]
        self.first_open_ns = self.sessions[0].value if len(sessions) else np.iinfo(np.int64).min
        self.n_sessions = len(sessions)
        keys = codes.astype(np.int64) * self.n_sessions + session
        # Bars grouped by symbol in date order (as Session.daily_bars gives them) need no sort.
        presorted = bool(np.all(keys[1:] >= keys[:-1]))
        order = np.arange(len(keys)) if presorted else np.argsort(keys, kind="stable")
        order = order[codes[order] >= 0]  # a bar without a symbol is no one's bar
        keys = keys[order]
        dup = np.flatnonzero(keys[1:] == keys[:-1])
        if len(dup):
            row = order[dup[0]]
            raise ValueError(
                f"bars have {len(dup)} duplicate (symbol, date) rows, e.g. "
                f"{bars['symbol'].iloc[row]} on {pd.Timestamp(sessions[session[row]]).date()}; "
                "keep one bar per symbol and session."
            )
        close = pd.to_numeric(bars["close"], errors="coerce").to_numpy(dtype=float)[order]
        usable = np.isfinite(close) & (close > 0)
        self.keys, self.close = keys[usable], close[usable]

    def symbol_codes(self, tickers: pd.Series) -> np.ndarray:
        """Index of each ticker in the bars' symbols (case-insensitive), -1 when absent."""
        codes, names = _upper_codes(tickers)
        found = pd.Index(self.symbols).get_indexer(names)
        return np.append(found, -1)[codes]  # -1 (missing) stays -1

    def close_at(self, sym: np.ndarray, session: np.ndarray) -> np.ndarray:
        """Close of symbol ``sym`` at session number ``session``; NaN where there is none."""
        valid = (sym >= 0) & (session < self.n_sessions)
        if not len(self.keys):
            return np.full(len(sym), np.nan)
        key = np.where(valid, sym.astype(np.int64) * self.n_sessions + session, -1)
        pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        return np.where(valid & (self.keys[pos] == key), self.close[pos], np.nan)

    def session_dates(self, session: np.ndarray, mask: np.ndarray) -> pd.DatetimeIndex:
        """Session dates (midnight New York) for session numbers, NaT where ``mask`` is false."""
        if not len(self.sessions):
            return pd.DatetimeIndex([pd.NaT] * len(session), dtype=self.sessions.dtype)
        return self.sessions.take(np.where(mask, session, 0)).where(mask)


def _upper_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Factorize stripped upper-case text: (code per row, -1 for missing; unique names)."""
    codes, uniques = pd.factorize(values)
    names = pd.Index(uniques).astype(str).str.strip().str.upper()
    merged, names = pd.factorize(names)
    return np.append(merged, -1)[codes], np.asarray(names)  # -1 stays -1


def _sides(actions: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(+1 BUY, -1 SELL, 0 HOLD, NaN otherwise; the action in upper case) per row."""
    codes, names = _upper_codes(actions)
    # Code -1 (a missing value) picks the entry appended to each per-name table.
    side = np.append(pd.Index(names).map(SIDES).to_numpy(float, na_value=np.nan), np.nan)
    return side[codes], np.append(names.astype(object), None)[codes]


def _session_dates(dates: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct session dates as naive datetime64[ns] midnight, index of each bar's)."""
    codes, uniques = pd.factorize(dates)
    if isinstance(uniques, pd.DatetimeIndex):
        days = (uniques.tz_localize(None) if uniques.tz is not None else uniques).normalize()
    else:
        try:
            days = pd.DatetimeIndex(pd.to_datetime(pd.Index(uniques))).normalize()
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"bars 'date' must be dates or timestamps ({exc}); convert the column first."
            ) from exc
        if days.tz is not None:
            days = days.tz_localize(None)
    if codes.min(initial=0) < 0 or days.hasnans:
        raise ValueError(
            "bars have a missing 'date'; drop those rows or fill in their session date."
        )
    sessions, index = np.unique(days.as_unit("ns").asi8.view("datetime64[ns]"), return_inverse=True)
    return sessions, index[codes]


def _as_of(as_of) -> int:
    """``as_of`` (default now) as int64 ns since the epoch."""
    when = pd.Timestamp.now("UTC") if as_of is None else pd.Timestamp(as_of)
    if when.tz is None:
        raise ValueError(
            f"as_of must be tz-aware, not {as_of!r}; e.g. pd.Timestamp(..., tz='UTC')."
        )
    return when.as_unit("ns").value


def _utc_nanoseconds(created: pd.Series) -> np.ndarray:
    """created_at as int64 ns since the epoch (UTC); NaT as the int64 minimum."""
    if not isinstance(created.dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"decisions 'created_at' must be tz-aware timestamps, not {created.dtype}; "
            "use load_decisions, or .dt.tz_localize('UTC') if they are UTC."
        )
    return created.dt.tz_convert("UTC").array.as_unit("ns").asi8


def _check_horizons(horizons) -> tuple[int, ...]:
    values = tuple(horizons)
    if (
        not values
        or any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0 for v in values)
        or len(set(values)) != len(values)
    ):
        raise ValueError(
            f"horizons must be distinct positive whole numbers of sessions, got {values!r}."
        )
    return tuple(int(v) for v in values)


def require_columns(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    """Raise ValueError naming the ``columns`` that ``frame`` (called ``name``) lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the {name} frame lacks the column(s) {', '.join(missing)}; "
            f"it needs {', '.join(columns)}."
        )


# --------------------------------------------------------------------------- summaries


def hit_rate(forward: pd.DataFrame) -> pd.DataFrame:
    """Hit rate per horizon for BUY, SELL and both ("all"); HOLDs are left out.

    Columns: ``horizon``, ``decision``, ``decisions`` (rows of that side), ``evaluated`` (with
    a return), ``hits``, ``hit_rate`` (hits / evaluated, a fraction; NaN if none evaluated),
    ``mean_return`` (mean directional return, a fraction).
    """
    d = _directional(forward)
    stats = {
        "decisions": ("evaluated", "size"),
        "evaluated": ("evaluated", "sum"),
        "hits": ("hit", "sum"),
        "mean_return": ("directional_return", "mean"),
    }
    overall = d.groupby("horizon").agg(**stats)
    overall.index = pd.MultiIndex.from_product([overall.index, ["all"]])
    out = pd.concat([d.groupby(["horizon", "decision"]).agg(**stats), overall])
    index = pd.MultiIndex.from_product(
        [_horizons_of(forward), ["BUY", "SELL", "all"]], names=["horizon", "decision"]
    )
    out = out.reindex(index)
    counts = ["decisions", "evaluated", "hits"]
    out[counts] = out[counts].fillna(0).astype(np.int64)
    out["hit_rate"] = out["hits"] / out["evaluated"].where(out["evaluated"] > 0)
    return out.reset_index()[
        ["horizon", "decision", "decisions", "evaluated", "hits", "hit_rate", "mean_return"]
    ]


def returns_by_decile(forward: pd.DataFrame) -> pd.DataFrame:
    """Mean directional return per horizon and confidence decile of the 0-100 scale.

    Deciles are fixed: 0 is confidence [0, 10), ..., 9 is [90, 100] (not quantiles of the
    sample, so tables of different batches line up). Every decile has a row; an empty one has
    ``evaluated`` 0 and NaN figures. Columns: ``horizon``, ``decile``, ``confidence_low``,
    ``confidence_high``, ``evaluated``, ``mean_return``, ``median_return`` (fractions),
    ``hit_rate`` (a fraction), ``mean_confidence`` (0-100).
    """
    out = _by_confidence(forward, 10).rename(columns={"bucket": "decile"})
    return out[
        [
            "horizon",
            "decile",
            "confidence_low",
            "confidence_high",
            "evaluated",
            "mean_return",
            "median_return",
            "hit_rate",
            "mean_confidence",
        ]
    ]


def calibration(forward: pd.DataFrame, buckets: int = 10) -> pd.DataFrame:
    """Stated confidence against observed hit rate, per horizon and confidence bucket.

    ``buckets`` equal slices of 0-100 (the last includes 100). Columns: ``horizon``,
    ``bucket``, ``confidence_low``, ``confidence_high``, ``evaluated``, ``stated`` (mean
    confidence / 100), ``observed`` (hit rate), ``gap`` (observed - stated); all fractions.
    A well-calibrated source has ``observed`` close to ``stated`` in every bucket.
    """
    if isinstance(buckets, bool) or not isinstance(buckets, int | np.integer) or buckets < 1:
        raise ValueError(f"buckets must be a whole number >= 1, got {buckets!r}.")
    out = _by_confidence(forward, int(buckets))
    out["stated"] = out["mean_confidence"] / 100
    out["observed"] = out["hit_rate"]
    out["gap"] = out["observed"] - out["stated"]
    return out[
        [
            "horizon",
            "bucket",
            "confidence_low",
            "confidence_high",
            "evaluated",
            "stated",
            "observed",
            "gap",
        ]
    ]


def brier_score(forward: pd.DataFrame) -> pd.DataFrame:
    """Brier score of stated confidence as the probability of a hit, per horizon.

    Columns: ``horizon``, ``evaluated``, ``brier`` (mean of (confidence/100 - hit)^2; 0 is
    perfect, 0.25 is a constant 50 %), ``base_rate`` (hit rate), ``brier_reference`` (the
    score of always stating the base rate: base_rate x (1 - base_rate)) and ``skill``
    (1 - brier / brier_reference; > 0 beats the base rate, NaN when the reference is 0).
    """
    d = _directional(forward)
    d = d[d["evaluated"]]
    d = d.assign(error=(d["confidence"] / 100 - d["hit"]) ** 2)
    out = d.groupby("horizon").agg(
        evaluated=("error", "size"), brier=("error", "mean"), base_rate=("hit", "mean")
    )
    out = out.reindex(pd.Index(_horizons_of(forward), name="horizon"))
    out["evaluated"] = out["evaluated"].fillna(0).astype(np.int64)
    out["brier_reference"] = out["base_rate"] * (1 - out["base_rate"])
    out["skill"] = 1 - out["brier"] / out["brier_reference"].where(out["brier_reference"] > 0)
    return out.reset_index()


def _directional(forward: pd.DataFrame) -> pd.DataFrame:
    """BUY and SELL rows with plain columns: evaluated (bool), hit (float 1/0, NaN if none)."""
    d = forward.loc[
        forward["decision"].isin(["BUY", "SELL"]),
        ["horizon", "decision", "confidence", "directional_return"],
    ]
    evaluated = d["directional_return"].notna()
    return d.assign(
        evaluated=evaluated, hit=(d["directional_return"] > 0).astype(float).where(evaluated)
    )


def _by_confidence(forward: pd.DataFrame, buckets: int) -> pd.DataFrame:
    """Evaluated BUY/SELL rows grouped by horizon and equal-width confidence bucket."""
    d = _directional(forward)
    d = d[d["evaluated"]]
    width = 100 / buckets
    bucket = np.minimum(np.floor(d["confidence"].to_numpy() / width), buckets - 1).astype(np.int64)
    out = (
        d.assign(bucket=bucket)
        .groupby(["horizon", "bucket"])
        .agg(
            evaluated=("hit", "size"),
            mean_return=("directional_return", "mean"),
            median_return=("directional_return", "median"),
            hit_rate=("hit", "mean"),
            mean_confidence=("confidence", "mean"),
        )
    )
    index = pd.MultiIndex.from_product(
        [_horizons_of(forward), range(buckets)], names=["horizon", "bucket"]
    )
    out = out.reindex(index).reset_index()
    out["evaluated"] = out["evaluated"].fillna(0).astype(np.int64)
    out.insert(2, "confidence_low", out["bucket"] * width)
    out.insert(3, "confidence_high", (out["bucket"] + 1) * width)
    return out


def _horizons_of(forward: pd.DataFrame) -> list[int]:
    """Horizons in the order they first appear in a forward-returns frame."""
    return [int(h) for h in pd.unique(forward["horizon"])]


# --------------------------------------------------------------------------- P&L

PNL_COLUMNS = [
    "decision_id",
    "ticker",
    "decision",
    "horizon",
    "quantity",
    "entry_close",
    "exit_close",
    "gross_pnl",
    "commission",
    "net_pnl",
    "reason",
]


def simulated_pnl(forward: pd.DataFrame, max_position_size: float = 10_000.0) -> pd.DataFrame:
    """What the planner's base size would have made, per (decision, horizon), in USD.

    ``quantity`` = +/- `ibkr_nb.sizing.base_quantity(current_price, confidence,
    max_position_size)` (+ BUY, - SELL, 0 HOLD): the size the planner derives from the
    decision's own price, before the NAV, risk and cash caps (which need an account). Bought
    or sold at the entry close, closed at the exit close; stops and targets are not simulated.
    ``gross_pnl`` = quantity x (exit_close - entry_close); ``commission`` = IBKR's fixed
    schedule on both legs (`ibkr_nb.commissions.stock_commission`, >= 0); ``net_pnl`` =
    gross_pnl - commission. A HOLD trades nothing (all zero); a row that cannot be evaluated
    has quantity 0, NaN money and the forward row's ``reason`` (or one about current_price).
    """
    side, _ = _sides(forward["decision"])
    size = base_quantity(forward["current_price"], forward["confidence"], max_position_size)
    trades = side != 0
    reason = forward["reason"].to_numpy(dtype=object)
    reason = np.where((reason == "") & trades & (size == 0), REASONS[BAD_PRICE], reason)
    quantity = np.where(trades & (reason == ""), side * size, 0.0)
    entry = forward["entry_close"].to_numpy(dtype=float)
    exit_ = forward["exit_close"].to_numpy(dtype=float)
    bad = reason != ""
    gross = np.where(bad, np.nan, np.where(trades, quantity * (exit_ - entry), 0.0))
    fee = np.where(
        trades, stock_commission(quantity, entry) + stock_commission(quantity, exit_), 0.0
    )
    fee = np.where(bad, np.nan, fee)
    return pd.DataFrame(
        {
            "decision_id": forward["decision_id"].to_numpy(),
            "ticker": forward["ticker"].to_numpy(),
            "decision": forward["decision"].to_numpy(),
            "horizon": forward["horizon"].to_numpy(),
            "quantity": quantity.astype(np.int64),
            "entry_close": np.where(bad, np.nan, entry),
            "exit_close": np.where(bad, np.nan, exit_),
            "gross_pnl": gross,
            "commission": fee,
            "net_pnl": gross - fee,
            "reason": reason,
        },
        columns=PNL_COLUMNS,
    )


def pnl_totals(pnl: pd.DataFrame) -> pd.DataFrame:
    """Totals of `simulated_pnl` per horizon: ``trades`` (evaluated BUY/SELL rows),
    ``gross_pnl``, ``commission``, ``net_pnl`` (USD sums), ``winners`` (net_pnl > 0)."""
    traded = pnl[(pnl["quantity"] != 0) & pnl["net_pnl"].notna()]
    out = (
        traded.assign(winner=traded["net_pnl"] > 0)
        .groupby("horizon")
        .agg(
            trades=("net_pnl", "size"),
            gross_pnl=("gross_pnl", "sum"),
            commission=("commission", "sum"),
            net_pnl=("net_pnl", "sum"),
            winners=("winner", "sum"),
        )
    )
    out = out.reindex(pd.Index(_horizons_of(pnl), name="horizon"))
    counts = ["trades", "winners"]
    out[counts] = out[counts].fillna(0).astype(np.int64)
    money = ["gross_pnl", "commission", "net_pnl"]
    out[money] = out[money].fillna(0.0)
    return out.reset_index()
