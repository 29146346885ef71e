"""Notebook tables: masked account ids, money with two decimals, New York times, stable HTML."""

from __future__ import annotations

import pandas as pd

from ibkr_nb.display import mask_account, set_account_masking, table


def test_account_ids_are_masked_unless_turned_off():
    assert mask_account("DU8379413") == "DU****413"
    assert mask_account("U1234567") == "U****567"
    assert mask_account("order for DU8379413 sent") == "order for DU****413 sent"
    set_account_masking(False)
    try:
        assert mask_account("DU8379413") == "DU8379413"
        assert "DU8379413" in repr(table(pd.DataFrame({"account": ["DU8379413"]})))
    finally:
        set_account_masking(True)


def test_table_formats_money_percent_and_time_but_keeps_the_numbers():
    frame = pd.DataFrame(
        {
            "account": ["DU8379413"],
            "market_value": [1234567.891],
            "pct_nav": [0.0512],
            "gain_loss": [-4.9e-14],
            "time": [pd.Timestamp("2026-11-24 15:30", tz="UTC")],
        }
    )
    shown = table(frame)
    text = repr(shown)
    assert "1,234,567.89" in text and "5.12%" in text and "DU****413" in text
    assert "2026-11-24 10:30:00-05:00" in text  # New York, not UTC
    assert " 0.00" in text and "-0.00" not in text  # no float dust
    assert shown.data["market_value"].iloc[0] == 1234567.891  # the frame is unchanged
    html = shown._repr_html_()
    assert html == table(frame)._repr_html_()  # no random ids
    assert "DU8379413" not in html and "1,234,567.89" in html


def test_money_and_exchange_time_helpers():
    from ibkr_nb.display import exchange_time, money

    assert money(1234.5) == "1,234.50" and money(-0.004) == "0.00"
    assert money(float("nan")) == "" and money(12, "USD") == "12.00 USD"
    assert str(exchange_time("2026-07-01 14:00")) == "2026-07-01 10:00:00-04:00"  # naive = UTC
    assert exchange_time(None) is None


def test_columns_can_be_chosen_and_empty_frames_render():
    frame = pd.DataFrame({"amount_owed": [1.5], "ratio": [0.25]})
    text = repr(table(frame, money=["ratio"], percent=[]))
    assert "0.25" in text and "1.5" in text and "1.50" not in text  # only the chosen ones
    assert table(frame.iloc[0:0])._repr_html_().startswith("<style")
