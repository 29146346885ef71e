"""`ibkr-nb tax TRADES [--method fifo] [--year YYYY] [--no-wash-sales] --out DIR`.

Writes form8949.csv, schedule_d.csv, open_lots.csv (and rejects.csv when rows were rejected)
into DIR, all or nothing: files are written to a scratch directory next to DIR and moved in
only when every one is complete. A file that is not a trade history exits with code 2 and a
one- or two-sentence message on stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ibkr_nb.tax.importers import TradeFileError, load_trades
from ibkr_nb.tax.lots import METHODS, match_lots
from ibkr_nb.tax.reports import form_8949, open_lots_report, schedule_d, write_csv

EXIT_BAD_INPUT = 2


def add_tax_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `tax` subcommand to an argparse subparsers object; its handler is `run_tax`."""
    parser = subparsers.add_parser(
        "tax",
        help="tax lots, Form 8949 and Schedule D from a trade history",
        description="Match tax lots (with wash sales) and write Form 8949, Schedule D and open lots as CSV.",
    )
    parser.add_argument(
        "trades", type=Path, help="plain trades CSV, IBKR Flex XML or Activity Statement CSV"
    )
    parser.add_argument(
        "--method", choices=METHODS, default="fifo", help="lot matching method (default fifo)"
    )
    parser.add_argument("--year", type=int, help="tax year (default: the latest year with a sale)")
    parser.add_argument(
        "--no-wash-sales", action="store_true", help="do not apply the wash-sale rule"
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for the CSV files")
    parser.set_defaults(func=run_tax)
    return parser


def run_tax(args: argparse.Namespace) -> int:
    """Handler of `ibkr-nb tax`; returns the process exit code."""
    try:
        imported = load_trades(args.trades)
    except TradeFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if imported.trades.empty:
        reason = (
            imported.rejects["reason"].iloc[0]
            if len(imported.rejects)
            else "the file has no trade rows"
        )
        print(
            f"error: {args.trades}: no usable trades ({reason}); fix the file and run again.",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if args.out.exists() and not args.out.is_dir():
        print(
            f"error: --out {args.out} exists and is not a directory; pass a directory.",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT

    result = match_lots(imported.trades, method=args.method, wash_sales=not args.no_wash_sales)
    years = result.realized["date_sold"].dt.year
    year = args.year if args.year is not None else (int(years.max()) if len(years) else None)
    report_year = year if year is not None else 0  # no sales: empty Form 8949 and Schedule D
    tables = {
        "form8949": form_8949(result, report_year),
        "schedule_d": schedule_d(result, report_year),
        "open_lots": open_lots_report(result),
    }
    if len(imported.rejects):
        tables["rejects"] = imported.rejects
    _write_all_or_nothing(tables, args.out)
    _print_summary(imported, result, tables, year, args)
    return 0


def _write_all_or_nothing(tables: dict, out: Path) -> None:
    """Write every table to a scratch directory beside `out`, then move them into `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".tax-", dir=out.parent))
    try:
        written = write_csv(tables, scratch)
        out.mkdir(exist_ok=True)
        for path in written:
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _print_summary(
    imported, result, tables: dict, year: int | None, args: argparse.Namespace
) -> None:
    n_rejects = len(imported.rejects)
    print(f"{args.trades}: {len(imported.trades)} trades read, {n_rejects} rejected")
    for _, row in imported.rejects.head(5).iterrows():
        print(f"  rejected line {row['line']}: {row['reason']}")
    if n_rejects > 5:
        print(f"  ... {n_rejects - 5} more in {args.out / 'rejects.csv'}")
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
    print(
        f"{len(result.open_lots)} open lots; wrote {', '.join(f'{n}.csv' for n in tables)} to {args.out}"
    )
