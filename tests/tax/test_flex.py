"""Flex XML dates in the usual layout (yyyyMMdd;HHmmss), which the importer reads in one go
for speed, come out as the general date reader reads them, valid or not."""

from datetime import datetime

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from statement_rows import flex, trade

from ibkr_nb.tax.flex import flex_datetime
from ibkr_nb.tax.importers import from_flex_xml
from ibkr_nb.tax.trades import parse_datetimes

USUAL = st.datetimes(min_value=datetime(1890, 1, 1), max_value=datetime(2210, 12, 31)).map(
    lambda d: d.strftime("%Y%m%d;%H%M%S")
)
DIGITS = st.from_regex(r"\d{8};\d{6}", fullmatch=True)  # mostly no date (month 47, hour 93)
NEAR = st.from_regex(r"20\d\d[01]\d[0-3]\d;[0-2]\d[0-6]\d[0-6]\d", fullmatch=True)


@given(st.lists(st.one_of(USUAL, DIGITS, NEAR), min_size=1, max_size=8))
def test_usual_flex_dates_read_as_the_general_reader_reads_them(values):
    result = from_flex_xml(
        flex(*(trade(str(i), "X", v, "1", "10", "O") for i, v in enumerate(values)))
    )
    expected = parse_datetimes(pd.Series([flex_datetime(v, False) for v in values], dtype="str"))
    booked = dict(zip(result.trades["trade_id"], result.trades["datetime"], strict=True))
    assert booked == {str(i): t for i, t in enumerate(expected) if pd.notna(t)}
    refused = result.rejects["reason"].tolist()
    assert len(refused) == int(expected.isna().sum())
    assert all(r.startswith("unparseable or out-of-range date '") for r in refused)


def test_a_refused_trade_row_is_quoted_with_its_id_symbol_and_date_as_given():
    xml = flex(
        trade("1", "X", "20240115;093512", "10", "10", "O"),
        trade("2", "X", "20240231;093512", "-5", "10", "C"),  # no 31 February
        trade("3", "EUR.USD", "20240116;100000", "10", "1.1", "O", assetCategory="CASH"),
    )
    rejects = from_flex_xml(xml).rejects
    assert rejects["raw"].tolist() == [
        'Trade tradeID="2" symbol="X" dateTime="20240231;093512"',
        'Trade tradeID="3" symbol="EUR.USD" dateTime="20240116;100000"',
    ]
    assert rejects["reason"].iloc[0] == "unparseable or out-of-range date '2024-02-31 09:35:12'"
