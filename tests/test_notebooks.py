"""`ibkr-nb run` / the paper environment, and the shape every notebook keeps (their outputs
are checked by nbval: `pytest --nbval notebooks`)."""

from __future__ import annotations

import json
import os
import socket

import nbformat
import pytest

from ibkr_nb.cli import main
from ibkr_nb.config import load_settings
from ibkr_nb.notebooks import (
    NOTEBOOK_DIR,
    configured_environment,
    gateway_answers,
    notebook_paths,
    paper_environment,
    patched_environ,
)

NAMES = [
    "01_connect_and_account",
    "02_positions_and_portfolio",
    "03_evaluate_ai_decisions",
    "04_paper_orders",
    "05_tax_lots_and_gains",
    "06_import_ibkr_history",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_six_notebooks_read_like_a_tutorial():
    assert [p.stem for p in notebook_paths([])] == NAMES
    for path in notebook_paths([]):
        cells = nbformat.read(path, as_version=4).cells
        assert cells[0].cell_type == "markdown" and "**Needs**" in cells[0].source, path.stem
        assert any(c.cell_type == "markdown" and "## Next" in c.source for c in cells[-3:])
        run = 0  # a step may take a few cells under one explanation, not more
        for cell in cells:
            run = run + 1 if cell.cell_type == "code" else 0
            assert run <= 3, f"{path.stem}: code without a markdown cell saying what it does"
        source = "\n".join(c.source for c in cells if c.cell_type == "code")
        assert "ibkr_nb.gateway" not in source and "_" + "ledger" not in source  # public API
        errors = [
            o for c in cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
        ]
        assert not errors, f"{path.stem} has a committed error output"


def test_notebook_names_resolve_or_say_what_exists():
    assert notebook_paths(["04"])[0].name == "04_paper_orders.ipynb"
    assert notebook_paths(["06_import_ibkr_history"])[0].parent == NOTEBOOK_DIR
    with pytest.raises(ValueError, match="01_connect_and_account"):
        notebook_paths(["99"])


def test_paper_environment_points_at_a_gateway_that_answers(tmp_path):
    with paper_environment(tmp_path) as env:
        port = int(env["IBKR_PORT"])
        assert gateway_answers("127.0.0.1", port)
        assert env["IBKR_NB_DB"].startswith(str(tmp_path))
        assert env["IBKR_KILL_SWITCH"].startswith(str(tmp_path))
        with patched_environ({"IBKR_PORT": "1"}):
            assert os.environ["IBKR_PORT"] == "1"
    assert not gateway_answers("127.0.0.1", port)


def test_run_starts_a_gateway_and_writes_notebook_html_and_index(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IBKR_PORT", str(free_port()))  # nothing answers there
    assert main(["run", "01", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "started a paper gateway" in out
    assert "01_connect_and_account [1/" in out  # progress per cell
    assert f"HTML report: {tmp_path / 'index.html'}" in out
    executed = nbformat.read(tmp_path / "01_connect_and_account.ipynb", as_version=4)
    text = json.dumps([c.get("outputs", []) for c in executed.cells])
    assert "NetLiquidation" in text and "DU****" in text
    html = (tmp_path / "01_connect_and_account.html").read_text()
    assert "NetLiquidation" in html
    assert "01_connect_and_account.html" in (tmp_path / "index.html").read_text()


def test_run_refuses_an_unknown_notebook(capsys):
    assert main(["run", "nope"]) == 2
    assert "No single notebook matches 'nope'" in capsys.readouterr().err


def test_kernels_in_notebooks_get_the_settings_with_absolute_paths(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IBKR_NB_DB", "data/mine.duckdb")
    monkeypatch.setenv("IBKR_PORT", "4002")
    env = configured_environment(load_settings())
    assert env["IBKR_NB_DB"] == str(tmp_path / "data" / "mine.duckdb")
    assert env["IBKR_PORT"] == "4002"
    assert env["IBKR_KILL_SWITCH"].startswith("/")
