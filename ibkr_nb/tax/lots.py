"""Tax lots: match closing trades to open lots, then apply wash sales.

`match_lots(trades)` takes the normalised trades frame (see `importers`) and returns a
`LotResult` with one `realized` row per (closing trade, lot, wash-sale segment) and the
`open_lots` left at the end. Money is USD (price x fx_rate), kept at full float precision;
rounding to cents happens only in `reports`.

Conventions:
- Quantities are signed: + long, - short. Internally they are integers in micro-shares
  (1e-6 share), so positions, zero crossings and lot splits are exact; fractional shares work.
- A buy's commission adds to its basis; a sale's commission reduces its proceeds.
- A trade that takes a position through zero (long to short or back) is split into the part
  that closes and the part that opens, commission shared pro rata by quantity.
- A split row (kind="split", ratio = new shares per old share) changes the quantity and
  per-share basis of every lot of that symbol and keeps their dates: quantities are matched
  in post-split units and reported in the units current at each sale.
- Lots are matched per (account, symbol); wash sales look across all accounts in the frame
  (pass one taxpayer's account set per call).
- Long-term iff sold more than one year after the holding period starts: the holding period
  counts from the day after acquisition, so a lot bought 2024-02-29 is long-term when sold on
  2025-03-01 or later. Short sales are always short-term (IRS Pub. 550, "Short Sales").

Lot matching methods follow IBKR's Tax Optimizer definitions ("Lot-Matching Methods",
https://www.ibkrguides.com/taxoptimizer/ibto/lotmatchingmethods.htm):
- fifo: sales are paired with the earliest purchases sequentially (the default).
- lifo: each sale is paired with the most recent possible purchase.
- highest_cost: of all possible matches, the largest loss if any match gives a loss,
  else the smallest gain.
- specific: the caller names the lots per closing trade (`lot_selection`).
- max_lt_gain: maximise long-term gain per share, then short-term gain, then minimise
  short-term loss, then minimise long-term loss.
- max_lt_loss: maximise long-term loss, then short-term loss, then minimise short-term gain,
  then minimise long-term gain.
- max_st_gain: maximise short-term gain, then long-term gain, then minimise long-term loss,
  then minimise short-term loss.
- max_st_loss: maximise short-term loss, then long-term loss, then minimise long-term gain,
  then minimise short-term gain.
- average: average basis (IRS Pub. 550, "Average basis"): every sale uses the average cost
  of the shares held; the shares acquired first are the ones sold, for holding periods.
Lot choice uses the lots' cost before wash-sale adjustments; ties go to the earliest lot.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ibkr_nb.tax.options import exercise_pairs, fold_premiums
from ibkr_nb.tax.trades import DEFAULT_TZ
from ibkr_nb.tax.wash import Lots, Pieces, Segments, plain_segments, wash_sale_segments

MICRO = 1_000_000  # internal quantity unit: one micro-share
METHODS = (
    "fifo",
    "lifo",
    "highest_cost",
    "specific",
    "average",
    "max_lt_gain",
    "max_lt_loss",
    "max_st_gain",
    "max_st_loss",
)
# For the max/min methods: tier of a candidate lot by (long_term, gain >= 0), and the sign that
# orders lots within a tier (-1: largest gain per share first, +1: largest loss first).
_TIERS: dict[str, tuple[dict[tuple[bool, bool], int], int]] = {
    "max_lt_gain": ({(True, True): 0, (False, True): 1, (False, False): 2, (True, False): 3}, -1),
    "max_lt_loss": ({(True, False): 0, (False, False): 1, (False, True): 2, (True, True): 3}, 1),
    "max_st_gain": ({(False, True): 0, (True, True): 1, (True, False): 2, (False, False): 3}, -1),
    "max_st_loss": ({(False, False): 0, (True, False): 1, (True, True): 2, (False, True): 3}, 1),
}
REALIZED_COLUMNS = [
    "account",
    "symbol",
    "lot_id",
    "trade_id",
    "position",
    "quantity",
    "date_acquired",
    "date_sold",
    "holding_period_start",
    "proceeds",
    "cost_basis",
    "wash_sale_adjustment",
    "adjustment_code",
    "adjustment_amount",
    "gain_loss",
    "term",
    "datetime_acquired",
    "datetime_sold",
    "permanently_disallowed",
    "ira",
]
OPEN_LOT_COLUMNS = [
    "account",
    "symbol",
    "lot_id",
    "position",
    "quantity",
    "date_acquired",
    "holding_period_start",
    "cost_basis",
    "proceeds",
    "wash_sale_adjustment",
    "datetime_acquired",
]


@dataclass(frozen=True)
class LotResult:
    """Realized rows and open lots from `match_lots`.

    realized: one row per closed (lot, closing trade) piece, split further where the shares
      carry different wash-sale adjustments. `quantity` is signed (+ long lot sold, - short lot
      covered) in shares current at the sale; `proceeds` and `cost_basis` are USD totals,
      `cost_basis` including `wash_sale_adjustment` (disallowed losses carried in from earlier
      sales); `adjustment_code` is "W" and `adjustment_amount` (>= 0) the loss disallowed on
      this row; `gain_loss = proceeds - cost_basis + adjustment_amount`. For a short lot,
      `proceeds` is what the short sale brought in and `cost_basis` what covering it cost.
      `permanently_disallowed` is the part of `adjustment_amount` washed by shares bought in
      an IRA (never added to any basis); `ira` marks sales inside an IRA account.
    open_lots: what is still held, signed quantity; `cost_basis` is the total basis of a long
      lot including adjustments (for a short lot only its carried adjustment, `proceeds` its
      short-sale proceeds); `holding_period_start` is the date the holding period counts from
      after wash-sale tacking (the acquisition date when there is none).
    warnings: rows (trade_id, reason) for things the engine worked around.
    asset_categories: symbol -> IBKR asset category (OPT, WAR, ...) of the symbols that are
      not stock (their quantities count contracts or warrants, not shares).
    """

    realized: pd.DataFrame
    open_lots: pd.DataFrame
    method: str = "fifo"
    wash_sales: bool = True
    warnings: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["trade_id", "reason"])
    )
    asset_categories: Mapping[str, str] = field(default_factory=dict)


def match_lots(
    trades: pd.DataFrame,
    method: str = "fifo",
    wash_sales: bool = True,
    lot_selection: Mapping[str, Sequence[str]] | None = None,
    tz: str = DEFAULT_TZ,
    ira_accounts: Collection[str] = (),
) -> LotResult:
    """Match closing trades to open lots by `method` and apply the wash-sale rule.

    `trades` is the normalised trades frame; `kind`, `ratio`, `fx_rate`, `commission`,
    `account`, `currency` may be missing (trade, -, 1, 0, "", USD). `lot_selection` (method
    "specific") maps a closing trade_id to the lot ids (opening trade_ids) to take, in order;
    any quantity they do not cover is matched FIFO and reported in `warnings`. Trade dates
    are the calendar dates of `datetime` in `tz`. `ira_accounts` (or a boolean `ira` column)
    names the IRA accounts of the same person: a loss replaced there is disallowed for good,
    and sales inside them are marked `ira` (not reported on Form 8949).
    """
    if method not in METHODS:
        raise ValueError(
            f"unknown lot matching method {method!r}; choose one of {', '.join(METHODS)}."
        )
    trades = _fold_exercises(trades, method, lot_selection, tz)
    book = _Book.from_trades(trades, tz, ira_accounts)
    pieces = book.match_fifo() if method == "fifo" else book.match_loop(method, lot_selection or {})
    segments = (
        wash_sale_segments(book.lots, pieces) if wash_sales else plain_segments(book.lots, pieces)
    )
    return LotResult(
        realized=book.realized_frame(pieces, segments),
        open_lots=book.open_lots_frame(segments),
        method=method,
        wash_sales=wash_sales,
        warnings=pd.DataFrame(book.warnings, columns=["trade_id", "reason"]),
        asset_categories=book.asset_categories(trades),
    )


def _fold_exercises(
    trades: pd.DataFrame,
    method: str,
    lot_selection: Mapping[str, Sequence[str]] | None,
    tz: str,
) -> pd.DataFrame:
    """Trades with exercised and assigned options folded into their stock trades (see
    `options`): the options are matched first, by the same method, to learn each exercised
    contract's premium."""
    pairs = exercise_pairs(trades)
    if pairs.empty:
        return trades
    frame = trades.reset_index(drop=True)
    options = frame[frame["asset_category"].isin(["OPT", "WAR"])].assign(fx_rate=1.0)
    realized = match_lots(options, method, False, lot_selection, tz).realized
    option_ids = frame["trade_id"].to_numpy()[pairs["option_row"].to_numpy()]
    mine = realized[realized["trade_id"].isin(option_ids)]
    result = (mine["proceeds"] - mine["cost_basis"]).groupby(mine["trade_id"]).sum()
    consumed = mine[["lot_id", "quantity"]]
    return fold_premiums(frame, pairs, result.reindex(option_ids).fillna(0.0).to_numpy(), consumed)


def is_long_term(acquired: np.ndarray, sold: np.ndarray) -> np.ndarray:
    """True where `sold` is more than one year after `acquired` (datetime64[D] arrays, or
    day numbers: days since 1970-01-01).

    IRS Pub. 544 / 550: the holding period starts the day after acquisition, and a sale is
    long-term from the first anniversary of that day: held through the same calendar date a
    year later is one year, not more. So a lot bought 2023-02-28 (holding from 2023-03-01)
    sold 2024-02-29 is short-term, long-term from 2024-03-01; one bought 2024-02-29 (holding
    from 2024-03-01) is long-term from 2025-03-01. Compares yyyymmdd integers.
    """
    day_after = np.asarray(acquired, dtype="datetime64[D]") + np.timedelta64(1, "D")
    return _ymd(sold) >= _ymd(day_after) + 10_000


def _ymd(days: np.ndarray) -> np.ndarray:
    """Calendar dates as integers yyyymmdd, through a table of the days spanned."""
    d = np.asarray(days, dtype="datetime64[D]").view(np.int64)
    first, last = (d.min(), d.max()) if d.size else (0, -1)
    table = np.arange(first, last + 1).astype("datetime64[D]")
    years = table.astype("datetime64[Y]")
    months = table.astype("datetime64[M]")
    y = years.astype(np.int64) + 1970
    m = (months - years).astype(np.int64) + 1
    day = (table - months).astype(np.int64) + 1
    return (y * 10_000 + m * 100 + day).astype(np.int32)[d - first]


def _pick(mask: np.ndarray, yes: str, no: str) -> pd.api.extensions.ExtensionArray:
    """A string column of two values, sharing two string objects (no copy per row)."""
    return pd.array([no, yes], dtype="str").take(mask.astype(np.intp))


def _dates(days: np.ndarray) -> np.ndarray:
    """Day numbers (days since 1970-01-01, int64) as datetime64[s] dates, converted in place
    (the caller's array becomes the dates: no fresh memory for millions of rows)."""
    days *= 86_400
    return days.view("datetime64[s]")


@dataclass
class _Book:
    """Trades expanded into opening and closing rows, with lots and closes as arrays."""

    # Per expanded row, key-contiguous and in time order within a key: key (one code per
    # (account, symbol)), part (signed micro-shares), unit (USD per micro-share), day (trade
    # date, days since epoch), event (global event order), ts_ns (UTC ns), factor (shares of
    # the latest split era per share at this row).
    rows: dict[str, np.ndarray]
    lots: Lots
    close_idx: np.ndarray  # row index of each closing row, key-contiguous and time ordered
    warnings: list[tuple[str, str]]
    # account/symbol/trade_id: (code per row, the strings the codes index)
    labels: dict[str, tuple[np.ndarray, pd.api.extensions.ExtensionArray]]
    tz: object

    def _label(self, column: str, row: np.ndarray) -> pd.api.extensions.ExtensionArray:
        """A string column for the given rows (gathered through codes: cheap for many rows)."""
        codes, table = self.labels[column]
        return table.take(codes[row])

    def asset_categories(self, trades: pd.DataFrame) -> dict[str, str]:
        """Symbol -> asset category of `trades` (the frame the book was built from) for the
        symbols that are not stock, read at each symbol's first trade."""
        if "asset_category" not in trades:
            return {}
        codes, table = self.labels["symbol"]  # per book row
        trade = self.labels["trade_id"][0]  # the input row of each book row
        first = np.full(len(table), -1, dtype=np.int64)
        first[codes[::-1]] = trade[::-1]  # the earliest row wins
        category = trades["asset_category"].to_numpy(dtype=object)
        return {
            str(table[k]): c
            for k in np.flatnonzero(first >= 0)
            if isinstance(c := category[first[k]], str) and c not in ("", "STK")
        }

    def _timestamps(self, row: np.ndarray) -> pd.api.extensions.ExtensionArray:
        """The rows' trade times, timezone-aware (ns)."""
        return pd.array(self.rows["ts_ns"][row], dtype=pd.DatetimeTZDtype("ns", self.tz))

    @classmethod
    def from_trades(
        cls, trades: pd.DataFrame, tz: str, ira_accounts: Collection[str] = ()
    ) -> _Book:
        col = _columns(trades)
        # Rows carry integer codes into string tables (cheap to reorder and gather): account
        # and symbol factorized, trade_id by input position (ids are mostly unique).
        labels = {c: col[c] for c in ("account", "symbol")}
        labels["trade_id"] = (np.arange(len(trades)), pd.array(col["trade_id"], dtype="str"))
        sym_code = labels["symbol"][0]
        ts = col["datetime"].dt.tz_convert(tz)
        ts_ns = ts.dt.as_unit("ns").astype("int64").to_numpy()
        day = ts.dt.tz_localize(None).to_numpy().astype("datetime64[D]").astype(np.int64)
        is_split = col["is_split"]
        # (symbol, time), splits first at equal times; the sort is stable (input order).
        order = np.lexsort((~is_split, ts_ns)) if is_split.any() else _stable_order(ts_ns)
        order = order[_stable_order(sym_code[order])]
        split = is_split[order]
        factor = np.ones(len(order))
        if split.any():  # shares of the latest split era per share of this row's era
            ratio = np.where(split, col["ratio"][order], 1.0)
            rev = pd.Series(ratio[::-1]).groupby(sym_code[order][::-1]).cumprod().to_numpy()
            factor = rev[::-1] / ratio
        event = np.flatnonzero(~split)  # position in the history, splits included
        src = order[event]  # input row of each trade
        factor = factor[event]
        qty = np.rint(col["quantity"][src] * factor * MICRO).astype(np.int64)
        tiny = qty == 0
        warnings = [
            (t, "quantity rounds to zero micro-shares; ignored")
            for t in col["trade_id"].iloc[src[tiny]]
        ]
        if tiny.any():
            src, event, factor, qty = (a[~tiny] for a in (src, event, factor, qty))
        key = pd.factorize(
            labels["account"][0][src] * (sym_code.max(initial=0) + 1) + sym_code[src]
        )[0]  # one code per (account, symbol), numbered in order of appearance
        by_key = _stable_order(key)  # rows are already in event order
        take, part, is_open = _split_flips(qty[by_key], key[by_key])
        take = by_key[take]  # index into the trades of each row
        trade = src[take]  # input row of each row
        rows = {
            "key": key[take],
            "part": part,
            "unit": _unit_values(col, trade, part, qty[take]),
            "day": day[trade],
            "event": event[take],
            "ts_ns": ts_ns[trade],
            "factor": factor[take],
        }
        open_idx = np.flatnonzero(is_open)
        sym = sym_code[trade]
        lots = Lots(
            row=open_idx,
            qty=np.abs(part[open_idx]),
            direction=np.sign(part[open_idx]),
            unit=rows["unit"][open_idx],
            day=rows["day"][open_idx],
            order=rows["event"][open_idx],
            wash_key=sym[open_idx],
            ira=(_in_ira(labels["account"], ira_accounts) | col["ira"])[trade[open_idx]],
        )
        codes = {"account": labels["account"][0][trade], "symbol": sym, "trade_id": trade}
        return cls(
            rows=rows,
            lots=lots,
            close_idx=np.flatnonzero(~is_open),
            warnings=warnings,
            labels={c: (codes[c], table) for c, (_, table) in labels.items()},
            tz=ts.dt.tz,
        )

    # ------------------------------------------------------------------ matching

    def match_fifo(self) -> Pieces:
        """FIFO for all keys at once: the c-th share closed in a key is its c-th share opened.

        Every position returns to zero before it changes side, so per key the cumulative
        opened and closed quantities line up; pieces are the overlaps of those intervals.
        """
        keys = self.rows["key"]
        lot_keys = keys[self.lots.row]
        lot_end = np.cumsum(self.lots.qty)  # global coordinate: keys laid end to end
        key_base = np.zeros(keys.max() + 1 if len(keys) else 0, dtype=np.int64)
        first = np.r_[True, lot_keys[1:] != lot_keys[:-1]] if len(lot_keys) else np.zeros(0, bool)
        key_base[lot_keys[first]] = (lot_end - self.lots.qty)[first]
        cq = np.abs(self.rows["part"][self.close_idx])
        ck = keys[self.close_idx]
        c_end = _group_cumsum(cq, ck) + key_base[ck]
        c_start = c_end - cq
        first_lot = np.searchsorted(lot_end, c_start, side="right")
        last_lot = np.searchsorted(lot_end, c_end - 1, side="right")
        n = last_lot - first_lot + 1
        close = np.repeat(np.arange(len(cq)), n)
        lot = first_lot[close] + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
        lot_start = lot_end[lot] - self.lots.qty[lot]
        start = np.maximum(lot_start, c_start[close])
        qty = np.minimum(lot_end[lot], c_end[close]) - start
        return self._pieces(close, lot, qty, start - lot_start, self.lots.unit[lot])

    def match_loop(self, method: str, lot_selection: Mapping[str, Sequence[str]]) -> Pieces:
        """Lot-by-lot matching for the methods that choose among all open lots."""
        rows = self.rows
        unit = rows["unit"].tolist()
        part = rows["part"].tolist()
        day = rows["day"]
        keys = rows["key"].tolist()
        trade_ids = self._label("trade_id", np.arange(len(part))).tolist()
        lot_of_row = dict(zip(self.lots.row.tolist(), range(len(self.lots.row)), strict=True))
        close_of_row = dict(zip(self.close_idx.tolist(), range(len(self.close_idx)), strict=True))
        lot_days = self.lots.day.astype("datetime64[D]")
        out_close: list[int] = []
        out_lot: list[int] = []
        out_qty: list[int] = []
        out_offset: list[int] = []
        out_unit: list[float] = []
        open_lots: list[int] = []  # lot indices of the current key, in acquisition order
        lot_qty = self.lots.qty.tolist()
        remaining = list(lot_qty)
        lot_unit = self.lots.unit.tolist()
        current_key = -1
        for r in range(len(part)):
            if keys[r] != current_key:
                current_key, open_lots = keys[r], []
            if r in lot_of_row:
                open_lots.append(lot_of_row[r])
                continue
            need = -part[r] if part[r] < 0 else part[r]
            direction = -1 if part[r] > 0 else 1  # direction of the lots this row closes
            if method == "average":
                held = sum(remaining[i] for i in open_lots)
                avg = sum(remaining[i] * lot_unit[i] for i in open_lots) / held
                for i in open_lots:
                    lot_unit[i] = avg
            selection = list(lot_selection.get(trade_ids[r], ()))
            chosen = self._choose(
                method,
                open_lots,
                remaining,
                lot_unit,
                lot_days,
                unit[r],
                day[r],
                direction,
                selection,
                trade_ids,
            )
            if method == "specific" and trade_ids[r] in lot_selection:
                self._check_selection(trade_ids[r], selection, chosen, remaining, need, trade_ids)
            for i in chosen:
                take = min(need, remaining[i])
                if take <= 0:
                    continue
                out_close.append(close_of_row[r])
                out_lot.append(i)
                out_qty.append(take)
                out_offset.append(lot_qty[i] - remaining[i])
                out_unit.append(lot_unit[i])
                remaining[i] -= take
                need -= take
                if need == 0:
                    break
            open_lots = [i for i in open_lots if remaining[i] > 0]
        self.lots.unit = np.array(lot_unit)  # average cost re-prices the lots still held
        return self._pieces(
            np.array(out_close, dtype=np.int64),
            np.array(out_lot, dtype=np.int64),
            np.array(out_qty, dtype=np.int64),
            np.array(out_offset, dtype=np.int64),
            np.array(out_unit, dtype=float),
        )

    def _pieces(
        self,
        close: np.ndarray,
        lot: np.ndarray,
        qty: np.ndarray,
        offset: np.ndarray,
        open_unit: np.ndarray,
    ) -> Pieces:
        row = self.close_idx[close]
        return Pieces(
            close=close,
            lot=lot,
            qty=qty,
            open_unit=open_unit,
            offset=offset,
            close_unit=self.rows["unit"][row],
            day=self.rows["day"][row],
            event=self.rows["event"][row],
        )

    def _check_selection(
        self,
        trade_id: str,
        selection: list[str],
        chosen: list[int],
        remaining: list[int],
        need: int,
        trade_ids: list[str],
    ) -> None:
        """Warn when named lots are not open or do not cover the closing quantity."""
        open_ids = {trade_ids[self.lots.row[i]]: i for i in chosen}
        for lot_id in selection:
            if lot_id not in open_ids:
                self.warnings.append((trade_id, f"lot {lot_id} is not open at this trade; ignored"))
        covered = sum(remaining[open_ids[s]] for s in set(selection) if s in open_ids)
        if covered < need:
            self.warnings.append(
                (
                    trade_id,
                    f"named lots cover {covered / MICRO:g} of {need / MICRO:g} shares; the rest matched FIFO",
                )
            )

    def _choose(
        self,
        method: str,
        open_lots: list[int],
        remaining: list[int],
        lot_unit: list[float],
        lot_days: np.ndarray,
        close_unit: float,
        close_day: int,
        direction: int,
        selection: list[str],
        trade_ids: list[str],
    ) -> list[int]:
        """Open lots in the order `method` takes them for one closing row."""
        if method in ("fifo", "average"):
            return open_lots
        if method == "lifo":
            return open_lots[::-1]
        if method == "specific":
            lot_id = {trade_ids[self.lots.row[i]]: i for i in open_lots}
            named = [lot_id[s] for s in selection if s in lot_id]
            return named + [i for i in open_lots if i not in named]
        # Gain per micro-share of matching each lot: long lots sell at close_unit, short lots
        # are covered at close_unit.
        gains = [(close_unit - lot_unit[i]) * direction for i in open_lots]
        if method == "highest_cost":
            return [
                i for _, _, i in sorted(zip(gains, range(len(open_lots)), open_lots, strict=True))
            ]
        tiers, sign = _TIERS[method]
        sold = np.datetime64(int(close_day), "D")
        long_term = [direction > 0 and bool(is_long_term(lot_days[i], sold)) for i in open_lots]
        keyed = [
            (tiers[(lt, g >= 0)], sign * g, pos, i)
            for pos, (i, g, lt) in enumerate(zip(open_lots, gains, long_term, strict=True))
        ]
        return [i for *_, i in sorted(keyed)]

    # ------------------------------------------------------------------ output

    def realized_frame(self, pieces: Pieces, seg: Segments) -> pd.DataFrame:
        """Realized rows from wash-sale segments of pieces (see `LotResult`), in their time
        order. Takes `seg`'s sold arrays as columns (its `hps` become dates in place)."""
        p = seg.piece
        qty = seg.qty
        is_long = (self.lots.direction[pieces.lot] > 0)[p]
        close_row = self.close_idx[pieces.close][p]
        open_row = self.lots.row[pieces.lot][p]
        ira = self.lots.in_ira()[pieces.lot][p]
        # Columns are computed in place where possible and the frame takes them without
        # copying: with millions of rows, fresh memory (first-touched pages) costs wall time.
        proceeds = pieces.close_unit[p]
        proceeds *= qty
        cost = pieces.open_unit[p]
        cost *= qty
        del p
        short = np.flatnonzero(~is_long)  # a short lot's proceeds come from opening it
        proceeds[short], cost[short] = cost[short], proceeds[short]
        adj_in = seg.adj_in
        cost += adj_in
        disallowed = seg.disallowed
        gain = proceeds - cost
        gain += disallowed
        day = self.rows["day"]
        sold = day[close_row]
        hps = seg.hps
        long_term = is_long & is_long_term(hps, sold)
        quantity = qty / MICRO
        del qty
        np.negative(quantity, out=quantity, where=~is_long)
        quantity /= self.rows["factor"][close_row]
        return pd.DataFrame(
            {
                "account": self._label("account", close_row),
                "symbol": self._label("symbol", close_row),
                "lot_id": self._label("trade_id", open_row),
                "trade_id": self._label("trade_id", close_row),
                "position": _pick(is_long, "long", "short"),
                "quantity": quantity,
                "date_acquired": _dates(day[open_row]),
                "date_sold": _dates(sold),
                "holding_period_start": _dates(hps),
                "proceeds": proceeds,
                "cost_basis": cost,
                "wash_sale_adjustment": adj_in,
                "adjustment_code": _pick(disallowed > 0, "W", ""),
                "adjustment_amount": disallowed,
                "gain_loss": gain,
                "term": _pick(long_term, "long", "short"),
                "datetime_acquired": self._timestamps(open_row),
                "datetime_sold": self._timestamps(close_row),
                "permanently_disallowed": seg.permanently_disallowed(),
                "ira": ira,
            },
            copy=False,
        )

    def open_lots_frame(self, seg: Segments) -> pd.DataFrame:
        """Open lots left after all trades (see `LotResult`)."""
        rows = self.rows
        lot = seg.open_lot
        row = self.lots.row[lot]
        direction = self.lots.direction[lot]
        value = seg.open_qty * self.lots.unit[lot]
        out = pd.DataFrame(
            {
                "account": self._label("account", row),
                "symbol": self._label("symbol", row),
                "lot_id": self._label("trade_id", row),
                "position": _pick(direction > 0, "long", "short"),
                "quantity": direction * seg.open_qty / MICRO,
                "date_acquired": _dates(rows["day"][row]),
                "holding_period_start": _dates(seg.open_hps.copy()),
                "cost_basis": np.where(direction > 0, value, 0.0) + seg.open_adj,
                "proceeds": np.where(direction > 0, np.nan, value),
                "wash_sale_adjustment": seg.open_adj,
                "datetime_acquired": self._timestamps(row),
            }
        )
        order = np.lexsort((lot, self.lots.order[lot]))
        return out.iloc[order].reset_index(drop=True)[OPEN_LOT_COLUMNS]


def _columns(trades: pd.DataFrame) -> dict:
    """The trades' columns, optional ones filled in; raises on missing required ones.

    Numbers as float arrays (quantity in shares, price, commission and fx_rate as given,
    `ratio` for splits), `is_split` a bool array, account and symbol as (codes, table of
    distinct values: a str array), `trade_id` and `datetime` Series.
    """
    missing = [c for c in ("symbol", "datetime", "quantity", "price") if c not in trades]
    if missing:
        raise ValueError(
            f"trades frame lacks column(s) {', '.join(missing)}; load it with ibkr_nb.tax.importers."
        )
    if not isinstance(trades["datetime"].dtype, pd.DatetimeTZDtype):
        raise ValueError(
            "trades 'datetime' must be timezone-aware; parse it with importers.parse_datetimes."
        )
    n = len(trades)
    trades = trades.reset_index(drop=True)
    col: dict = {"datetime": trades["datetime"]}
    # Codes into tables of distinct values: cheap to check, reorder and gather.
    for column in ("account", "symbol"):
        values = trades[column].to_numpy() if column in trades else np.full(n, "", object)
        codes, table = pd.factorize(values)  # a missing value: code -1
        col[column] = (codes, pd.array(table, dtype="str"))
    _refuse_missing_values(trades, col)
    for column, default in (("quantity", None), ("price", None), ("ratio", np.nan)):
        col[column] = (
            trades[column].to_numpy(dtype=float) if column in trades else np.full(n, default)
        )
    for column, default in (("commission", 0.0), ("multiplier", 1.0)):
        values = trades[column].to_numpy(dtype=float) if column in trades else np.full(n, default)
        col[column] = np.where(np.isnan(values), default, values)
    # No USD rate (NaN) stays NaN: such trades get NaN USD figures, never a rate of 1.
    col["fx_rate"] = trades["fx_rate"].to_numpy(dtype=float) if "fx_rate" in trades else np.ones(n)
    col["trade_id"] = (
        trades["trade_id"] if "trade_id" in trades else pd.Series([f"row{i}" for i in range(n)])
    )
    col["ira"] = (
        trades["ira"].fillna(False).to_numpy(dtype=bool) if "ira" in trades else np.zeros(n, bool)
    )
    col["is_split"] = (
        (trades["kind"].fillna("trade") == "split").to_numpy()
        if "kind" in trades
        else np.zeros(n, dtype=bool)
    )
    return col


def _refuse_missing_values(trades: pd.DataFrame, col: dict) -> None:
    """Raise ValueError naming the rows that lack a symbol, date, quantity or price (splits:
    symbol and date), or an account in an account column: they would book to the wrong lot.
    `col` holds the factorized account and symbol (see `_columns`)."""
    trade = (trades["kind"].fillna("trade") != "split") if "kind" in trades else True
    codes, table = col["symbol"]
    empty = np.append(np.asarray(table == "", dtype=bool), True)  # the last entry: code -1
    checks = [
        ("symbol", empty[codes]),
        ("datetime", trades["datetime"].isna()),
        ("quantity", trades["quantity"].isna() & trade),  # a split row carries a ratio
        ("price", trades["price"].isna() & trade),
    ]
    if "account" in trades:
        checks.append(("account", col["account"][0] < 0))
    for column, bad in checks:
        if bad.any():
            rows = trades.index[bad]
            labels = trades["trade_id"][rows] if "trade_id" in trades else rows
            shown = ", ".join(map(str, labels[:5])) + (" ..." if bad.sum() > 5 else "")
            raise ValueError(
                f"{bad.sum()} trade(s) have no {column} ({shown}); load trades with "
                "ibkr_nb.tax.load_trades or an importer, which rejects such rows with a reason."
            )


def _split_flips(qty: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Opening and closing parts of trades (micro-shares, key-contiguous, time ordered): a
    trade through zero becomes close + open.

    Returns per part the index of its trade, `part` (signed micro-shares) and `is_open`.
    """
    pos = _group_cumsum(qty, key)
    before = pos - qty
    flips = (before != 0) & (pos != 0) & (np.sign(pos) == -np.sign(before))
    closes = (before != 0) & (np.sign(qty) == -np.sign(before))
    reps = np.where(flips, 2, 1)
    take = np.repeat(np.arange(len(qty)), reps)
    second = np.zeros(len(take), dtype=bool)
    second[np.cumsum(reps)[flips] - 1] = True
    flip = flips[take]
    part = np.where(flip & ~second, -before[take], qty[take])
    part = np.where(second, pos[take], part)
    return take, part, np.where(flip, second, ~closes[take])


def _unit_values(col: dict, trade: np.ndarray, part: np.ndarray, qty: np.ndarray) -> np.ndarray:
    """USD per micro-share of each part (cost incl. commission for a buy, net proceeds for a
    sale): quantity x price x multiplier +/- commission, times the USD rate; `trade` the
    input rows, `qty` the trades' micro-shares. A part's commission is its share of the
    trade's, pro rata by quantity."""
    size = np.abs(part)
    share = size / np.abs(qty)
    value = np.abs(col["quantity"][trade])
    value *= share
    value *= col["price"][trade]
    value *= col["multiplier"][trade]
    commission = col["commission"][trade]
    commission *= share
    np.negative(commission, out=commission, where=part <= 0)
    value += commission
    value *= col["fx_rate"][trade]
    value /= size
    return value


def _in_ira(account: tuple, ira_accounts: Collection[str]) -> np.ndarray:
    """Per row, whether its account (codes, table) is one of `ira_accounts`."""
    codes, table = account
    return np.isin(table.to_numpy(), list(ira_accounts))[codes]


def _stable_order(values: np.ndarray) -> np.ndarray:
    """`np.argsort(values, kind="stable")`; small non-negative codes are sorted as int16,
    which numpy sorts by radix (several times faster than the general stable sort)."""
    if len(values) and values.min() >= 0 and values.max() < 2**15:
        values = values.astype(np.int16)
    return np.argsort(values, kind="stable")


def _group_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Running sums of integer `values` that restart where `groups` changes (groups are
    contiguous runs)."""
    first = np.ones(len(values), dtype=bool)
    first[1:] = groups[1:] != groups[:-1]
    total = np.cumsum(values)
    before = (total - values)[first]  # sum of the earlier groups
    return total - np.repeat(before, np.diff(np.r_[np.flatnonzero(first), len(values)]))
