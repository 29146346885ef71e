"""``ibkr-nb run`` and ``ibkr-nb lab``: the notebooks headless or in JupyterLab, on a paper
gateway when no TWS answers.

``paper_environment`` is the one place that starts a paper gateway with a fixed seed and clock
and says, through environment variables, where it is (``IBKR_PORT``), which ledger and
kill-switch file to use (fresh ones in a work directory) and how charts render. nbval (see
``notebooks/conftest.py``), ``ibkr-nb run --in-place`` (which writes the committed outputs),
``ibkr-nb run``, ``ibkr-nb lab`` and the browser test all use it, so their outputs agree.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

SEED = 7
CLOCK = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)  # a Tuesday, 10:30 in New York
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
REPORT_DIR = ROOT / "reports"
# Charts as plotly JSON in the notebook (JupyterLab draws them); the HTML reports add plotly.js.
NOTEBOOK_RENDERER = "plotly_mimetype"
REPORT_RENDERER = "plotly_mimetype+notebook"


def gateway_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts a TCP connection on ``host:port`` (TWS, IB Gateway, ours)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def paper_environment(
    workdir: str | Path, *, port: int = 0, fixed_clock: bool = True
) -> Iterator[dict[str, str]]:
    """Start a paper gateway (seed 7, clock 2026-11-24 15:30 UTC, frozen unless
    ``fixed_clock=False``) on ``port`` (0: any free one) and yield the environment that points
    kernels at it: ``IBKR_HOST``, ``IBKR_PORT``, ``IBKR_NB_DB`` and ``IBKR_KILL_SWITCH`` (fresh
    files in ``workdir``), ``PLOTLY_RENDERER``. The gateway stops when the block ends."""
    from .gateway.server import PaperGateway

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with PaperGateway(port=port, seed=SEED, clock_start=CLOCK, fixed_clock=fixed_clock) as gw:
        yield {
            "IBKR_HOST": "127.0.0.1",
            "IBKR_PORT": str(gw.port),
            "IBKR_CLIENT_ID": "1",
            "IBKR_ACCOUNT_ID": "",
            "IBKR_NB_DB": str(workdir / "ledger.duckdb"),
            "IBKR_KILL_SWITCH": str(workdir / "KILL"),
            "PLOTLY_RENDERER": NOTEBOOK_RENDERER,
        }


@contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set for the block (kernels started inside inherit it)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def configured_environment(settings) -> dict[str, str]:
    """The settings of this process (environment and ``.env`` here) for kernels that run in
    ``notebooks/``: connection, and the ledger and kill-switch paths made absolute."""
    return {
        "IBKR_HOST": settings.ibkr_host,
        "IBKR_PORT": str(settings.ibkr_port),
        "IBKR_NB_DB": str(Path(settings.ibkr_nb_db).resolve()),
        "IBKR_KILL_SWITCH": str(Path(settings.ibkr_kill_switch).resolve()),
    }


def notebook_paths(names) -> list[Path]:
    """Notebook files for names like ``04``, ``04_paper_orders`` or a path; all when empty."""
    every = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return every
    paths = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.exists():
            paths.append(path.resolve())
            continue
        found = [p for p in every if p.stem == name or p.stem.startswith(f"{name}_")]
        if len(found) != 1:
            raise ValueError(
                f"No single notebook matches {name!r}; choose from "
                f"{', '.join(p.stem for p in every)}."
            )
        paths.extend(found)
    return paths


def execute_notebook(path: Path, *, progress=print, timeout: int = 300):
    """Run every cell of ``path`` in a fresh kernel (cwd: the notebook's folder) and return
    the executed notebook; ``progress`` gets one line per cell."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
    done = {"n": 0}

    def on_cell_executed(cell, cell_index, execute_reply):
        if cell.cell_type == "code":
            done["n"] += 1
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            progress(f"  {path.stem} [{done['n']}/{code_cells}] {first[:70]}")

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        on_cell_executed=on_cell_executed,
    )
    client.execute()
    return nb


def write_report(nb, stem: str, out_dir: Path) -> Path:
    """The executed notebook and its HTML into ``out_dir``; returns the HTML path."""
    import nbformat
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / f"{stem}.ipynb")
    body, _ = HTMLExporter().from_notebook_node(nb)
    html_path = out_dir / f"{stem}.html"
    html_path.write_text(body, encoding="utf-8")
    return html_path


def write_index(pages: list[Path], out_dir: Path) -> Path:
    """``index.html`` linking every notebook's HTML report."""
    items = "\n".join(f'<li><a href="{p.name}">{p.stem}</a></li>' for p in pages)
    index = out_dir / "index.html"
    index.write_text(
        f"<!doctype html><title>ibkr-nb notebooks</title><h1>ibkr-nb notebooks</h1>"
        f"<ul>\n{items}\n</ul>\n",
        encoding="utf-8",
    )
    return index


def run_notebooks(args) -> int:
    """``ibkr-nb run``: execute notebooks headless; reports (or, with ``--in-place``, the
    committed outputs on a fresh deterministic paper gateway)."""
    from .config import load_settings  # here, not at the top: pydantic slows every command

    paths = notebook_paths(args.notebooks)
    settings = load_settings()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ibkr-nb-run-")))
        if args.in_place or not gateway_answers(settings.ibkr_host, settings.ibkr_port):
            port = 0 if args.in_place else settings.ibkr_port
            env = stack.enter_context(paper_environment(work, port=port))
            print(f"started a paper gateway (seed {SEED}, clock {CLOCK:%Y-%m-%d %H:%M} UTC)")
        else:
            env = configured_environment(settings)
            print(f"using the gateway on {settings.ibkr_host}:{settings.ibkr_port}")
        if not args.in_place:
            env["PLOTLY_RENDERER"] = REPORT_RENDERER
        stack.enter_context(patched_environ(env))
        pages = []
        for path in paths:
            started = time.monotonic()
            nb = execute_notebook(path)
            if args.in_place:
                import nbformat

                nbformat.write(nb, path)
                print(
                    f"{path.stem}: outputs written to {path} ({time.monotonic() - started:.1f} s)"
                )
            else:
                pages.append(write_report(nb, path.stem, Path(args.out)))
                print(f"{path.stem}: done in {time.monotonic() - started:.1f} s")
    if pages:
        index = write_index(pages, Path(args.out))
        print(f"HTML report: {index.resolve()}")
    return 0


def run_lab(args) -> int:
    """``ibkr-nb lab``: JupyterLab on notebooks/, with a paper gateway if no TWS answers."""
    from .config import load_settings

    settings = load_settings()
    with ExitStack() as stack:
        env = {**os.environ, **configured_environment(settings)}
        if not gateway_answers(settings.ibkr_host, settings.ibkr_port):
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ibkr-nb-lab-")))
            paper = stack.enter_context(
                paper_environment(work, port=settings.ibkr_port, fixed_clock=False)
            )
            env.update(paper)
            print(f"no TWS on port {settings.ibkr_port}: started a paper gateway there")
        command = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={NOTEBOOK_DIR}"]
        if os.geteuid() == 0:  # containers; JupyterLab refuses root otherwise
            command.append("--allow-root")
        extra = args.lab_args[1:] if args.lab_args[:1] == ["--"] else args.lab_args
        return subprocess.call([*command, *extra], env=env)


def add_notebook_commands(sub) -> None:
    """``run`` and ``lab`` subcommands of ``ibkr-nb``."""
    p = sub.add_parser("run", help="execute notebooks headless; executed notebooks + HTML")
    p.add_argument("notebooks", nargs="*", help="names like 04 or 04_paper_orders (default all)")
    p.add_argument("--out", default=str(REPORT_DIR), help="report folder (default reports/)")
    p.add_argument(
        "--in-place",
        action="store_true",
        help="write the outputs into notebooks/ (a fresh paper gateway; what nbval compares)",
    )
    p.set_defaults(func=run_notebooks)
    p = sub.add_parser("lab", help="JupyterLab on notebooks/ (a paper gateway if no TWS)")
    p.add_argument("lab_args", nargs=argparse.REMAINDER, help="after --, passed on to jupyter lab")
    p.set_defaults(func=run_lab)
