"""Trades IBKR cancelled or corrected (codes Ca / Co, Flex TradeCancel / TradeCorrect): the
cancelled trade and its cancellation leave the history, the rebooked trade is booked once,
and the import says which trades it left out and why. Rows are written as IBKR writes them:
the cancellation reverses the trade (opposite quantity), has no trade id of its own in Flex
and names the original by `origTradeID`; the rebooked trade reuses the original trade id."""

import argparse

import pandas as pd
import pytest
from statement_rows import ACTIVITY_HEADER, flex
from statement_rows import trade as flex_trade

from ibkr_nb.tax.cli import add_tax_command
from ibkr_nb.tax.importers import from_activity_csv, from_flex_xml, merge_imports
from ibkr_nb.tax.lots import match_lots
from ibkr_nb.tax.reports import reconcile_statement


def trade(trade_id, quantity, price, oc="", pnl="0", when="20240103;100000", **more) -> str:
    """A trade in X as IBKR books it (an exchange trade unless `more` says otherwise)."""
    side = "BUY" if float(quantity) > 0 else "SELL"
    more = {"transactionType": "ExchTrade", "buySell": side, **more}
    return flex_trade(trade_id, "X", when, quantity, price, oc, pnl, **more)


def cancel(orig_id, quantity, price, side, when="20240103;100000", **more) -> str:
    """IBKR's cancellation of trade `orig_id` (which had -quantity at price)."""
    return trade(
        "",
        quantity,
        price,
        transactionType="TradeCancel",
        notes="Ca",
        buySell=f"{side} (Ca.)",
        origTradeID=orig_id,
        origTradePrice=price,
        when=when,
        ibCommission="1",
        **more,
    )


BUY = trade("1", "10", "10", "O", when="20240102;100000", transactionID="101")


def gain(trades: pd.DataFrame) -> float:
    r = match_lots(trades, wash_sales=False).realized
    return round(float((r["proceeds"] - r["cost_basis"]).sum()), 2)


def test_a_sale_cancelled_and_rebooked_at_another_price_books_the_rebooked_figures():
    statement = from_flex_xml(
        flex(
            BUY,
            trade("2", "-10", "12", "C", pnl="18", transactionID="102"),
            cancel("2", "10", "12", "SELL", transactionID="103"),
            trade("2", "-10", "13", "C", pnl="28", transactionID="104"),
        )
    )
    assert statement.rejects.empty
    assert statement.trades[["trade_id", "quantity", "price"]].values.tolist() == [
        ["1", 10.0, 10.0],
        ["2", -10.0, 13.0],
    ]
    # 10 x 13 - 1 commission - (10 x 10 + 1) = 28, not the cancelled 18
    assert gain(statement.trades) == 28.0
    assert statement.ibkr_realized["realized_pnl"].tolist() == [28.0]
    assert reconcile_statement(statement)["status"].tolist() == ["match"]
    fixed = statement.corrections.iloc[0]
    assert len(statement.corrections) == 1
    assert (fixed["trade_id"], fixed["price"], fixed["replaced_by"]) == ("2", 12.0, "2")
    assert "cancelled by IBKR (code Ca" in fixed["reason"]
    assert "rebooked as trade 2" in fixed["reason"] and "-10 at 13" in fixed["reason"]


def test_a_cancelled_buy_and_its_cancellation_leave_nothing():
    statement = from_flex_xml(flex(BUY, cancel("1", "-10", "10", "BUY", when="20240102;100000")))
    assert statement.trades.empty and statement.rejects.empty
    assert statement.corrections[["trade_id", "quantity", "replaced_by"]].values.tolist() == [
        ["1", 10.0, ""]
    ]


def test_a_cancellation_without_orig_trade_id_takes_the_reversed_trade_at_the_original_price():
    statement = from_flex_xml(
        flex(
            BUY,
            trade("2", "-10", "12", "C", pnl="18"),
            trade("3", "-10", "11", "C", pnl="8", when="20240104;100000"),
            # names no trade: the sale of 10 at 12 (the cancellation's origTradePrice)
            cancel("", "10", "12", "SELL"),
            trade("4", "-5", "12.5", "C", pnl="11.5", notes="Co"),
        )
    )
    assert statement.trades["trade_id"].tolist() == ["1", "4", "3"]
    assert statement.corrections[["trade_id", "replaced_by"]].values.tolist() == [["2", "4"]]
    # 5 x 12.5 - 1 - 50.5 = 11; 5 of the second sale close the rest: 5 x 11 - 1 - 50.5 = 3.5;
    # the other 5 of that sale are not held (left out, never a short)
    assert gain(statement.trades) == pytest.approx(14.5)
    assert statement.unexplained["quantity"].tolist() == [-5.0]


def test_a_corrected_trade_naming_the_original_replaces_it_without_a_cancellation_row():
    statement = from_flex_xml(
        flex(
            BUY,
            trade("2", "-10", "12", "C", pnl="18"),
            trade(
                "5", "-10", "12.5", "C", pnl="23", transactionType="TradeCorrect", origTradeID="2"
            ),
        )
    )
    assert statement.trades["trade_id"].tolist() == ["1", "5"]
    assert gain(statement.trades) == 23.0
    assert statement.corrections[["trade_id", "replaced_by"]].values.tolist() == [["2", "5"]]
    assert "corrected by IBKR (code Co" in statement.corrections["reason"].iloc[0]


def test_the_cancelled_sale_s_closed_lots_do_not_open_a_pre_period_position_twice():
    lot = (
        '<Lot accountId="U1" symbol="X" tradeID="2" openDateTime="20220110;100000" '
        'quantity="10" cost="101" levelOfDetail="CLOSED_LOT" />'
    )
    statement = from_flex_xml(
        flex(
            trade("2", "-10", "12", "C", pnl="18"),
            lot,
            cancel("2", "10", "12", "SELL"),
            trade("2", "-10", "13", "C", pnl="28"),
            lot,
        )
    )
    assert statement.rejects.empty and statement.unexplained.empty
    assert statement.opening_lots["quantity"].tolist() == [10.0]
    assert gain(statement.trades) == 28.0


def test_cancellations_repeated_at_order_level_are_not_applied_twice():
    order_level = {"levelOfDetail": "ORDER"}
    statement = from_flex_xml(
        flex(
            BUY,
            trade("2", "-10", "12", "C", pnl="18"),
            trade("2", "-10", "12", "C", pnl="18", **order_level),
            cancel("2", "10", "12", "SELL"),
            cancel("2", "10", "12", "SELL", **order_level),
        )
    )
    assert statement.rejects.empty
    assert statement.trades["trade_id"].tolist() == ["1"]


def test_activity_csv_cancel_and_rebook_books_the_rebooked_sale_and_its_realized_figure():
    text = ACTIVITY_HEADER + (
        'Trades,Data,Order,Stocks,USD,X,"2024-01-02, 10:00:00",-,100,10,-1000,-1,1001,0,O\n'
        'Trades,Data,Order,Stocks,USD,X,"2024-01-03, 10:00:00",-,-100,12,1200,-1,-1001,198,C\n'
        'Trades,Data,Order,Stocks,USD,X,"2024-01-03, 10:00:00",-,100,12,-1200,1,1001,-198,Ca\n'
        'Trades,Data,Order,Stocks,USD,X,"2024-01-03, 10:00:00",-,-100,12.5,1250,-1,-1001,248,C;Co\n'
        'Trades,Data,Order,Stocks,USD,Y,"2024-01-04, 10:00:00",-,50,20,-1000,-1,1001,0,O\n'
    )
    statement = from_activity_csv(text)
    assert statement.rejects.empty
    assert statement.trades["price"].tolist() == [10.0, 12.5, 20.0]
    assert gain(statement.trades) == 248.0
    assert statement.ibkr_realized[["symbol", "realized_pnl"]].values.tolist() == [["X", 248.0]]
    assert reconcile_statement(statement)["status"].tolist() == ["match"]
    assert statement.corrections[["quantity", "price"]].values.tolist() == [[-100.0, 12.0]]
    assert "rebooked" in statement.corrections["reason"].iloc[0]


OLDER = flex(BUY, trade("2", "-10", "12", "C", pnl="18"))
NEWER = flex(
    BUY,
    trade("2", "-10", "12", "C", pnl="18"),
    cancel("2", "10", "12", "SELL"),
    trade("2", "-10", "13", "C", pnl="28"),
)


@pytest.mark.parametrize(
    "statements",
    [(OLDER, NEWER), (NEWER, OLDER), (NEWER, NEWER)],
    ids=["old-new", "new-old", "same"],
)
def test_merged_statements_keep_the_rebooked_trade_whatever_their_order(statements):
    merged = merge_imports([from_flex_xml(x, source=f"s{i}") for i, x in enumerate(statements)])
    assert merged.trades[["trade_id", "price"]].values.tolist() == [["1", 10.0], ["2", 13.0]]
    assert gain(merged.trades) == 28.0
    assert merged.ibkr_realized["realized_pnl"].tolist() == [28.0]


def test_the_cli_summary_names_the_cancelled_trade_and_writes_corrections_csv(tmp_path, capsys):
    path = tmp_path / "flex.xml"
    path.write_text(NEWER)
    parser = argparse.ArgumentParser(prog="ibkr-nb")
    add_tax_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["tax", str(path), "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    said = capsys.readouterr().out
    assert "not booked: trade 2 X, cancelled by IBKR (code Ca" in said
    assert "rebooked as trade 2" in said
    written = pd.read_csv(tmp_path / "out" / "corrections.csv", dtype=str)
    assert written[["trade_id", "price", "replaced_by"]].values.tolist() == [["2", "12.0", "2"]]
