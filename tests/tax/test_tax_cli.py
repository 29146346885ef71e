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


def test_tax_on_the_sample_writes_the_three_files(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(str(SAMPLES / "trades.csv"), "--year", "2024", "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "form8949.csv",
        "open_lots.csv",
        "schedule_d.csv",
    ]
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
