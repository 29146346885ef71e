"""Importers: every source lands in the same trades frame; bad rows come back with a reason."""

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibkr_nb.tax.importers import (
    EXTRA_COLUMNS,
    TRADE_COLUMNS,
    TradeFileError,
    from_activity_csv,
    from_executions,
    from_flex_xml,
    from_plain_csv,
    load_trades,
)
from ibkr_nb.tax.trades import _parse_digits

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def test_plain_csv_bad_rows_are_rejected_with_reasons_and_the_rest_kept():
    result = from_plain_csv(
        "date,symbol,quantity,price,commission\n"
        "2024-01-15,AAPL,100,185.50,1.00\n"
        "2024-13-45,AAPL,10,1,0\n"
        "2024-01-16,AAPL,0,185,1\n"
        "2024-01-16,AAPL,5,-185,1\n"
        "2024-01-16,AAPL,5,185,-1\n"
        "2024-01-16,$$$,5,185,1\n"
        "2024-01-16,aapl,5,185,1\n"
        "2024-01-16,MSFT,abc,185,1\n"
        "2024-01-17,AAPL,-50,190.00,1.00\n",
        "t.csv",
    )
    assert result.trades["quantity"].tolist() == [100.0, 5.0, -50.0]  # "aapl" as IBKR may print it
    assert result.rejects[["line", "reason"]].values.tolist() == [
        [3, "unparseable or out-of-range date '2024-13-45'"],
        [4, "zero quantity"],
        [5, "negative price -185.0"],
        [6, "negative commission -1.0"],
        [7, "unknown symbol format '$$$'"],
        [9, "quantity 'abc' is not a number"],
    ]
    assert result.rejects["raw"].iloc[0] == "2024-13-45,AAPL,10,1,0"


def test_plain_csv_columns_dtypes_and_defaults():
    result = from_plain_csv("date,symbol,quantity,price\n2024-01-15 09:35:12,BRK B,1.5,400\n")
    trades = result.trades
    assert list(trades.columns) == [*TRADE_COLUMNS, *EXTRA_COLUMNS]
    row = trades.iloc[0]
    assert row["datetime"] == pd.Timestamp("2024-01-15 09:35:12", tz="America/New_York")
    assert (row["symbol"], row["commission"], row["currency"], row["fx_rate"], row["kind"]) == (
        "BRK B",
        0.0,
        "USD",
        1.0,
        "trade",
    )
    assert row["trade_id"] == "csv:2"


def test_plain_csv_split_rows_and_several_reasons_on_one_row():
    result = from_plain_csv(
        "date,symbol,quantity,price,kind,ratio,currency\n"
        "2024-06-10,NVDA,,,split,10,\n"
        "2024-06-10,NVDA,,,split,-2,\n"
        "nope,SAP,1,-1,,,EUR\n"
    )
    assert result.trades[["kind", "ratio", "quantity"]].values.tolist() == [["split", 10.0, 0.0]]
    assert result.rejects["reason"].tolist() == [
        "split ratio must be a positive number of new shares per old share",
        "unparseable or out-of-range date 'nope'; negative price -1.0",
    ]


def test_timestamps_with_offsets_are_converted_to_exchange_time():
    result = from_plain_csv(
        "date,symbol,quantity,price\n2024-01-15T14:35:12Z,AAPL,1,1\n2024-01-15,AAPL,1,1\n"
    )
    assert result.trades["datetime"].tolist() == [
        pd.Timestamp("2024-01-15 09:35:12", tz="America/New_York"),
        pd.Timestamp("2024-01-15 00:00:00", tz="America/New_York"),
    ]


def test_executions_from_session():
    executions = pd.DataFrame(
        {
            "exec_id": ["0001.01", "0002.01", "0003.01"],
            "order_id": [1, 2, 3],
            "perm_id": [11, 12, 13],
            "order_ref": ["a", "b", "c"],
            "account": ["DU123"] * 3,
            "symbol": ["AAPL", "AAPL", "AAPL"],
            "con_id": [265598] * 3,
            "side": ["BOT", "SLD", "SLD"],
            "quantity": [100.0, -40.0, -10.0],
            "price": [185.5, 190.0, 191.0],
            "commission": [1.0, 1.0, np.nan],
            "realized_pnl": [0.0, 180.0, np.nan],
            "currency": ["USD"] * 3,
            "exchange": ["SMART"] * 3,
            "time": pd.to_datetime(
                ["2024-01-16 01:30:00", "2024-01-16 15:00:00", "2024-01-16 15:01:00"], utc=True
            ),
        }
    )
    result = from_executions(executions)
    # 01:30 UTC is 20:30 New York time the day before: the trade date is the exchange's.
    assert result.trades["datetime"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2024-01-15 20:30",
        "2024-01-16 10:00",
    ]
    assert result.trades["trade_id"].tolist() == ["0001.01", "0002.01"]
    assert result.rejects["reason"].tolist() == ["commission 'not reported yet' is not a number"]


def test_flex_xml_sample():
    result = load_trades(SAMPLES / "flex_trades.xml")
    trades = result.trades
    assert len(trades) == 18 and set(trades["account"]) == {"U1234567"}
    first = trades.iloc[0]
    assert (first["symbol"], first["quantity"], first["price"], first["commission"]) == (
        "AAPL",
        50.0,
        145.2,
        1.0,
    )
    assert first["datetime"] == pd.Timestamp("2023-03-01 09:31:05", tz="America/New_York")
    sap = trades[trades["symbol"] == "SAP"].iloc[0]
    assert (sap["currency"], sap["fx_rate"]) == ("EUR", 1.0975)
    option = trades[trades["symbol"] == "AAPL  240119C00190000"].iloc[0]
    assert (option["asset_category"], option["multiplier"]) == ("OPT", 1.0)  # as the file says
    assert result.rejects.empty and result.unexplained.empty
    assert len(result.ibkr_realized) == 8
    assert result.ibkr_realized.set_index("trade_id")["realized_pnl"]["600000411"] == -242.0
    assert len(result.ibkr_closed_lots) == 10


def test_flex_uses_executions_when_order_rows_are_also_present():
    xml = """<FlexQueryResponse><FlexStatements><FlexStatement accountId="U1"><Trades>
    <Trade accountId="U1" assetCategory="STK" symbol="X" tradeID="9" dateTime="20240102;100000" quantity="10"
      tradePrice="5" ibCommission="-1" levelOfDetail="ORDER" />
    <Trade accountId="U1" assetCategory="STK" symbol="X" tradeID="1" dateTime="20240102;100000" quantity="4"
      tradePrice="5" ibCommission="-0.4" levelOfDetail="EXECUTION" />
    <Trade accountId="U1" assetCategory="STK" symbol="X" tradeID="2" dateTime="20240102;100001" quantity="6"
      tradePrice="5" ibCommission="-0.6" levelOfDetail="EXECUTION" />
    </Trades></FlexStatement></FlexStatements></FlexQueryResponse>"""
    trades = from_flex_xml(xml).trades
    assert trades["trade_id"].tolist() == ["1", "2"]
    assert trades["commission"].tolist() == [0.4, 0.6]


def test_activity_statement_sample():
    result = load_trades(SAMPLES / "activity_statement.csv")
    trades = result.trades
    assert len(trades) == 16 and set(trades["account"]) == {"U1234567"}
    first = trades.iloc[0]
    assert (first["symbol"], first["quantity"], first["commission"]) == ("AAPL", 50.0, 1.0)
    assert first["datetime"] == pd.Timestamp("2023-03-01 09:31:05", tz="America/New_York")
    assert result.rejects["reason"].tolist() == [
        "asset category CASH: a currency conversion is not a security lot (not booked)"
    ]
    lots = result.ibkr_closed_lots
    aapl = lots[lots["trade_id"] == "U1234567|AAPL|2024-01-16, 14:45:00|-60|183.55|Order"]
    assert aapl[["quantity", "cost_basis", "realized_pnl"]].values.tolist() == [
        [-50.0, 7261.0, 1915.65],
        [-10.0, 1881.333333, -46.003333],
    ]
    assert aapl["date_acquired"].dt.strftime("%Y-%m-%d").tolist() == ["2023-03-01", "2023-11-15"]


def test_activity_statement_bad_rows():
    text = (
        "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Quantity,T. Price,C. Price,"
        "Proceeds,Comm/Fee,Basis,Realized P/L,MTM P/L,Code\n"
        'Trades,Data,Order,Stocks,USD,AAPL,"2024-01-15, 09:35:12","1,000",185.5,185,-185500,-5,185505,0,0,O\n'
        'Trades,Data,Order,Stocks,USD,AAPL,"yesterday",10,185.5,185,-1855,-1,1856,0,0,O\n'
        'Trades,Data,Order,Stocks,EUR,SAP,"2024-01-15, 09:35:12",10,185.5,185,-1855,-1,1856,0,0,O\n'
    )
    result = from_activity_csv(text)
    assert result.trades["quantity"].tolist() == [1000.0, 10.0]
    assert result.trades["commission"].tolist() == [5.0, 1.0]
    # no USD rate in the statement: booked in EUR, USD rate left unknown (not 1)
    assert result.trades["fx_rate"].isna().tolist() == [False, True]
    assert result.trades["fx_source"].tolist() == ["USD", "none"]
    assert result.rejects["reason"].tolist() == ["unparseable or out-of-range date 'yesterday'"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hello world\n", "not a trades CSV, Flex XML, Activity Statement or Transaction History"),
        (
            "date,ticker,qty\n2024-01-01,X,1\n",
            "not a trades CSV, Flex XML, Activity Statement or Transaction History",
        ),
        ("<FlexQueryResponse><unclosed>", "not valid XML"),
        ("<FlexQueryResponse></FlexQueryResponse>", "has no <Trade> rows"),
        (
            "Statement,Header,Field Name,Field Value\nStatement,Data,Title,Activity Statement\n",
            "no Trades section",
        ),
        ("", "not a trades CSV"),
    ],
)
def test_files_that_are_not_trade_histories(tmp_path, content, message):
    path = tmp_path / "in.txt"
    path.write_text(content)
    with pytest.raises(TradeFileError, match=message):
        load_trades(path)


def test_missing_file_and_binary_file(tmp_path):
    with pytest.raises(TradeFileError, match="cannot read the file"):
        load_trades(tmp_path / "missing.csv")
    (tmp_path / "b.xlsx").write_bytes(b"PK\x03\x04\xff\xfe\x00")
    with pytest.raises(TradeFileError, match="not a text file"):
        load_trades(tmp_path / "b.xlsx")


def test_load_trades_detects_each_sample():
    assert load_trades(SAMPLES / "trades.csv").rejects.empty
    assert len(load_trades(SAMPLES / "trades.csv").trades) == 20


_DATE_CHARS = st.sampled_from("0123456789-,:; ax")


@settings(max_examples=300, deadline=None)
@given(
    when=st.lists(
        st.one_of(
            st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2300, 12, 31)),
            st.text(_DATE_CHARS, min_size=13, max_size=21),
        ),
        max_size=20,
    ),
    layout=st.sampled_from(
        ["%Y-%m-%d, %H:%M:%S", "%Y%m%d;%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]
    ),
)
def test_dates_in_ibkr_layouts_read_as_strptime_reads_them(when, layout):
    """IBKR's usual layouts are read by a numpy fast path; whatever it takes, it reads as
    pandas' strptime does (impossible dates and other spellings are left to strptime)."""
    values = pd.Series(
        [w.strftime(layout) if isinstance(w, datetime) else w for w in when], dtype="str"
    )
    fast = _parse_digits(values, layout)
    slow = pd.to_datetime(values, format=layout, errors="coerce").dt.as_unit("s").to_numpy()
    taken = ~np.isnat(fast)
    assert (fast[taken] == slow[taken]).all()
    written = np.array([isinstance(w, datetime) for w in when], dtype=bool)
    assert taken[written].all()  # everything written in the layout takes the fast path
