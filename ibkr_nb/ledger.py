"""The DuckDB ledger: decisions, order intents, orders with their status history, fills and
commissions, in one file (``IBKR_NB_DB``). Lots and realized gains come from the tax engine
over the ledger's fills.

Write-ahead: an order's *intent* is written before the order is transmitted, so a crash between
the two leaves a trace that ``Session.reconcile`` resolves against the broker. Fills are keyed
by IBKR's ``execId`` (inserted at most once) and commissions by the same key (IBKR reports them
separately).

Two processes may use one file: DuckDB allows one writing process at a time, so every call opens
the file, does its work in one transaction and closes it, retrying on a lock for up to
``lock_timeout`` seconds; reads open it read-only.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from .config import load_settings
from .decisions import DECISION_COLUMNS
from .tax.importers import load_trades
from .tax.lots import LotResult, match_lots

SCHEMA_VERSION = 4
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE decisions (
        decision_id VARCHAR PRIMARY KEY, ticker VARCHAR, decision VARCHAR, confidence DOUBLE,
        current_price DOUBLE, stop_loss DOUBLE, take_profit DOUBLE, reasoning VARCHAR,
        created_at TIMESTAMPTZ, recorded_at TIMESTAMPTZ);
    CREATE TABLE intents (
        order_ref VARCHAR PRIMARY KEY, decision_id VARCHAR, parent_ref VARCHAR, account VARCHAR,
        symbol VARCHAR, action VARCHAR, quantity DOUBLE, order_type VARCHAR, limit_price DOUBLE,
        stop_price DOUBLE, trail_percent DOUBLE, tif VARCHAR, notional DOUBLE,
        position_before DOUBLE, status VARCHAR, order_id BIGINT, perm_id BIGINT, reason VARCHAR,
        created_at TIMESTAMPTZ, transmitted_at TIMESTAMPTZ);
    CREATE TABLE orders (
        order_ref VARCHAR PRIMARY KEY, order_id BIGINT, perm_id BIGINT, account VARCHAR,
        symbol VARCHAR, status VARCHAR, filled DOUBLE, remaining DOUBLE, avg_fill_price DOUBLE,
        message VARCHAR, updated_at TIMESTAMPTZ);
    CREATE SEQUENCE order_status_seq;
    CREATE TABLE order_status (
        seq BIGINT DEFAULT nextval('order_status_seq'), order_ref VARCHAR, order_id BIGINT,
        status VARCHAR, filled DOUBLE, remaining DOUBLE, avg_fill_price DOUBLE,
        message VARCHAR, status_at TIMESTAMPTZ);
    CREATE TABLE fills (
        exec_id VARCHAR PRIMARY KEY, order_ref VARCHAR, order_id BIGINT, perm_id BIGINT,
        account VARCHAR, symbol VARCHAR, con_id BIGINT, quantity DOUBLE, price DOUBLE,
        currency VARCHAR, exchange VARCHAR, time TIMESTAMPTZ, source VARCHAR, flag VARCHAR,
        recorded_at TIMESTAMPTZ);
    CREATE TABLE commissions (
        exec_id VARCHAR PRIMARY KEY, commission DOUBLE, realized_pnl DOUBLE, currency VARCHAR);
    """,
    # the process that is sending an intent (host:pid), so that two notebooks running the same
    # decisions at once send each order once
    2: "ALTER TABLE intents ADD COLUMN owner VARCHAR;",
    # stock splits from imported statements: not fills, but the lots need them
    3: """
    CREATE TABLE splits (
        split_id VARCHAR PRIMARY KEY, account VARCHAR, symbol VARCHAR, time TIMESTAMPTZ,
        ratio DOUBLE, source VARCHAR, recorded_at TIMESTAMPTZ);
    """,
    # statements bring other currencies and options: keep them as the tax engine reads them
    4: """
    ALTER TABLE fills ADD COLUMN fx_rate DOUBLE DEFAULT 1;
    ALTER TABLE fills ADD COLUMN asset_category VARCHAR DEFAULT 'STK';
    ALTER TABLE fills ADD COLUMN multiplier DOUBLE DEFAULT 1;
    """,
}
FILL_COLUMNS = [
    "exec_id",
    "order_ref",
    "order_id",
    "perm_id",
    "account",
    "symbol",
    "con_id",
    "quantity",
    "price",
    "currency",
    "exchange",
    "time",
    "source",
    "flag",
    "fx_rate",
    "asset_category",
    "multiplier",
]
"""``price`` per unit and ``currency`` of the trade; ``fx_rate`` USD per unit of it;
``multiplier`` 100 for US equity options."""
FILL_DEFAULTS = {"fx_rate": 1.0, "asset_category": "STK", "multiplier": 1.0}
INTENT_COLUMNS = [
    "order_ref",
    "decision_id",
    "parent_ref",
    "account",
    "symbol",
    "action",
    "quantity",
    "order_type",
    "limit_price",
    "stop_price",
    "trail_percent",
    "tif",
    "notional",
    "position_before",
    "status",
    "order_id",
    "perm_id",
    "reason",
    "created_at",
    "transmitted_at",
    "owner",
]
OPENING = "opening"  # source of a lot the ledger could not explain, booked at IBKR's average cost
_LOCKED = re.compile(r"lock|being used by another process|Conflicting", re.IGNORECASE)


class LedgerBusy(RuntimeError):
    """Another process held the ledger file for longer than the lock timeout."""


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> None:
    """Execute a statement and consume its result (DuckDB wants it finished before the next)."""
    con.execute(sql, params or []).fetchall()


def now_utc() -> datetime:
    return datetime.now(UTC)


def process_owner() -> str:
    """This process as an intent's owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool:
    """Whether the process that owns an intent still runs. Unknown owners (none recorded, or
    on another host) count as gone only when none is recorded: another host's kernel is
    assumed alive, since it cannot be checked from here."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed kernel nobody has reaped yet is a zombie: gone as well
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Ledger:
    """The DuckDB ledger at ``path`` (default ``IBKR_NB_DB``); getters return DataFrames."""

    def __init__(self, path: str | Path | None = None, *, lock_timeout: float = 10.0):
        self.path = Path(path) if path is not None else load_settings().ibkr_nb_db
        self.lock_timeout = lock_timeout
        self._lots: tuple[tuple, LotResult] | None = None
        self._migrated = False

    def __repr__(self) -> str:
        return f"<Ledger {self.path}>"

    # -- connections -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; waits (bounded) while another process holds the file."""
        if read_only and not self._migrated:
            read_only = False  # first use: create the file or bring its schema up to date
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.01
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.Error as exc:
                if "different configuration" in str(exc):  # this process has it open read-write
                    read_only = False
                    continue
                if not _LOCKED.search(str(exc)) or time.monotonic() > deadline:
                    if _LOCKED.search(str(exc)):
                        raise LedgerBusy(
                            f"The ledger {self.path} is held by another process (a second "
                            f"notebook?) for more than {self.lock_timeout:g} s: {exc}. Close that "
                            "session or raise lock_timeout."
                        ) from None
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        try:
            if not self._migrated:
                self._migrate(con)
            yield con
        finally:
            con.close()

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        """Bring the file's schema up to SCHEMA_VERSION (a read-write connection)."""
        _run(con, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        version = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] or 0
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"The ledger {self.path} has schema version {version}, newer than this ibkr-nb "
                f"({SCHEMA_VERSION}); upgrade ibkr-nb."
            )
        if version < SCHEMA_VERSION:
            _run(con, "BEGIN TRANSACTION")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                _run(con, MIGRATIONS[step])
                _run(con, "INSERT INTO schema_version VALUES (?)", [step])
            _run(con, "COMMIT")
        self._migrated = True

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connect() as con:
            _run(con, "BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                _run(con, "ROLLBACK")
                raise
            _run(con, "COMMIT")

    def _query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self._connect(read_only=True) as con:
            return con.execute(sql, params or []).df()

    @property
    def schema_version(self) -> int:
        with self._connect(read_only=True) as con:
            return int(con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] or 0)

    # -- writes ------------------------------------------------------------------------------

    def record_decisions(self, decisions: pd.DataFrame) -> int:
        """Store validated decisions (first write of an id wins); returns rows added."""
        frame = decisions.reindex(columns=DECISION_COLUMNS).copy()
        frame["recorded_at"] = now_utc()
        return self._insert_new("decisions", frame, "decision_id")

    def record_intents(self, intents: pd.DataFrame) -> list[str]:
        """Write order intents *before* transmission and claim them for this process, in one
        transaction; returns the ``order_ref`` values this process may transmit.

        A new intent is written ``pending``, owned by this process. One already present is
        claimed only while it is ``pending`` or ``transmitted`` (not acknowledged by the
        broker) and its owner is this process or one that no longer runs (a crashed kernel);
        an intent that another live process is sending is left to it, so two notebooks
        running the same decisions at once send each order once.
        """
        me = process_owner()
        frame = intents.reindex(columns=INTENT_COLUMNS).copy()
        frame["status"] = frame["status"].astype(object).fillna("pending")
        created = pd.to_datetime(frame["created_at"], utc=True).astype("datetime64[us, UTC]")
        frame["created_at"] = created.where(created.notna(), pd.Timestamp(now_utc()))
        frame["owner"] = me
        refs = frame["order_ref"].astype(str).tolist()
        with self._transaction() as con:
            self._insert_new_in(con, "intents", frame, "order_ref")
            rows = con.execute(
                "SELECT order_ref, owner FROM intents WHERE status IN ('pending', 'transmitted') "
                "AND order_ref IN (SELECT unnest(?::VARCHAR[]))",
                [refs],
            ).fetchall()
            claimed = [ref for ref, owner in rows if owner == me or not owner_alive(owner)]
            _run(
                con,
                "UPDATE intents SET owner = ? WHERE order_ref IN (SELECT unnest(?::VARCHAR[]))",
                [me, claimed],
            )
        return [ref for ref in refs if ref in set(claimed)]

    def mark_intent(self, order_ref, status: str, **values) -> None:
        """Set the status (transmitted, acknowledged, rejected, ...) of one intent or many, in
        one transaction: ``order_ref`` a key or a list of keys; each of ``order_id``,
        ``perm_id``, ``reason``, ``transmitted_at`` one value for all keys or a list with one
        per key (None keeps what is stored)."""
        refs = [order_ref] if isinstance(order_ref, str) else list(order_ref)
        if not refs:
            return
        columns = [k for k in ("order_id", "perm_id", "reason", "transmitted_at") if k in values]
        updates = pd.DataFrame({"order_ref": refs})
        for name in columns:
            value = values[name]
            updates[name] = list(value) if isinstance(value, list | tuple) else [value] * len(refs)
            if name in ("order_id", "perm_id"):
                updates[name] = pd.array(updates[name], dtype="Int64")
        sets = "".join(f", {k} = coalesce(u.{k}, intents.{k})" for k in columns)
        with self._transaction() as con:
            con.register("intent_updates", updates)
            _run(
                con,
                f"UPDATE intents SET status = ?{sets} FROM intent_updates u "
                "WHERE intents.order_ref = u.order_ref",
                [status],
            )
            con.unregister("intent_updates")

    def record_order_status(self, rows: pd.DataFrame) -> None:
        """Append to each order's status history and update its latest state.

        ``rows``: order_ref, order_id, perm_id, account, symbol, status, filled, remaining,
        avg_fill_price, message, at.
        """
        if len(rows) == 0:
            return
        rows = rows.copy()
        rows["at"] = pd.to_datetime(rows["at"], utc=True)
        # stable: entries of one order keep their log order when their times tie
        latest = rows.sort_values("at", kind="stable").drop_duplicates("order_ref", keep="last")
        latest = latest.rename(columns={"at": "updated_at"})[
            [
                "order_ref",
                "order_id",
                "perm_id",
                "account",
                "symbol",
                "status",
                "filled",
                "remaining",
                "avg_fill_price",
                "message",
                "updated_at",
            ]
        ]
        history = rows[
            [
                "order_ref",
                "order_id",
                "status",
                "filled",
                "remaining",
                "avg_fill_price",
                "message",
                "at",
            ]
        ]
        with self._transaction() as con:
            con.register("history_rows", history)
            _run(
                con,
                "INSERT INTO order_status (order_ref, order_id, status, filled, remaining, "
                "avg_fill_price, message, status_at) SELECT * FROM history_rows",
            )
            con.register("latest_rows", latest)
            _run(con, "INSERT OR REPLACE INTO orders SELECT * FROM latest_rows")

    def record_fills(
        self,
        fills: pd.DataFrame,
        commissions: pd.DataFrame | None = None,
        replacing: list[str] | None = None,
    ) -> int:
        """Insert fills (``FILL_COLUMNS``; an ``exec_id`` already present is skipped) and their
        commissions (exec_id, commission, realized_pnl, currency) in one transaction.
        ``replacing``: exec ids whose stored fills go first unless ``fills`` has them as they
        are (trades the broker cancelled or corrected; a corrected trade comes back under its
        id in ``fills``).
        Returns fills added."""
        frame = fills.reindex(columns=FILL_COLUMNS).copy()
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        frame["source"] = frame["source"].astype(object).fillna("session")
        frame["flag"] = frame["flag"].astype(object).fillna("")
        for name, default in FILL_DEFAULTS.items():
            frame[name] = frame[name].astype(object if isinstance(default, str) else float)
            frame[name] = frame[name].fillna(default)
        frame["recorded_at"] = now_utc()
        with self._transaction() as con:
            if replacing:  # a stored fill the batch holds as it is stays (and is not re-added)
                con.register("replaced_ids", pd.DataFrame({"exec_id": list(replacing)}))
                con.register("incoming", frame)
                _run(
                    con,
                    "DELETE FROM fills WHERE exec_id IN (SELECT exec_id FROM replaced_ids) "
                    "AND NOT EXISTS (SELECT 1 FROM incoming i WHERE i.exec_id = fills.exec_id "
                    "AND i.quantity = fills.quantity AND i.price = fills.price)",
                )
            added = self._insert_new_in(con, "fills", frame, "exec_id")
            if commissions is not None and len(commissions):
                self._upsert_commissions(con, commissions)
        return added

    def record_commissions(self, commissions: pd.DataFrame) -> None:
        with self._transaction() as con:
            self._upsert_commissions(con, commissions)

    @staticmethod
    def _upsert_commissions(con, commissions: pd.DataFrame) -> None:
        frame = commissions.reindex(
            columns=["exec_id", "commission", "realized_pnl", "currency"]
        ).dropna(subset=["exec_id", "commission"])
        frame = frame.drop_duplicates("exec_id", keep="last")
        con.register("commission_rows", frame)
        _run(con, "INSERT OR REPLACE INTO commissions SELECT * FROM commission_rows")

    def _insert_new(self, table: str, frame: pd.DataFrame, key: str) -> int:
        with self._transaction() as con:
            return self._insert_new_in(con, table, frame, key)

    @staticmethod
    def _insert_new_in(con, table: str, frame: pd.DataFrame, key: str) -> int:
        if len(frame) == 0:
            return 0
        frame = frame.drop_duplicates(key, keep="first")
        con.register("new_rows", frame)
        before = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        _run(
            con,
            f"INSERT INTO {table} BY NAME SELECT * FROM new_rows "
            f"WHERE {key} NOT IN (SELECT {key} FROM {table})",
        )
        con.unregister("new_rows")
        return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] - before

    # -- reads -------------------------------------------------------------------------------

    def decisions(self) -> pd.DataFrame:
        return self._query("SELECT * FROM decisions ORDER BY created_at, decision_id")

    def intents(self) -> pd.DataFrame:
        return self._query("SELECT * FROM intents ORDER BY created_at, order_ref")

    def orders(self) -> pd.DataFrame:
        """Each order's latest state (one row per order_ref)."""
        return self._query("SELECT * FROM orders ORDER BY updated_at, order_ref")

    def order_history(self, order_ref: str | None = None) -> pd.DataFrame:
        """Every status an order went through, in order."""
        where = "WHERE order_ref = ?" if order_ref else ""
        return self._query(
            f"SELECT * EXCLUDE (seq) FROM order_status {where} ORDER BY seq",
            [order_ref] if order_ref else [],
        )

    def fills(self) -> pd.DataFrame:
        """Every fill once (``exec_id`` unique), signed quantity, with its commission, the
        decision it came from (id, confidence, reasoning) and the position before it."""
        return self._query(
            """
            SELECT f.exec_id, f.order_ref, f.order_id, f.perm_id, f.account, f.symbol, f.con_id,
                   f.quantity, f.price, c.commission, c.realized_pnl, f.currency, f.exchange,
                   f.time, f.source, f.flag, f.fx_rate, f.asset_category, f.multiplier,
                   i.decision_id, d.confidence, d.reasoning,
                   coalesce(sum(f.quantity) OVER (
                       PARTITION BY f.account, f.symbol ORDER BY f.time, f.exec_id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS position_before
            FROM fills f
            LEFT JOIN commissions c USING (exec_id)
            LEFT JOIN intents i ON i.order_ref = f.order_ref
            LEFT JOIN decisions d ON d.decision_id = i.decision_id
            ORDER BY f.time, f.exec_id
            """
        )

    def positions(self) -> pd.DataFrame:
        """Net quantity per account and symbol: the open lots of the ledger's fills (so that
        splits count)."""
        lots = self.lots().open_lots
        held = lots.groupby(["account", "symbol"], as_index=False)["quantity"].sum()
        held = held[held["quantity"].abs() > 1e-9]
        return held.sort_values(["account", "symbol"], ignore_index=True)

    def known_refs(self, refs) -> pd.DataFrame:
        """Intents among ``refs`` with their status and order id (the idempotency check)."""
        refs = list(refs)
        if not refs:
            return pd.DataFrame(columns=["order_ref", "status", "order_id"])
        return self._query(
            "SELECT order_ref, status, order_id FROM intents WHERE order_ref IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [refs],
        )

    def notional_sent(self, day: datetime | None = None, account: str | None = None) -> float:
        """Sum of |notional| of intents transmitted on ``day`` (UTC date; default today), of
        ``account`` (default: every account in the ledger)."""
        day = (day or now_utc()).astimezone(UTC).date()
        value = self._query(
            "SELECT coalesce(sum(abs(notional)), 0) AS n FROM intents WHERE status <> 'pending' "
            "AND status <> 'rejected' AND CAST(timezone('UTC', transmitted_at) AS DATE) = ? "
            "AND (? IS NULL OR account = ?)",
            [day, account, account],
        )["n"].iloc[0]
        return float(value)

    # -- lots --------------------------------------------------------------------------------

    def lots(self, method: str = "fifo", wash_sales: bool = True) -> LotResult:
        """The tax engine over the ledger's fills (recomputed when fills change)."""
        with self._connect(read_only=True) as con:
            version = con.execute(
                "SELECT count(*), max(recorded_at), (SELECT count(*) FROM commissions), "
                "(SELECT sum(commission) FROM commissions), (SELECT count(*) FROM splits) "
                "FROM fills"
            ).fetchall()[0]
            key = (tuple(version), method, wash_sales)
            if self._lots is not None and self._lots[0] == key:
                return self._lots[1]
            trades = con.execute(
                """
                SELECT f.exec_id AS trade_id, f.account, f.symbol, f.time AS datetime,
                       f.quantity, f.price, coalesce(c.commission, 0) AS commission, f.currency,
                       'trade' AS kind, NULL::DOUBLE AS ratio, f.fx_rate, f.asset_category,
                       f.multiplier
                FROM fills f LEFT JOIN commissions c USING (exec_id)
                UNION ALL
                SELECT split_id, account, symbol, time, 0.0, NULL, 0.0, 'USD', 'split', ratio,
                       1.0, 'STK', 1.0
                FROM splits
                ORDER BY datetime, trade_id
                """
            ).df()
        result = match_lots(trades, method=method, wash_sales=wash_sales)
        self._lots = (key, result)
        return result

    def open_lots(self, method: str = "fifo") -> pd.DataFrame:
        """Open tax lots: ``symbol``, signed ``quantity``, ``cost_basis`` (USD, with buy
        commissions and wash-sale adjustments), ``acquired`` (date), and ``flag`` for lots
        booked at IBKR's average cost because the ledger could not explain the position."""
        lots = self.lots(method).open_lots.copy()
        lots["acquired"] = lots["date_acquired"]
        flags = self._query("SELECT exec_id AS lot_id, flag FROM fills WHERE flag <> ''")
        lots = lots.merge(flags, on="lot_id", how="left")
        lots["flag"] = lots["flag"].fillna("")
        return lots

    def realized(self, year: int | None = None, method: str = "fifo") -> pd.DataFrame:
        """Realized gains and losses (one row per lot piece), optionally for one tax year."""
        realized = self.lots(method).realized
        if year is not None:
            realized = realized[pd.to_datetime(realized["date_sold"]).dt.year == year]
        return realized.reset_index(drop=True)

    # -- imports -----------------------------------------------------------------------------

    def import_statement(self, path: str | Path) -> dict:
        """Book an IBKR Flex XML / Activity CSV statement: fills deduplicated by IBKR's trade id,
        in the trade's currency with the statement's USD rate, and stock splits into the splits
        the lots apply. Lots the statement's closed-lot detail shows were bought before its
        history are flagged opening fills (the importer's pre-history lots); a sale it cannot
        explain is left out and listed, never booked as a short. A trade the statement shows
        cancelled or corrected replaces what an earlier import booked under its id. Returns
        ``fills_added``, ``fills_in_statement``, ``splits_added``, ``opening_lots``,
        ``unexplained``, ``corrections``, ``rejects``."""
        result = load_trades(path)
        split = (result.trades["kind"] == "split").to_numpy()
        trades = result.trades[~split]
        splits = result.trades[split]
        opening = set(result.opening_lots["trade_id"].astype(str))
        trade_id = trades["trade_id"].astype(str)
        source = f"statement:{Path(path).name}"
        fills = pd.DataFrame(
            {
                "exec_id": trade_id,
                "account": trades["account"],
                "symbol": trades["symbol"],
                "quantity": trades["quantity"].astype(float),
                "price": trades["price"].astype(float),
                "currency": trades["currency"],
                "time": trades["datetime"],
                "source": source,
                "flag": np.where(
                    trade_id.isin(opening), "opening lot from the statement's closed-lot detail", ""
                ),
                **{c: trades[c] for c in FILL_DEFAULTS if c in trades},
            }
        )
        commissions = pd.DataFrame(
            {
                "exec_id": trade_id,
                "commission": trades["commission"].astype(float).abs(),
                "realized_pnl": np.nan,
                "currency": trades["currency"],
            }
        )
        corrected = sorted(set(result.corrections["trade_id"].astype(str)))
        added = self.record_fills(fills, commissions, replacing=corrected)
        split_rows = pd.DataFrame(
            {
                "split_id": splits["trade_id"].astype(str),
                "account": splits["account"],
                "symbol": splits["symbol"],
                "time": pd.to_datetime(splits["datetime"], utc=True),
                "ratio": splits["ratio"].astype(float),
                "source": source,
                "recorded_at": now_utc(),
            }
        )
        return {
            "fills_added": added,
            "fills_in_statement": len(fills) - len(opening),
            "splits_added": self._insert_new("splits", split_rows, "split_id"),
            "opening_lots": len(opening),
            "unexplained": result.unexplained,
            "corrections": result.corrections,
            "rejects": result.rejects,
        }
