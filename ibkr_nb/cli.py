"""ibkr-nb: run the paper gateway, try it with a demo, plan and execute AI decisions, or
compute tax lots.

Options may come before or after the subcommand, e.g. ibkr-nb gateway --log-level DEBUG.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from . import __version__
from .gateway.validation import MAX_ORDER_QUANTITY
from .notebooks import add_notebook_commands
from .tax.cli import add_tax_command

DEFAULT_STATE = Path("data") / "gateway_state.json"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _clock(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--clock {text!r} is not an ISO time; write it like 2026-01-15T15:30:00Z"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"--clock {text!r} needs a time zone, e.g. 2026-01-15T15:30:00Z"
        )
    return moment


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"--port {text} is not a TCP port: use 1-65535 (0 picks a free one)"
        )
    return port


def _state_path(text: str) -> Path:
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"--state {text} is a directory; name a file in it")
    parent = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(
            f"--state {text}: cannot create files in {parent}; choose a writable location"
        )
    return path


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"--log-level {text!r} is not one of {', '.join(LOG_LEVELS)}"
        )
    return level


def _add_gateway(sub) -> None:
    p = sub.add_parser(
        "gateway",
        help="run the paper gateway (TWS API on a loopback port)",
        description="Run the paper gateway: a simulated paper account that speaks the TWS API "
        "socket protocol, so ib_async connects to it as to TWS. The account is kept in "
        f"{DEFAULT_STATE} unless --state or --memory says otherwise.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=_port, default=7497, help="port (default 7497, TWS paper; 0: any free)"
    )
    p.add_argument("--seed", type=int, default=7, help="seed for prices, ids and fills")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--state",
        metavar="FILE",
        type=_state_path,
        default=DEFAULT_STATE,
        help=f"keep the account in FILE across restarts (default {DEFAULT_STATE})",
    )
    where.add_argument(
        "--memory", action="store_true", help="keep the account in memory only (lost on exit)"
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start a new seeded account; the old state file is kept aside as FILE.<time>.old",
    )
    p.add_argument(
        "--max-order-quantity",
        type=float,
        default=MAX_ORDER_QUANTITY,
        metavar="SHARES",
        help=f"refuse larger orders with error 383 (default {MAX_ORDER_QUANTITY:,})",
    )
    p.add_argument(
        "--clock",
        type=_clock,
        metavar="ISO",
        help="freeze the clock at this time (e.g. 2026-01-15T15:30:00Z)",
    )
    p.add_argument(
        "--allow-remote", action="store_true", help="allow binding a non-loopback address"
    )
    p.add_argument(
        "--write-flex",
        metavar="FILE",
        help="write the account's trade history as a Flex XML statement to FILE and exit",
    )
    p.set_defaults(func=run_gateway)


def _set_aside(path: Path) -> Path | None:
    """Rename an existing state file to ``<name>.<UTC time>.old``; returns the new path."""
    if not path.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    old = path.with_name(f"{path.name}.{stamp}.old")
    path.rename(old)
    return old


def run_gateway(args) -> int:
    from .gateway.persistence import StateStore
    from .gateway.server import PaperGateway

    state = None if args.memory else args.state
    if args.fresh and state is not None:
        store = StateStore(state)
        store.acquire("ibkr-nb gateway --fresh")  # never move a file another gateway uses
        try:
            old = _set_aside(state)
        finally:
            store.release()
        if old is not None:
            print(f"--fresh: the previous account is kept in {old}", flush=True)
    gateway = PaperGateway(
        args.host,
        args.port,
        seed=args.seed,
        state_file=state,
        clock_start=args.clock,
        fixed_clock=args.clock is not None,
        allow_remote=args.allow_remote,
        max_order_quantity=args.max_order_quantity,
    )

    if args.write_flex:
        try:
            Path(args.write_flex).write_text(gateway.flex_statement(), encoding="utf-8")
        finally:
            gateway.broker.close()
        print(f"wrote the trade history of {gateway.account_id} to {args.write_flex}")
        return 0

    if state is None:
        kept = "in memory only: it is lost when the gateway stops"
    elif gateway.broker.restored:
        kept = f"restored from {state.resolve()} (--fresh starts a new one)"
    else:
        kept = f"new seeded account, kept in {state.resolve()} across restarts"

    import asyncio  # here, not at the top: `ibkr-nb tax` has no use for it

    async def serve() -> None:
        await gateway.start()
        print(
            f"paper gateway: account {gateway.account_id} on {gateway.host}:{gateway.port} "
            f"(seed {args.seed}); {kept}. Ctrl-C stops it.",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await gateway.stop()

    asyncio.run(serve())
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="start a paper gateway, read the account, fill one order")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--clock", type=_clock, default=_clock("2026-11-24T15:30:00Z"), metavar="ISO")
    p.set_defaults(func=run_demo)


def _show(title: str, frame: pd.DataFrame) -> None:
    print(f"\n== {title}")
    with pd.option_context(
        "display.width", 160, "display.max_columns", 20, "display.float_format", "{:,.2f}".format
    ):
        print(frame.to_string(index=False) if len(frame) else "(none)")


def run_demo(args) -> int:
    from . import connect, frames
    from .gateway.server import PaperGateway

    with (
        PaperGateway(port=0, seed=args.seed, clock_start=args.clock, fixed_clock=True) as gateway,
        tempfile.TemporaryDirectory() as scratch,
    ):
        print(f"paper gateway started on 127.0.0.1:{gateway.port}, account {gateway.account_id}")
        # a fresh gateway gets a fresh ledger: its order refs start over
        ledger = Path(scratch) / "demo.duckdb"
        with connect(port=gateway.port, client_id=1, ibkr_nb_db=ledger) as session:
            print(session)
            summary = session.account_summary()
            _show(
                "account summary",
                summary[summary.tag.isin(frames.KEY_ACCOUNT_TAGS)],
            )
            _show("positions", session.positions())
            _show("quote", session.quote(["AAPL", "MSFT"]))
            _show("preview: buy 10 AAPL at market", session.preview_order("AAPL", 10))
            _show(
                "order: buy 10 AAPL at market", session.place_order("AAPL", 10, order_ref="demo-1")
            )
            _show("executions", session.executions())
            _show("portfolio", session.portfolio())
    print("\npaper gateway stopped")
    return 0


def _add_orders(sub) -> None:
    for name, helptext in (
        ("plan", "size AI decisions under the risk limits and print the plan (nothing is sent)"),
        ("execute", "plan AI decisions and send them (a dry run unless --transmit)"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("decisions", help="decisions file: CSV, JSON, JSON lines or Parquet")
        p.add_argument("--host", help="TWS / IB Gateway host (default IBKR_HOST)")
        p.add_argument("--port", type=_port, help="API port (default IBKR_PORT)")
        p.add_argument("--client-id", type=int, help="API client id (default IBKR_CLIENT_ID)")
        if name == "execute":
            p.add_argument("--transmit", action="store_true", help="send the orders for real")
            p.add_argument(
                "--allow-live", action="store_true", help="second live key (see README Safety)"
            )
            p.add_argument("--wait", type=float, default=10.0, help="seconds to follow each order")
        p.set_defaults(func=run_orders)


PLAN_SHOWN = [
    "decision_id",
    "symbol",
    "action",
    "quantity",
    "limit_price",
    "stop_loss",
    "take_profit",
    "notional",
    "pct_nav",
    "status",
    "reason",
]


def run_orders(args) -> int:
    from . import connect, load_decisions

    valid, rejects = load_decisions(args.decisions)
    if len(rejects):
        _show(
            f"{len(rejects)} decisions rejected",
            rejects[["row", "decision_id", "ticker", "reason"]],
        )
    with connect(args.host, args.port, args.client_id) as session:
        print(session)
        plan = session.plan(valid)
        _show("plan", plan[PLAN_SHOWN])
        if args.command == "plan":
            return 0
        results = session.execute(
            plan,
            dry_run=not args.transmit,
            allow_live=args.allow_live,
            wait=args.wait,
            progress=lambda line: print(line, flush=True),
        )
        _show("results" if args.transmit else "dry run (add --transmit to send)", results)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ibkr-nb", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    level_help = "DEBUG, INFO, WARNING or ERROR (default INFO for gateway, else WARNING)"
    parser.add_argument("--log-level", type=_log_level, help=level_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_gateway(sub)
    _add_demo(sub)
    _add_orders(sub)
    add_tax_command(sub)
    add_notebook_commands(sub)
    for command in sub.choices.values():  # accepted after the subcommand too
        command.add_argument(
            "--log-level", type=_log_level, default=argparse.SUPPRESS, help=level_help
        )
    args = parser.parse_args(argv)
    level = args.log_level or ("INFO" if args.command == "gateway" else "WARNING")
    # a no-op where logging is set up already (a notebook, pytest); our own loggers always obey
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ibkr_nb").setLevel(level)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"ibkr-nb {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
