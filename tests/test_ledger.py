"""The DuckDB ledger: schema and migrations, fills once by exec_id, commissions, positions before
each fill, lots from the tax engine, statement import without duplicates, and file locking."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ibkr_nb import Ledger, LedgerBusy
from ibkr_nb.ledger import MIGRATIONS, SCHEMA_VERSION, owner_alive, process_owner

SAMPLES = Path(__file__).parents[1] / "data" / "samples"


def fills(*rows) -> pd.DataFrame:
    """(exec_id, symbol, signed quantity, price, time) -> a fills frame."""
    frame = pd.DataFrame(rows, columns=["exec_id", "symbol", "quantity", "price", "time"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame.assign(account="DU1", currency="USD", order_ref="", source="session")


def commissions(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["exec_id", "commission"])
    return frame.assign(realized_pnl=float("nan"), currency="USD")


BUY_BUY_SELL = fills(
    ("e1", "XYZ", 10, 100.0, "2025-03-03 15:00"),
    ("e2", "XYZ", 5, 110.0, "2025-06-02 15:00"),
    ("e3", "XYZ", -8, 120.0, "2026-04-01 15:00"),
    ("e4", "ABC", -3, 50.0, "2026-04-01 16:00"),
)
COMMISSIONS = commissions(("e1", 1.0), ("e2", 1.0), ("e3", 1.0), ("e4", 1.0))


def test_a_new_file_gets_the_schema(private_ledger):
    ledger = Ledger()
    assert ledger.path == private_ledger
    assert ledger.schema_version == SCHEMA_VERSION
    assert ledger.fills().empty and ledger.intents().empty and ledger.decisions().empty
    with duckdb.connect(str(private_ledger), read_only=True) as con:
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    assert {"decisions", "intents", "orders", "order_status", "fills", "commissions"} <= tables


def test_migrates_an_old_file_once_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:  # a file from before the schema: another table only
        con.execute("CREATE TABLE notes (text VARCHAR)")
        con.execute("INSERT INTO notes VALUES ('keep me')")
    ledger = Ledger(path)
    assert ledger.record_fills(BUY_BUY_SELL) == 4
    assert Ledger(path).schema_version == SCHEMA_VERSION  # a second open does not migrate again
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM schema_version").fetchall()[0][0] == SCHEMA_VERSION
        assert con.execute("SELECT * FROM notes").fetchall() == [("keep me",)]


def test_migrates_a_version_1_ledger_and_keeps_its_intents(tmp_path):
    path = tmp_path / "v1.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(MIGRATIONS[1])
        con.execute("CREATE TABLE schema_version (version INTEGER)")
        con.execute("INSERT INTO schema_version VALUES (1)")
        con.execute("INSERT INTO intents (order_ref, status) VALUES ('old-1', 'pending')")
    ledger = Ledger(path)
    assert ledger.schema_version == SCHEMA_VERSION
    intents = ledger.intents()
    assert intents["order_ref"].tolist() == ["old-1"] and intents["owner"].isna().all()
    assert ledger.record_intents(pd.DataFrame({"order_ref": ["old-1"]})) == ["old-1"]


def test_a_newer_schema_asks_for_an_upgrade(tmp_path):
    path = tmp_path / "new.duckdb"
    Ledger(path).record_fills(BUY_BUY_SELL)
    with duckdb.connect(str(path)) as con:
        con.execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(RuntimeError, match="version 99.*upgrade ibkr-nb"):
        Ledger(path).fills()


def test_fills_are_unique_by_exec_id():
    ledger = Ledger()
    assert ledger.record_fills(BUY_BUY_SELL, COMMISSIONS) == 4
    assert ledger.record_fills(BUY_BUY_SELL, COMMISSIONS) == 0
    doubled = pd.concat([BUY_BUY_SELL, BUY_BUY_SELL.assign(exec_id="e5")])
    assert ledger.record_fills(doubled) == 1  # e5 once, though four rows carry it
    got = ledger.fills()
    assert got["exec_id"].is_unique and len(got) == 5


def test_commissions_are_joined_even_when_they_come_later():
    ledger = Ledger()
    ledger.record_fills(BUY_BUY_SELL)
    assert ledger.fills()["commission"].isna().all()
    ledger.record_commissions(COMMISSIONS)
    basis = ledger.open_lots().set_index("lot_id")["cost_basis"]
    ledger.record_commissions(commissions(("e1", 1.25)))  # a corrected report replaces
    got = ledger.fills().set_index("exec_id")["commission"]
    assert got.to_dict() == {"e1": 1.25, "e2": 1.0, "e3": 1.0, "e4": 1.0}
    again = ledger.open_lots().set_index("lot_id")["cost_basis"]  # the lots follow
    assert again["e1"] == pytest.approx(basis["e1"] + 0.25 * 2 / 10)


def test_position_before_each_fill_per_symbol():
    ledger = Ledger()
    ledger.record_fills(BUY_BUY_SELL)
    got = ledger.fills().set_index("exec_id")["position_before"]
    assert got.to_dict() == {"e1": 0, "e2": 10, "e3": 15, "e4": 0}
    assert ledger.positions().set_index("symbol")["quantity"].to_dict() == {"ABC": -3, "XYZ": 7}


def test_open_lots_and_realized_come_from_the_tax_engine():
    ledger = Ledger()
    ledger.record_fills(BUY_BUY_SELL, COMMISSIONS)
    lots = ledger.open_lots().set_index(["symbol", "acquired"])
    # FIFO: 8 of the 10 bought 2025-03-03 are sold; 2 of them and the 5 from June remain
    assert lots.loc[("XYZ", pd.Timestamp("2025-03-03")), "quantity"] == 2
    assert lots.loc[("XYZ", pd.Timestamp("2025-03-03")), "cost_basis"] == pytest.approx(200.2)
    assert lots.loc[("XYZ", pd.Timestamp("2025-06-02")), "cost_basis"] == pytest.approx(551.0)
    assert lots.loc[("ABC", pd.Timestamp("2026-04-01")), "quantity"] == -3
    assert (lots["flag"] == "").all()
    realized = ledger.realized()
    row = realized[realized["symbol"] == "XYZ"].iloc[0]
    # proceeds 8 x 120 - 1.00; basis 8 x 100 + 0.80 of the buy's commission; held > 1 year
    assert (row["quantity"], row["proceeds"], row["cost_basis"]) == (8, 959.0, pytest.approx(800.8))
    assert row["gain_loss"] == pytest.approx(158.2) and row["term"] == "long"
    assert ledger.realized(2025).empty and len(ledger.realized(2026)) == 1
    ledger.record_fills(fills(("e6", "XYZ", -7, 90.0, "2026-05-01 15:00")), commissions(("e6", 1)))
    assert ledger.open_lots()["symbol"].tolist() == ["ABC"]  # kept current after a new fill


def test_import_statement_twice_books_each_trade_once():
    ledger = Ledger()
    first = ledger.import_statement(SAMPLES / "flex_trades.xml")
    assert first["fills_added"] == first["fills_in_statement"] + first["opening_lots"] > 0
    again = ledger.import_statement(SAMPLES / "flex_trades.xml")
    assert again["fills_added"] == 0
    booked = ledger.fills()
    assert booked["exec_id"].is_unique
    assert len(booked) == first["fills_added"]
    assert booked["source"].str.startswith("statement:").all()
    assert booked["commission"].notna().all() and (booked["commission"] >= 0).all()
    # the statement nets to 20 SAP and 1.25 VOO: no phantom lots from its closed-lot detail
    assert first["opening_lots"] == 0
    held = ledger.positions().set_index("symbol")["quantity"].to_dict()
    assert held == {"SAP": 20, "VOO": 1.25, "AAPL  240119C00190000": 1.0}  # the call is kept
    assert ledger.open_lots().groupby("symbol")["quantity"].sum().to_dict() == held
    # SAP is a EUR trade: the ledger keeps its currency and rate, the lot's basis is in USD
    sap = booked[booked.symbol == "SAP"].iloc[0]
    assert (sap.currency, sap.fx_rate) == ("EUR", pytest.approx(1.0975))
    sap_lot = ledger.open_lots().query("symbol == 'SAP'").iloc[0]
    assert sap_lot.cost_basis == pytest.approx((20 * sap.price + sap.commission) * 1.0975)


def test_a_version_1_ledger_is_migrated_in_place(tmp_path):
    """A ledger written by the first schema gains the instrument and currency columns, and its
    fills read back with their defaults."""
    path = tmp_path / "v1.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER)")
        con.execute(MIGRATIONS[1])
        con.execute("INSERT INTO schema_version VALUES (1)")
        con.execute(
            "INSERT INTO fills VALUES ('e1', 'r1', 1, 1, 'DU1', 'AAPL', 1, 10, 100, 'USD', "
            "'SMART', TIMESTAMPTZ '2026-01-05 15:00:00+00', 'session', '', now())"
        )
    ledger = Ledger(path)
    assert ledger.schema_version == SCHEMA_VERSION
    fill = ledger.fills().iloc[0]
    assert (fill.fx_rate, fill.asset_category, fill.multiplier) == (1, "STK", 1)
    assert ledger.open_lots().quantity.tolist() == [10]


def test_import_a_statement_with_a_split_keeps_the_lots_working():
    """trades.csv: 10 NVDA at 850, a 10:1 split, 50 sold: 50 shares remain at 85.01 each."""
    ledger = Ledger()
    result = ledger.import_statement(SAMPLES / "trades.csv")
    assert result["splits_added"] == 1
    assert "S0001" not in set(ledger.fills()["exec_id"])  # a split is not a fill
    nvda = ledger.open_lots().query("symbol == 'NVDA'")
    assert nvda["quantity"].tolist() == [50.0]
    assert nvda["cost_basis"].iloc[0] == pytest.approx((10 * 850 + 1) / 2)
    held = ledger.positions().set_index("symbol")["quantity"].to_dict()
    assert held == {"NVDA": 50, "SAP": 20, "VOO": 1.25}
    assert ledger.import_statement(SAMPLES / "trades.csv")["splits_added"] == 0
    assert len(ledger.realized()) > 0


def test_import_books_lots_bought_before_the_history_as_flagged_openings(tmp_path):
    xml = (SAMPLES / "flex_trades.xml").read_text()
    start = xml.index("<Trade ")
    first_trade_end = xml.index("/>", start) + 2
    first_trade = xml[start:first_trade_end]
    path = tmp_path / "without_first.xml"
    path.write_text(xml.replace(first_trade, "", 1))  # the 2023-03-01 AAPL buy is missing
    result = Ledger().import_statement(path)
    assert result["opening_lots"] >= 1
    openings = Ledger().fills()
    flagged = openings[openings["flag"] != ""]
    assert "AAPL" in set(flagged["symbol"]) and (flagged["quantity"] > 0).all()
    assert flagged.set_index("symbol").loc["AAPL", "quantity"] == 50
    assert not (Ledger().open_lots()["quantity"] < 0).any()  # never a silent short
    assert "AAPL" not in set(Ledger().positions()["symbol"])  # 50 + 30 - 60 + 20 - 40 = 0


HOLD = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
con.execute("BEGIN TRANSACTION"); con.execute("SELECT count(*) FROM fills").fetchall()
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_ledger_busy_after_the_bounded_wait_then_works_again(private_ledger):
    Ledger().record_fills(BUY_BUY_SELL)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(private_ledger), "3"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with pytest.raises(LedgerBusy, match="another process.*lock_timeout"):
            Ledger(lock_timeout=0.5).record_fills(fills(("e9", "XYZ", 1, 100.0, "2026-05-01")))
        assert 0.5 <= time.monotonic() - started < 2.5
        # a longer wait outlasts the holder, and nothing was half-written before
        assert Ledger(lock_timeout=10).record_fills(fills(("e9", "XYZ", 1, 100.0, "2026-05-01")))
    finally:
        holder.wait(10)
    assert Ledger().fills()["exec_id"].tolist() == ["e1", "e2", "e3", "e4", "e9"]


WRITER = """
import sys
import pandas as pd
from ibkr_nb import Ledger
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ledger = Ledger(path, lock_timeout=60)
for i in range(n):
    frame = pd.DataFrame({"exec_id": [f"{tag}-{i}-{k}" for k in range(20)], "symbol": "XYZ",
                          "quantity": 1.0, "price": 100.0, "account": "DU1",
                          "time": pd.Timestamp("2026-05-01", tz="UTC") + pd.Timedelta(seconds=i)})
    ledger.record_fills(frame)
    ledger.fills()
print("done", flush=True)
"""


def test_two_processes_writing_at_once_lose_nothing(private_ledger):
    Ledger().record_fills(BUY_BUY_SELL)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), str(private_ledger), tag, "25"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    for w in writers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0 and out.strip() == "done", err[-2000:]
    got = Ledger().fills()
    assert len(got) == 4 + 2 * 25 * 20 and got["exec_id"].is_unique


def intent(ref: str) -> pd.DataFrame:
    return pd.DataFrame({"order_ref": [ref], "symbol": ["XYZ"], "quantity": [1.0]})


def test_intents_are_claimed_by_one_live_process(private_ledger):
    ledger = Ledger()
    assert ledger.record_intents(intent("k1")) == ["k1"]
    assert ledger.record_intents(intent("k1")) == ["k1"]  # this process again: still ours
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        other = f"{process_owner().rpartition(':')[0]}:{sleeper.pid}"
        assert owner_alive(other)
        with duckdb.connect(str(private_ledger)) as con:
            con.execute("UPDATE intents SET owner = ? WHERE order_ref = 'k1'", [other])
        assert ledger.record_intents(intent("k1")) == []  # a live notebook is sending it
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not owner_alive(other)
    assert ledger.record_intents(intent("k1")) == ["k1"]  # its kernel died: taken over
    ledger.mark_intent("k1", "acknowledged", order_id=7)
    assert ledger.record_intents(intent("k1")) == []  # the broker has it: never again
    assert ledger.intents().set_index("order_ref").loc["k1", "order_id"] == 7
    assert owner_alive("another-host:1") and not owner_alive(None)


def test_notional_sent_today_per_account():
    ledger = Ledger()
    rows = pd.DataFrame(
        {
            "order_ref": ["a", "b", "c"],
            "account": ["DU1", "DU1", "DU2"],
            "notional": [100.0, 50.0, 7.0],
        }
    )
    refs = ledger.record_intents(rows)
    ledger.mark_intent(refs, "acknowledged", transmitted_at=pd.Timestamp.now(tz="UTC"))
    ledger.mark_intent("b", "rejected")
    assert ledger.notional_sent() == 107.0
    assert ledger.notional_sent(account="DU1") == 100.0
    yesterday = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1)
    assert ledger.notional_sent(day=yesterday.to_pydatetime()) == 0.0


def test_a_statement_correcting_a_trade_replaces_what_an_earlier_import_booked(tmp_path):
    head = '<FlexQueryResponse><FlexStatements count="1"><FlexStatement accountId="U1"><Trades>'
    tail = "</Trades></FlexStatement></FlexStatements></FlexQueryResponse>"
    attrs = 'accountId="U1" currency="USD" fxRateToBase="1" assetCategory="STK" symbol="X"'
    buy = (
        f'<Trade {attrs} tradeID="1" dateTime="20240102;100000" quantity="10" tradePrice="10" '
        'ibCommission="-1" openCloseIndicator="O" levelOfDetail="EXECUTION" />'
    )
    sale = (
        f'<Trade {attrs} tradeID="2" dateTime="20240103;100000" quantity="-10" '
        'tradePrice="{price}" ibCommission="-1" openCloseIndicator="C" levelOfDetail="EXECUTION" />'
    )
    cancel = (
        f'<Trade {attrs} tradeID="" transactionID="9" dateTime="20240103;100000" quantity="10" '
        'tradePrice="12" ibCommission="1" notes="Ca" buySell="SELL (Ca.)" origTradeID="2" '
        'levelOfDetail="EXECUTION" />'
    )
    older, newer = tmp_path / "older.xml", tmp_path / "newer.xml"
    older.write_text(head + buy + sale.format(price=12) + tail)
    newer.write_text(head + buy + sale.format(price=12) + cancel + sale.format(price=13) + tail)
    ledger = Ledger()
    ledger.import_statement(older)
    report = ledger.import_statement(newer)
    assert report["corrections"]["trade_id"].tolist() == ["2"]
    booked = ledger.fills().set_index("exec_id")
    assert booked.loc["2", "price"] == 13.0 and len(booked) == 2
    assert ledger.import_statement(newer)["fills_added"] == 0  # the same again adds nothing
    assert ledger.fills().set_index("exec_id").loc["2", "price"] == 13.0
