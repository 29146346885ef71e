"""`ibkr-nb tax`: files written all or nothing, a short summary, exit code 2 on a bad file."""

import argparse
from pathlib import Path

import pandas as pd
import pytest

from ibkr_nb.tax.cli import add_tax_command

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ibkr-nb")
    add_tax_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["tax", *argv])
    return args.func(args)


def test_tax_on_the_sample_writes_the_three_files_and_the_rates_used(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(str(SAMPLES / "trades.csv"), "--year", "2024", "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "form8949.csv",
        "fx_rates.csv",  # SAP is in EUR: which USD rates were used
        "open_lots.csv",
        "schedule_d.csv",
    ]
    rates = pd.read_csv(out / "fx_rates.csv")
    assert rates[["currency", "fx_source"]].values.tolist() == [["EUR", "given"], ["USD", "USD"]]
    form = pd.read_csv(out / "form8949.csv", keep_default_na=False)
    assert list(form.columns) == [
        "description",
        "symbol",
        "quantity",
        "date_acquired",
        "date_sold",
        "proceeds",
        "cost_basis",
        "adjustment_code",
        "adjustment_amount",
        "gain_loss",
        "term",
        "box",
    ]
    assert len(form) == 11
    lots = pd.read_csv(out / "open_lots.csv")
    assert lots[
        [
            "symbol",
            "quantity",
            "date_acquired",
            "holding_period_start",
            "cost_basis",
            "wash_sale_adjustment",
        ]
    ].values.tolist() == [
        ["NVDA", 50.0, "2024-05-01", "2024-05-01", 4250.5, 0.0],
        ["VOO", 1.25, "2024-08-01", "2024-08-01", 600.3, 0.0],
        ["SAP", 20.0, "2024-10-07", "2024-10-07", 4171.6, 0.0],
    ]
    printed = capsys.readouterr().out
    assert "20 trades read, 0 rejected" in printed
    assert "short-term gain 2,931.20 USD, long-term gain 1,880.08 USD" in printed
    assert "wash-sale losses disallowed 101.80 USD" in printed


def test_method_and_no_wash_sales_and_default_year(tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        run(
            str(SAMPLES / "flex_trades.xml"),
            "--method",
            "lifo",
            "--no-wash-sales",
            "--out",
            str(out),
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "tax year 2024, method lifo, without wash sales" in printed
    assert "18 trades read, 0 rejected" in printed
    assert not (out / "rejects.csv").exists()
    assert (pd.read_csv(out / "form8949.csv", keep_default_na=False)["adjustment_code"] == "").all()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "not,a,trade,file\n1,2,3,4\n",
            "not a trades CSV, Flex XML, Activity Statement or Transaction History",
        ),
        ("<FlexQueryResponse><Trade", "not valid XML"),
        (
            "date,symbol,quantity,price\nsoon,AAPL,1,1\n",
            "no usable trades (unparseable or out-of-range date 'soon')",
        ),
    ],
)
def test_bad_file_exits_2_with_a_short_message_and_writes_nothing(
    tmp_path, capsys, content, message
):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    out = tmp_path / "out"
    assert run(str(bad), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.count(". ") + err.count("; ") <= 3
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]  # no scratch left behind


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("keep me")
    assert run(str(SAMPLES / "trades.csv"), "--out", str(out)) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert out.read_text() == "keep me"


def test_unknown_method_is_an_argparse_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        run(str(SAMPLES / "trades.csv"), "--method", "hifo", "--out", str(tmp_path))
    assert exit_info.value.code == 2


PLAIN = (
    "date,symbol,quantity,price,trade_id\n"
    "2023-01-03,X,10,100,b1\n"
    "2023-06-01,X,10,50,b2\n"
    "2024-03-01,X,-10,80,s1\n"
)


def test_specific_needs_a_lot_file_and_uses_it(tmp_path, capsys):
    trades = tmp_path / "t.csv"
    trades.write_text(PLAIN)
    out = tmp_path / "out"
    assert run(str(trades), "--method", "specific", "--out", str(out)) == 2
    assert "--method specific needs --lots FILE" in capsys.readouterr().err and not out.exists()
    lots = tmp_path / "lots.csv"
    lots.write_text("trade_id,lot_id\ns1,b2\n")
    assert run(str(trades), "--method", "specific", "--lots", str(lots), "--out", str(out)) == 0
    form = pd.read_csv(out / "form8949.csv")
    assert form[["date_acquired", "gain_loss"]].values.tolist() == [["2023-06-01", 300.0]]
    lots.write_text("trade_id,lot_id\nnope,b2\n")
    assert run(str(trades), "--method", "specific", "--lots", str(lots), "--out", str(out)) == 2
    assert "not in the history (nope)" in capsys.readouterr().err


def test_a_year_without_sales_lists_the_years_with_sales(tmp_path, capsys):
    trades = tmp_path / "t.csv"
    trades.write_text(PLAIN)
    out = tmp_path / "out"
    assert run(str(trades), "--year", "2022", "--out", str(out)) == 2
    assert "no sales in 2022; years with sales: 2024." in capsys.readouterr().err
    assert not out.exists()


def test_out_is_replaced_whole_so_no_stale_file_remains(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(PLAIN + "nope,X,1,1,z\n")
    out = tmp_path / "out"
    assert run(str(bad), "--out", str(out)) == 0
    assert (out / "rejects.csv").exists()
    good = tmp_path / "good.csv"
    good.write_text(PLAIN)
    assert run(str(good), "--out", str(out)) == 0
    assert not (out / "rejects.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good.csv", "out"]


def test_out_with_other_files_is_refused(tmp_path, capsys):
    trades = tmp_path / "t.csv"
    trades.write_text(PLAIN)
    out = tmp_path / "home"
    out.mkdir()
    (out / "thesis.docx").write_text("mine")
    assert run(str(trades), "--out", str(out)) == 2
    assert "holds other files (thesis.docx)" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["thesis.docx"]


def test_a_failure_while_writing_leaves_the_old_out_untouched(tmp_path, monkeypatch, capsys):
    trades = tmp_path / "t.csv"
    trades.write_text(PLAIN)
    out = tmp_path / "out"
    assert run(str(trades), "--out", str(out)) == 0
    before = {p.name: p.read_text() for p in out.iterdir()}

    def half_then_fail(tables, directory):
        (Path(directory) / "form8949.csv").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr("ibkr_nb.tax.cli.write_csv", half_then_fail)
    assert run(str(trades), "--no-wash-sales", "--out", str(out)) == 1
    assert "disk full" in capsys.readouterr().err
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "t.csv"]


def test_excel_has_real_dates_formats_frozen_headers_and_no_live_formulas(tmp_path):
    from openpyxl import load_workbook

    trades = tmp_path / "t.csv"
    trades.write_text(PLAIN + '2024-03-02,"=HYPERLINK(""http://x"")",1,1,z\n')
    out, xlsx = tmp_path / "out", tmp_path / "tax.xlsx"
    assert run(str(trades), "--out", str(out), "--excel", str(xlsx)) == 0
    book = load_workbook(xlsx)
    form = book["form8949"]
    assert form.freeze_panes == "A2"
    header = [c.value for c in form[1]]
    row = {h: c for h, c in zip(header, form[2], strict=True)}
    assert row["date_acquired"].is_date and row["date_acquired"].number_format == "yyyy-mm-dd"
    assert row["proceeds"].value == 800.0 and row["proceeds"].number_format == "#,##0.00"
    rejects = book["rejects"]
    symbol = [c.value for c in rejects[1]].index("symbol")
    cell = rejects[2][symbol]
    assert cell.data_type == "s" and cell.value == '=HYPERLINK("http://x")'  # text, not a formula
    csv_symbol = pd.read_csv(out / "rejects.csv")["symbol"].iloc[0]
    assert csv_symbol == '\'=HYPERLINK("http://x")'


def test_several_statements_merge_and_ira_accounts(tmp_path, capsys):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("date,symbol,quantity,price,trade_id,account\n2024-01-02,X,10,100,1,TAX\n")
    second.write_text(
        "date,symbol,quantity,price,trade_id,account\n"
        "2024-01-02,X,10,100,1,TAX\n"  # the same trade in an overlapping statement
        "2024-03-01,X,-10,80,2,TAX\n"
        "2024-03-10,X,10,85,3,ROTH\n"
    )
    out = tmp_path / "out"
    assert run(str(first), str(second), "--ira", "ROTH", "--out", str(out)) == 0
    form = pd.read_csv(out / "form8949.csv")
    assert form[["quantity", "adjustment_amount", "gain_loss"]].values.tolist() == [
        [10, 200.0, 0.0]
    ]
    lots = pd.read_csv(out / "open_lots.csv")
    assert lots["cost_basis"].tolist() == [850.0]  # the IRA lot gets no basis from the loss


def test_a_currency_without_usd_rate_is_said_and_rates_can_be_given(tmp_path, capsys):
    statement = tmp_path / "eur.csv"
    statement.write_text(
        "Trades,Header,DataDiscriminator,Asset Category,Currency,Symbol,Date/Time,Exchange,"
        "Quantity,T. Price,Proceeds,Comm/Fee,Basis,Realized P/L,Code\n"
        'Trades,Data,Order,Stocks,EUR,SAP,"2024-01-02, 10:00:00",-,10,100,-1000,-1,1001,0,O\n'
        'Trades,Data,Order,Stocks,EUR,SAP,"2024-02-02, 10:00:00",-,-10,120,1200,-1,-1001,198,C\n'
    )
    out = tmp_path / "out"
    assert run(str(statement), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "2 trade(s) in EUR have no USD rate" in printed
    assert "reconciliation with IBKR: 1 of 1 symbol(s) match" in printed
    rates = tmp_path / "rates.csv"
    rates.write_text("date,currency,usd_per_unit\n2023-12-29,EUR,1.10\n2024-02-01,EUR,1.08\n")
    assert run(str(statement), "--fx-rates", str(rates), "--out", str(out)) == 0
    form = pd.read_csv(out / "form8949.csv")
    assert form[["proceeds", "cost_basis"]].values.tolist() == [[1294.92, 1101.1]]
    assert set(pd.read_csv(out / "fx_rates.csv")["fx_source"]) == {"given"}
