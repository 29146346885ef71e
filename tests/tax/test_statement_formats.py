"""Hand-written statements, one per way real IBKR files broke the tax numbers (issue 11):
each failed on the old importers and passes now."""

import math

import pandas as pd
import pytest
from statement_rows import ACTIVITY_HEADER, flex, trade

from ibkr_nb.tax import from_executions, load_trades, match_lots
from ibkr_nb.tax.flex import day_first, flex_datetime
from ibkr_nb.tax.importers import from_activity_csv, from_flex_xml
from ibkr_nb.tax.reports import reconcile_statement


def realized_total(trades: pd.DataFrame) -> float:
    r = match_lots(trades, wash_sales=False).realized
    return float((r["proceeds"] - r["cost_basis"]).sum())


def test_order_and_trade_rows_are_one_fill_and_a_wrong_figure_is_a_mismatch():
    text = ACTIVITY_HEADER + (
        'Trades,Data,Order,Stocks,USD,X,"2024-01-02, 10:00:00",-,100,10,-1000,-1,1001,0,O\n'
        'Trades,Data,Trade,Stocks,USD,X,"2024-01-02, 10:00:00",ARCA,100,10,-1000,-1,1001,0,O\n'
        'Trades,Data,Order,Stocks,USD,X,"2024-01-03, 10:00:00",-,-100,12,1200,-1,-1001,198,C\n'
        'Trades,Data,Trade,Stocks,USD,X,"2024-01-03, 10:00:00",ARCA,-60,12,720,-0.6,-600.6,118.8,C;P\n'
        'Trades,Data,Trade,Stocks,USD,X,"2024-01-03, 10:00:00",NYSE,-40,12,480,-0.4,-400.4,79.2,C;P\n'
    )
    statement = from_activity_csv(text)
    assert statement.trades["quantity"].tolist() == [100.0, -100.0]
    assert realized_total(statement.trades) == pytest.approx(198.0)
    assert reconcile_statement(statement)["status"].tolist() == ["match"]
    wrong = from_activity_csv(text.replace(",198,C", ",200,C"))
    row = reconcile_statement(wrong).iloc[0]
    assert row["status"] == "mismatch" and row["difference"] == pytest.approx(-2.0)
    assert "ours 198.00 ibkr 200.00" in row["trades"]


def test_a_sale_of_a_pre_period_lot_uses_the_closed_lot_and_never_opens_a_short():
    text = ACTIVITY_HEADER + (
        'Trades,Data,Order,Stocks,USD,X,"2024-05-02, 10:00:00",-,-10,15,150,-1,-101,48,C\n'
        "Trades,Data,ClosedLot,Stocks,USD,X,2022-01-10,,10,10.1,,,101,48,LT\n"
        'Trades,Data,Order,Stocks,USD,Y,"2024-05-02, 10:00:00",-,-10,15,150,-1,-101,48,C\n'
    )
    statement = from_activity_csv(text)
    lot = statement.opening_lots.iloc[0]
    assert (lot["symbol"], str(lot["date_acquired"].date()), lot["cost_basis"]) == (
        "X",
        "2022-01-10",
        101.0,
    )
    result = match_lots(statement.trades, wash_sales=False)
    assert result.realized[["symbol", "position", "term"]].values.tolist() == [
        ["X", "long", "long"]
    ]
    assert result.realized["gain_loss"].sum() == pytest.approx(48.0)
    assert result.open_lots.empty  # Y is not booked as a short
    assert statement.unexplained[["symbol", "quantity"]].values.tolist() == [["Y", -10.0]]


def test_flex_lot_rows_supply_the_pre_period_lot():
    xml = flex(
        trade("7", "X", "20240502;100000", "-10", "15", "C", pnl="48"),
        '<Lot accountId="U1" symbol="X" tradeID="7" openDateTime="20220110;093000" quantity="10" cost="101" fifoPnlRealized="48" levelOfDetail="CLOSED_LOT" />',
    )
    statement = from_flex_xml(xml)
    assert statement.unexplained.empty and len(statement.opening_lots) == 1
    assert reconcile_statement(statement)["status"].tolist() == ["match"]


def test_executions_of_a_position_held_before_the_session():
    executions = pd.DataFrame(
        {
            "exec_id": ["e1"],
            "account": ["DU1"],
            "symbol": ["KO"],
            "time": [pd.Timestamp("2024-05-02 14:00", tz="UTC")],
            "quantity": [-10.0],
            "price": [60.0],
            "commission": [1.0],
            "currency": ["USD"],
        }
    )
    alone = match_lots(from_executions(executions).trades)  # no prior positions given: a short
    assert alone.realized.empty and alone.open_lots["position"].tolist() == ["short"]
    prior = pd.DataFrame(
        {"account": ["DU1"], "symbol": ["KO"], "quantity": [10.0], "cost_basis": [550.0]}
    )
    result = match_lots(from_executions(executions, prior_positions=prior).trades)
    assert result.realized["position"].tolist() == ["long"]
    assert result.realized["gain_loss"].sum() == pytest.approx(600 - 1 - 550)
    more = pd.concat(  # a buy of the held symbol adds to it; the sale takes the old lot first
        [
            executions.assign(
                exec_id="e0", quantity=5.0, time=executions["time"] - pd.Timedelta("1h")
            ),
            executions,
        ]
    )
    imported = from_executions(more, prior_positions=prior)
    assert imported.unexplained.empty
    again = match_lots(imported.trades, wash_sales=False)
    assert again.realized["lot_id"].tolist() == ["prior:DU1:KO"]
    assert again.open_lots["quantity"].tolist() == [5.0]


def test_fx_rate_to_base_in_a_eur_account():
    info = '<AccountInformation accountId="U1" currency="EUR" />'
    xml = flex(
        trade("1", "AAPL", "20240102;100000", "10", "100", "O", fxRateToBase="0.9"),
        trade("2", "SAP", "20240102;110000", "10", "100", "O", currency="EUR"),
        trade(
            "3", "VOLV B", "20240102;120000", "10", "100", "O", currency="SEK", fxRateToBase="0.09"
        ),
        trade(
            "4", "SHOP", "20240105;120000", "10", "100", "O", currency="CAD", fxRateToBase="0.68"
        ),
        info=info,
    )
    trades = from_flex_xml(xml).trades.set_index("symbol")
    assert trades.loc["AAPL", "fx_rate"] == 1.0  # a USD trade is 1 USD, whatever 0.9 says
    assert trades.loc["SAP", "fx_rate"] == pytest.approx(1 / 0.9)  # EUR -> USD via that day
    assert trades.loc["VOLV B", "fx_rate"] == pytest.approx(0.09 / 0.9)
    assert math.isnan(trades.loc["SHOP", "fx_rate"])  # no USD rate on 2024-01-05: none made up
    assert trades["fx_source"].tolist() == ["USD", "ConversionRate", "ConversionRate", "none"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["03/15/2024;093000", "03/20/2024"], ["2024-03-15 09:30:00", "2024-03-20"]),
        (["15/03/2024;09:30:00", "20/03/2024"], ["2024-03-15 09:30:00", "2024-03-20"]),
        (["15/03/24", "02/04/24"], ["2024-03-15", "2024-04-02"]),  # dd/MM/yy, not 2015 or 1924
        (["03/04/2024", "03/05/2024"], ["2024-03-04", "2024-03-05"]),  # closest together
        (["2024-03-15;09:30:00", "20240315 093000"], ["2024-03-15 09:30:00"] * 2),
    ],
)
def test_flex_date_formats(values, expected):
    first = day_first(values)
    assert [flex_datetime(v, first) for v in values] == expected


def test_flex_statement_in_dd_mm_yy_dates():
    xml = flex(
        trade("1", "X", "15/03/24;093000", "10", "10", "O"),
        trade("2", "X", "02/04/24;093000", "-10", "11", "C", pnl="8"),
    )
    trades = from_flex_xml(xml).trades
    assert trades["datetime"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-15", "2024-04-02"]


def test_lowercase_and_suffixed_tickers():
    rows = "".join(
        f'Trades,Data,Order,Stocks,EUR,{s},"2024-01-02, 10:00:00",-,10,10,-100,-1,101,0,O\n'
        for s in ("BMWd", "CHSPIz", "HMBs")
    )
    statement = from_activity_csv(ACTIVITY_HEADER + rows)
    assert statement.rejects.empty
    assert statement.trades["symbol"].tolist() == ["BMWd", "CHSPIz", "HMBs"]


def test_a_flex_cancellation_removes_the_trade_it_cancels():
    xml = flex(
        trade("1", "X", "20240102;100000", "10", "10", "O"),
        trade("2", "X", "20240103;100000", "-10", "12", "C", pnl="18"),
        trade(
            "3",
            "X",
            "20240103;100000",
            "10",
            "12",
            "",
            buySell="SELL (Ca.)",
            notes="Ca",
            origTradeID="2",
        ),
    )
    statement = from_flex_xml(xml)
    assert statement.trades["trade_id"].tolist() == ["1"]
    assert statement.ibkr_realized.empty and statement.rejects.empty


def test_a_cancellation_of_a_trade_not_in_the_file_is_rejected_with_its_reason():
    xml = flex(trade("3", "X", "20240103;100000", "10", "12", "", buySell="SELL (Ca.)", notes="Ca"))
    statement = from_flex_xml(xml)
    assert statement.trades.empty
    assert statement.rejects["reason"].str.contains("cancels a trade that is not in this").all()


def test_transaction_history_is_not_taken_for_an_activity_statement(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(
        "Statement,Header,Field Name,Field Value\n"
        "Statement,Data,Title,Transaction History\n"
        "Summary,Header,Field Name,Field Value\n"
        "Summary,Data,Base Currency,USD\n"
        "Transaction History,Header,Date,Account,Description,Transaction Type,Symbol,Quantity,Price,Gross Amount ,Commission,Net Amount\n"
        "Transaction History,Data,2025-03-20,U1,X INC,Sell,X,-5,12,60,-1,59\n"
        "Transaction History,Data,2025-03-15,U1,X INC,Buy,X,10,10,-100,-1,-101\n"
        "Transaction History,Data,2025-03-15,U1,Deposit,Deposit,-,-,-,500,-,500\n"
    )
    statement = load_trades(path)
    assert statement.trades["quantity"].tolist() == [10.0, -5.0]
    assert realized_total(statement.trades) == pytest.approx(59 - 50.5)


def test_a_fully_quoted_activity_statement(tmp_path):
    plain = ACTIVITY_HEADER + (
        'Trades,Data,Order,Stocks,USD,X,"2024-01-02, 10:00:00",-,"1,000",10,-10000,-1,10001,0,O\n'
    )
    quoted = "".join(
        ",".join(f'"{c}"' for c in row) + "\n"
        for row in __import__("csv").reader(plain.splitlines())
    )
    path = tmp_path / "quoted.csv"
    path.write_text(quoted)
    statement = load_trades(path)
    assert statement.trades["quantity"].tolist() == [1000.0] and statement.rejects.empty


def test_a_russian_activity_statement(tmp_path):
    path = tmp_path / "ru.csv"
    path.write_text(
        "Statement,Header,Название поля,Значение поля\n"
        "Информация о счете,Data,Счет,U7\n"
        "Информация о счете,Data,Базовая валюта,USD\n"
        "Сделки,Header,DataDiscriminator,Класс актива,Валюта,Символ,Дата/Время,Количество,"
        "Цена транзакции,Цена закрытия,Выручка,Комиссия/плата,Базис,Реализованная П/У,"
        "Рыноч. переоценка П/У,Код\n"
        'Сделки,Data,Order,Акции,USD,CMCSA,"2024-02-20, 09:30:00",200,41.15,41.66,-8230,-1,8231,0,102,O\n'
        'Сделки,Data,Order,Акции,USD,CMCSA,"2024-10-28, 11:51:28",-200,41.88,41.84,8376,-2,-8231,143,14,C\n',
        encoding="utf-8",
    )
    statement = load_trades(path)
    assert statement.trades["account"].unique().tolist() == ["U7"]
    assert statement.trades["quantity"].tolist() == [200.0, -200.0]
    assert reconcile_statement(statement)["status"].tolist() == ["match"]


def test_sek_and_cad_trades_without_a_usd_rate_are_computed_in_their_currency():
    text = ACTIVITY_HEADER + (
        'Trades,Data,Order,Stocks,SEK,VOLV B,"2024-01-02, 10:00:00",-,100,250,-25000,-49,25049,0,O\n'
        'Trades,Data,Order,Stocks,SEK,VOLV B,"2024-02-02, 10:00:00",-,-100,270,27000,-49,-25049,1902,C\n'
        'Trades,Data,Order,Stocks,CAD,SHOP,"2024-01-02, 10:00:00",-,10,100,-1000,-1,1001,0,O\n'
    )
    statement = from_activity_csv(text)
    assert statement.rejects.empty and len(statement.trades) == 3
    assert reconcile_statement(statement).set_index("symbol").loc["VOLV B", "status"] == "match"
    usd = match_lots(statement.trades).realized
    assert usd["proceeds"].isna().all()  # no USD figure is made up from a missing rate


def test_a_flex_split_keeps_the_basis_and_dates():
    xml = flex(
        trade("1", "X", "20240102;100000", "10", "400", "O"),
        trade("2", "X", "20240705;100000", "-40", "110", "C", pnl="398"),
        extra=(
            '<CorporateActions><CorporateAction accountId="U1" currency="USD" symbol="X" '
            'type="FS" dateTime="20240610;202500" quantity="30" '
            'description="X(US000) SPLIT 4 FOR 1 (X, X INC, US000)" /></CorporateActions>'
        ),
    )
    statement = from_flex_xml(xml)
    assert statement.trades["kind"].tolist() == ["trade", "trade", "split"]
    result = match_lots(statement.trades, wash_sales=False)
    assert result.open_lots.empty
    sold = result.realized.iloc[0]
    assert (sold["quantity"], str(sold["date_acquired"].date())) == (40.0, "2024-01-02")
    assert sold["gain_loss"] == pytest.approx(4400 - 1 - 4001)
    assert reconcile_statement(statement)["status"].tolist() == ["match"]


def test_an_option_expiring_worthless_is_a_loss_of_the_premium():
    text = (
        "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Exchange,"
        "Quantity,T. Price,Proceeds,Comm/Fee,Basis,Realized P/L,Code\n"
        'Trades,Data,Order,Equity and Index Options,USD,X 19JAN24 50 C,"2024-01-02, 10:00:00",-,1,2.35,-235,-0.65,235.65,0,O\n'
        'Trades,Data,Order,Equity and Index Options,USD,X 19JAN24 50 C,"2024-01-19, 16:20:00",-,-1,0,0,0,-235.65,-235.65,C;Ep\n'
    )
    statement = from_activity_csv(text)
    result = match_lots(statement.trades, wash_sales=False)
    assert statement.trades["multiplier"].tolist() == [100.0, 100.0]  # the expiry row says none
    assert result.realized["gain_loss"].sum() == pytest.approx(-235.65)
    assert reconcile_statement(statement)["status"].tolist() == ["match"]


@pytest.mark.parametrize(
    ("quantity", "price", "when", "reason"),
    [
        ("10", "inf", "2024-01-02", "price is infinite"),
        ("10", "nan", "2024-01-02", "price is missing or not a number"),
        ("1e13", "10", "2024-01-02", "absurd quantity"),
        ("inf", "10", "2024-01-02", "quantity is infinite"),
        ("10", "10", "2400-01-02", "out-of-range date '2400-01-02, 10:00:00'"),
        ("10", "10", "0201-01-02", "out-of-range date '0201-01-02, 10:00:00'"),
    ],
)
def test_bad_numbers_and_dates_are_rejected_and_the_rest_kept(quantity, price, when, reason):
    text = ACTIVITY_HEADER + (
        f'Trades,Data,Order,Stocks,USD,X,"{when}, 10:00:00",-,{quantity},{price},0,-1,0,0,O\n'
        'Trades,Data,Order,Stocks,USD,Y,"2024-01-02, 10:00:00",-,5,10,-50,-1,51,0,O\n'
    )
    statement = from_activity_csv(text)
    assert statement.trades["symbol"].tolist() == ["Y"]
    assert reason in statement.rejects["reason"].iloc[0]
    assert statement.rejects["line"].tolist() == [2]


def test_an_activity_statement_split_keeps_the_basis_and_other_actions_are_rejected():
    text = (
        ACTIVITY_HEADER
        + 'Trades,Data,Order,Stocks,USD,X,"2024-01-02, 10:00:00",-,10,400,-4000,-1,4001,0,O\n'
        + 'Trades,Data,Order,Stocks,USD,X,"2024-07-05, 10:00:00",-,-40,110,4400,-1,-4001,398,C\n'
        + "Corporate Actions,Header,Asset Category,Currency,Report Date,Date/Time,Description,"
        "Quantity,Proceeds,Value,Realized P/L,Code\n"
        + 'Corporate Actions,Data,Stocks,USD,2024-06-10,"2024-06-07, 20:25:00",'
        '"X(US0000000001) Split 4 for 1 (X, X INC, US0000000001)",30,0,0,0,\n'
        + 'Corporate Actions,Data,Stocks,USD,2024-08-01,"2024-08-01, 20:25:00",'
        '"Y(US0000000002) Spinoff  1 for 10 (Z, Z INC, US0000000003)",5,0,0,0,\n'
    )
    statement = from_activity_csv(text)
    assert statement.trades["kind"].tolist() == ["trade", "trade", "split"]
    assert statement.unexplained.empty
    result = match_lots(statement.trades, wash_sales=False)
    assert result.open_lots.empty and result.realized["gain_loss"].sum() == pytest.approx(398.0)
    assert reconcile_statement(statement)["status"].tolist() == ["match"]
    assert statement.rejects["reason"].str.contains("Spinoff").tolist() == [True]


def test_overlapping_statements_merge_into_one_history_without_double_lots():
    from ibkr_nb.tax.history import merge_imports

    first = from_flex_xml(
        flex(
            trade("1", "X", "20230301;100000", "10", "10", "O"),
            trade("5", "Y", "20230601;100000", "3", "20", "O"),
        )
    )
    lot = (
        '<Lot accountId="U1" symbol="X" tradeID="2" openDateTime="20230301;100000" '
        'quantity="10" cost="101" levelOfDetail="CLOSED_LOT" />'
    )
    second = from_flex_xml(
        flex(
            trade("5", "Y", "20230601;100000", "3", "20", "O"),  # in both statements
            trade("2", "X", "20240301;100000", "-10", "12", "C", pnl="18"),
            lot,
        )
    )
    assert len(second.opening_lots) == 1  # alone, the 2024 statement needs the 2023 lot
    merged = merge_imports([first, second])
    assert merged.opening_lots.empty and merged.unexplained.empty
    assert sorted(merged.trades["trade_id"]) == ["1", "2", "5"]
    result = match_lots(merged.trades, wash_sales=False)
    assert result.realized[["lot_id", "gain_loss"]].values.tolist() == [["1", 18.0]]
    assert reconcile_statement(merged)["status"].tolist() == ["match"]


def test_a_chf_account_converts_chf_trades_to_usd_with_the_statement_s_own_rate():
    info = '<AccountInformation accountId="U1" currency="CHF" />'
    rates = (
        '<ConversionRates><ConversionRate reportDate="20240102" fromCurrency="USD" '
        'toCurrency="CHF" rate="0.8" /><ConversionRate reportDate="20240202" '
        'fromCurrency="USD" toCurrency="CHF" rate="0.9" /></ConversionRates>'
    )
    xml = flex(
        trade("1", "NESN", "20240102;100000", "10", "100", "O", currency="CHF"),
        trade("2", "NESN", "20240202;100000", "-10", "110", "C", pnl="98", currency="CHF"),
        trade("3", "VT", "20240102;110000", "10", "100", "O", fxRateToBase="0.8"),
        trade("4", "VT", "20240202;110000", "-10", "110", "C", pnl="98", fxRateToBase="0.9"),
        info=info,
        extra=rates,
    )
    statement = from_flex_xml(xml)
    assert statement.base_currency == {"U1": "CHF"}
    realized = match_lots(statement.trades, wash_sales=False).realized.set_index("symbol")
    # CHF at the trade day's USD -> CHF rate: cost 1,001 / 0.8 = 1,251.25 USD, proceeds
    # 1,099 / 0.9 = 1,221.11 USD; the USD ETF stays in USD whatever fxRateToBase (CHF) says
    assert realized.loc["NESN", ["cost_basis", "proceeds"]].round(2).tolist() == [1251.25, 1221.11]
    assert realized.loc["VT", ["cost_basis", "proceeds"]].round(2).tolist() == [1001.0, 1099.0]
    assert reconcile_statement(statement)["status"].tolist() == ["match", "match"]


def test_a_flex_reverse_split_is_one_split_and_a_cash_merger_is_a_sale():
    actions = (
        "<CorporateActions>"
        # IBKR books a reverse split as two rows: the old shares out, the new ones in
        '<CorporateAction accountId="U1" currency="USD" symbol="X" type="RS" '
        'dateTime="20240610;202500" quantity="-100" transactionID="71" '
        'description="X(US000) SPLIT 1 FOR 10 (X, X INC, US000)" />'
        '<CorporateAction accountId="U1" currency="USD" symbol="X" type="RS" '
        'dateTime="20240610;202500" quantity="10" transactionID="72" '
        'description="X(US000) SPLIT 1 FOR 10 (X, X INC, US000)" />'
        '<CorporateAction accountId="U1" currency="USD" fxRateToBase="1" symbol="Y" '
        'type="TC" dateTime="20240801;202500" quantity="-20" proceeds="900" '
        'fifoPnlRealized="499" transactionID="73" '
        'description="Y(US111) MERGED(Acquisition) FOR USD 45.00 PER SHARE (Y, Y INC, US111)" />'
        "</CorporateActions>"
    )
    xml = flex(
        trade("1", "X", "20240102;100000", "100", "2", "O"),
        trade("2", "X", "20240705;100000", "-10", "25", "C", pnl="48"),
        trade("3", "Y", "20240102;100000", "20", "20", "O"),
        extra=actions,
    )
    statement = from_flex_xml(xml)
    assert statement.rejects.empty
    booked = statement.trades.sort_values("datetime", kind="stable")
    assert booked[["symbol", "kind"]].values.tolist() == [
        ["X", "trade"],
        ["Y", "trade"],
        ["X", "split"],  # one split of 1 for 10, not two
        ["X", "trade"],
        ["Y", "trade"],  # the merger: a sale of the 20 shares
    ]
    result = match_lots(statement.trades, wash_sales=False)
    assert result.open_lots.empty
    # X: 100 shares at 2 (+1) become 10 at 20.10; sold at 25 (-1): 249 - 201 = 48.
    # Y: 20 shares at 20 (+1) taken for 45 a share: 900 - 401 = 499, on the merger's date.
    gains = result.realized.set_index("symbol")
    assert gains["gain_loss"].round(2).to_dict() == {"X": 48.0, "Y": 499.0}
    assert str(gains.loc["Y", "date_sold"].date()) == "2024-08-01"
    assert reconcile_statement(statement)["status"].tolist() == ["match", "match"]


@pytest.mark.parametrize(
    ("commission", "reason"),
    [("-inf", "commission is infinite"), ("abc", "commission is missing or not a number")],
)
def test_an_infinite_or_unreadable_commission_is_rejected_and_the_rest_kept(commission, reason):
    text = ACTIVITY_HEADER + (
        f'Trades,Data,Order,Stocks,USD,X,"2024-01-02, 10:00:00",-,10,10,-100,{commission},0,0,O\n'
        'Trades,Data,Order,Stocks,USD,Y,"2024-01-02, 10:00:00",-,5,10,-50,-1,51,0,O\n'
    )
    statement = from_activity_csv(text)
    assert statement.trades["symbol"].tolist() == ["Y"]
    assert statement.rejects["line"].tolist() == [2]
    assert reason in statement.rejects["reason"].iloc[0]
