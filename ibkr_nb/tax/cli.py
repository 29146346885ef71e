"""`ibkr-nb tax TRADES... [--method M [--lots FILE]] [--year YYYY] [--no-wash-sales]
[--ira ACCOUNT] [--fx-rates FILE] --out DIR [--excel FILE]`.

Reads one or more trade histories (several IBKR statements merge into one history,
deduplicated by trade id) and writes form8949.csv, schedule_d.csv, open_lots.csv, and when
there is something to say rejects.csv, unexplained.csv, corrections.csv (trades IBKR
cancelled or corrected), reconciliation.csv (IBKR's own figures against ours) and fx_rates.csv (the USD rates used). DIR is written all or nothing:
the files go to a scratch folder beside it that replaces DIR only when complete, so nothing
stale or half-written is left. A bad input exits with code 2 and a one- or two-sentence
message on stderr, writing nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ibkr_nb.tax.history import merge_imports
from ibkr_nb.tax.importers import TradeFileError, load_trades
from ibkr_nb.tax.lots import METHODS, match_lots
from ibkr_nb.tax.reports import (
    form_8949,
    fx_rates_used,
    open_lots_report,
    reconcile_statement,
    schedule_d_totals,
    write_csv,
    write_excel,
)
from ibkr_nb.tax.trades import with_usd_rates

EXIT_BAD_INPUT = 2
EXIT_WRITE_FAILED = 1
OUTPUT_NAMES = {
    "form8949",
    "schedule_d",
    "open_lots",
    "rejects",
    "unexplained",
    "corrections",
    "reconciliation",
    "fx_rates",
    "warnings",
}


class InputError(Exception):
    """A problem with the command's input, reported in one or two sentences (exit 2)."""


def add_tax_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `tax` subcommand to an argparse subparsers object; its handler is `run_tax`."""
    parser = subparsers.add_parser(
        "tax",
        help="tax lots, Form 8949 and Schedule D from a trade history",
        description="Match tax lots (with wash sales) and write Form 8949, Schedule D and open lots as CSV.",
    )
    parser.add_argument(
        "trades",
        type=Path,
        nargs="+",
        help="plain trades CSV, IBKR Flex XML, Activity Statement or Transaction History CSV "
        "(several files merge into one history)",
    )
    parser.add_argument(
        "--method", choices=METHODS, default="fifo", help="lot matching method (default fifo)"
    )
    parser.add_argument(
        "--lots",
        type=Path,
        help="for --method specific: CSV trade_id,lot_id naming the lots each sale takes, in order",
    )
    parser.add_argument("--year", type=int, help="tax year (default: the latest year with a sale)")
    parser.add_argument(
        "--no-wash-sales", action="store_true", help="do not apply the wash-sale rule"
    )
    parser.add_argument(
        "--ira",
        action="append",
        default=[],
        metavar="ACCOUNT",
        help="an IRA account of the same person (repeat for several)",
    )
    parser.add_argument(
        "--fx-rates",
        type=Path,
        help="CSV date,currency,usd_per_unit for trades whose statement gives no USD rate",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for the CSV files")
    parser.add_argument("--excel", type=Path, help="also write the tables to this .xlsx file")
    parser.set_defaults(func=run_tax)
    return parser


def run_tax(args: argparse.Namespace) -> int:
    """Handler of `ibkr-nb tax`; returns the process exit code."""
    try:
        imported, selection = _read_inputs(args)
        result = match_lots(
            imported.trades,
            method=args.method,
            wash_sales=not args.no_wash_sales,
            lot_selection=selection,
            ira_accounts=args.ira,
        )
        year = _tax_year(result, args.year)
        tables = _tables(imported, result, year)
        _write_all_or_nothing(tables, args.out)
        if args.excel:
            _write_excel_atomically(tables, args.excel)
    except (TradeFileError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(
            f"error: cannot write the output ({exc}); {args.out} was left as it was.",
            file=sys.stderr,
        )
        return EXIT_WRITE_FAILED
    _print_summary(imported, result, tables, year, args)
    return 0


def _read_inputs(args: argparse.Namespace):
    """The merged import and the lot selection; raises InputError on a bad input."""
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out} exists and is not a directory; pass a directory.")
    if args.out.is_dir():
        foreign = sorted(p.name for p in args.out.iterdir() if p.stem not in OUTPUT_NAMES)
        if foreign:
            raise InputError(
                f"--out {args.out} holds other files ({', '.join(foreign[:3])}); "
                "pass a new directory or one written by this command."
            )
    if args.method == "specific" and args.lots is None:
        raise InputError(
            "--method specific needs --lots FILE, a CSV trade_id,lot_id naming the lots each sale takes."
        )
    if args.lots is not None and args.method != "specific":
        raise InputError("--lots names lots for --method specific; add --method specific.")
    results = [load_trades(path) for path in args.trades]
    imported = results[0] if len(results) == 1 else merge_imports(results)
    if imported.trades.empty:
        reason = (
            imported.rejects["reason"].iloc[0]
            if len(imported.rejects)
            else imported.unexplained["reason"].iloc[0]
            if len(imported.unexplained)
            else "the file has no trade rows"
        )
        names = ", ".join(map(str, args.trades))
        raise InputError(f"{names}: no usable trades ({reason}); fix the file and run again.")
    if args.fx_rates is not None:
        rates = _read_csv(args.fx_rates, {"date", "currency", "usd_per_unit"})
        imported = replace(imported, trades=with_usd_rates(imported.trades, rates))
    selection = None
    if args.lots is not None:
        lots = _read_csv(args.lots, {"trade_id", "lot_id"})
        selection = lots.groupby("trade_id", sort=False)["lot_id"].apply(list).to_dict()
        unknown = sorted(set(selection) - set(imported.trades["trade_id"]))
        if unknown:
            raise InputError(
                f"--lots {args.lots} names trade(s) not in the history ({', '.join(unknown[:3])}); "
                "use the trade_id values of the trades file."
            )
    return imported, selection


def _read_csv(path: Path, columns: set[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read it as CSV ({exc}).") from exc
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = columns - set(frame.columns)
    if missing:
        raise InputError(
            f"{path}: no {', '.join(sorted(missing))} column; the header needs {','.join(sorted(columns))}."
        )
    return frame


def _tax_year(result, wanted: int | None) -> int | None:
    """The year to report: `wanted`, else the latest year with a sale (None: no sales)."""
    realized = result.realized[~result.realized["ira"]]
    years = sorted(set(realized["date_sold"].dt.year))
    if wanted is None:
        return years[-1] if years else None
    if wanted not in years:
        listed = ", ".join(map(str, years)) if years else "none"
        raise InputError(f"no sales in {wanted}; years with sales: {listed}.")
    return wanted


def _tables(imported, result, year: int | None) -> dict[str, pd.DataFrame]:
    report_year = year if year is not None else 0  # no sales: empty Form 8949 and Schedule D
    form = form_8949(result, report_year)
    tables = {
        "form8949": form,
        "schedule_d": schedule_d_totals(form),
        "open_lots": open_lots_report(result),
    }
    extra = {
        "rejects": imported.rejects,
        "unexplained": imported.unexplained,
        "corrections": imported.corrections,
        "reconciliation": reconcile_statement(imported)
        if imported.ibkr_realized["realized_pnl"].notna().any()
        else pd.DataFrame(),
        "fx_rates": fx_rates_used(imported.trades)
        if (imported.trades["currency"] != "USD").any()
        else pd.DataFrame(),
        "warnings": result.warnings,
    }
    tables.update({name: frame for name, frame in extra.items() if len(frame)})
    return tables


def _write_all_or_nothing(tables: dict, out: Path) -> None:
    """Write every table to a scratch directory beside `out`, then swap it in for `out`."""
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    old = out.parent / f"{scratch.name}-old"
    try:
        write_csv(tables, scratch)
        if out.exists():
            os.replace(out, old)
        os.replace(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _write_excel_atomically(tables: dict, path: Path) -> None:
    path = path.absolute()
    fd, scratch = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".xlsx", dir=path.parent)
    os.close(fd)
    try:
        write_excel(tables, scratch)
        os.replace(scratch, path)
    finally:
        Path(scratch).unlink(missing_ok=True)


def _print_summary(
    imported, result, tables: dict, year: int | None, args: argparse.Namespace
) -> None:
    names = ", ".join(map(str, args.trades))
    n_rejects = len(imported.rejects)
    print(f"{names}: {len(imported.trades)} trades read, {n_rejects} rejected")
    for _, row in imported.rejects.head(5).iterrows():
        print(f"  rejected line {row['line']}: {row['reason']}")
    if n_rejects > 5:
        print(f"  ... {n_rejects - 5} more in {args.out / 'rejects.csv'}")
    for _, row in imported.unexplained.head(5).iterrows():
        print(f"  not booked: {row['symbol']} {row['quantity']:g} ({row['reason']})")
    for _, row in imported.corrections.head(5).iterrows():
        print(f"  not booked: trade {row['trade_id']} {row['symbol']}, {row['reason']}")
    if len(imported.corrections) > 5:
        print(f"  ... {len(imported.corrections) - 5} more in {args.out / 'corrections.csv'}")
    no_rate = imported.trades[imported.trades["fx_rate"].isna()]
    if len(no_rate):
        currencies = ", ".join(sorted(set(no_rate["currency"])))
        print(
            f"  {len(no_rate)} trade(s) in {currencies} have no USD rate: their USD figures are "
            "blank; pass --fx-rates FILE (date,currency,usd_per_unit)"
        )
    if "reconciliation" in tables:
        rec = tables["reconciliation"]
        off = rec[rec["status"] != "match"]
        print(
            f"  reconciliation with IBKR: {len(rec) - len(off)} of {len(rec)} symbol(s) match"
            + (f"; see {args.out / 'reconciliation.csv'}" if len(off) else "")
        )
    wash = "without wash sales" if args.no_wash_sales else "with wash sales"
    if year is None:
        print(f"method {args.method}, {wash}: no sales, nothing realized")
    else:
        d = tables["schedule_d"].set_index(["term", "box"])
        short, long_ = d.loc[("short", "all")], d.loc[("long", "all")]
        rows = tables["form8949"]
        print(f"tax year {year}, method {args.method}, {wash}: {len(rows)} Form 8949 rows")
        print(
            f"  short-term gain {short['gain_loss']:,.2f} USD, long-term gain {long_['gain_loss']:,.2f} USD"
        )
        print(f"  wash-sale losses disallowed {rows['adjustment_amount'].sum():,.2f} USD")
    written = ", ".join(f"{n}.csv" for n in tables)
    print(f"{len(result.open_lots)} open lots; wrote {written} to {args.out}")
    if args.excel:
        print(f"wrote {args.excel}")
