"""The real thing: JupyterLab on loopback with a token, 04_paper_orders in headless Chromium
(Debian's, driven by Playwright; nothing downloaded), the order ticket filled and clicked.

It fails (never skips) when the browser cannot start: `make test` installs chromium.
Screenshots go to reports/.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

import ibkr_nb
from ibkr_nb.notebooks import NOTEBOOK_DIR, REPORT_DIR, ROOT, paper_environment

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
expect.set_options(timeout=60_000)  # a shared, busy machine: JupyterLab may take a while
QUANTITY = 7  # shares the test types into the ticket (the notebook's default is 10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text().splitlines()[-5:]
            raise AssertionError(f"JupyterLab exited with {process.returncode}: {tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"JupyterLab did not answer {url} within {timeout:.0f} s")


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on a copy of notebooks/ and data/, kernels pointed at a paper gateway."""
    shutil.copytree(NOTEBOOK_DIR, tmp_path / "notebooks")
    shutil.copytree(ROOT / "data", tmp_path / "data")
    lab_settings = {  # no news popup; every cell rendered (no windowing), so all are clickable
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "notebook-extension/tracker": {"windowingMode": "none"},
    }
    for name, values in lab_settings.items():
        path = tmp_path / "lab-settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    with paper_environment(tmp_path / "work") as env:
        env = {
            **os.environ,
            **env,
            "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        }
        process = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={tmp_path / 'notebooks'}",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "lab.log", "w"),  # noqa: SIM115 (closed with the process)
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_for_server(f"{base}/api/status?token={token}", process, tmp_path / "lab.log")
            print("LABLOG", tmp_path / "lab.log")
            yield {"base": base, "token": token, "env": env}
        finally:
            process.terminate()
            process.wait(timeout=20)


@pytest.mark.timeout(300)
def test_order_ticket_in_jupyterlab_reaches_gateway_and_ledger(lab):
    REPORT_DIR.mkdir(exist_ok=True)
    url = f"{lab['base']}/lab/tree/04_paper_orders.ipynb?token={lab['token']}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url)
        expect(page.locator(".jp-Notebook .jp-Cell").first).to_be_visible()
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
            1, timeout=60_000
        )
        # Clear the committed outputs, then run every cell above the last one (it disconnects)
        page.get_by_role("menuitem", name="Edit", exact=True).click()
        page.get_by_role("menuitem", name="Clear Outputs of All Cells").click()
        page.locator(".jp-Notebook .jp-Cell").last.click()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile("Run All Above Selected Cell")).click()
        executed = page.locator(".jp-CodeCell .jp-InputPrompt", has_text=re.compile(r"\[\d+\]"))
        code_cells = page.locator(".jp-CodeCell").count()
        expect(executed).to_have_count(code_cells - 1, timeout=120_000)
        ticket = page.locator(".ibkr-nb-ticket")
        expect(ticket).to_be_visible()
        errors = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        )
        assert errors.count() == 0, errors.first.inner_text()

        quantity = ticket.locator(".widget-text", has=page.get_by_text("Quantity")).locator("input")
        quantity.fill(str(QUANTITY))
        quantity.press("Enter")
        ticket.locator(".ibkr-nb-preview").click()
        expect(ticket).to_contain_text("Preview passed", timeout=30_000)
        submit = ticket.locator(".ibkr-nb-submit")
        expect(submit).to_be_enabled()
        ticket.scroll_into_view_if_needed()
        ticket.screenshot(path=str(REPORT_DIR / "browser_ticket_preview.png"))
        submit.click()
        page.wait_for_timeout(15_000)
        print("TICKET", ticket.inner_text()[-300:])
        print(
            "STATUS", page.locator(".jp-Notebook-ExecutionIndicator").get_attribute("data-status")
        )
        page.screenshot(path=str(REPORT_DIR / "debug_after_submit.png"))
        expect(ticket).to_contain_text("Sent as order_ref", timeout=30_000)
        expect(submit).to_be_disabled()
        ticket.screenshot(path=str(REPORT_DIR / "browser_ticket_submitted.png"))
        page.screenshot(path=str(REPORT_DIR / "browser_04_paper_orders.png"), full_page=False)
        sent_ref = re.search(r"Sent as order_ref (nb-[0-9a-f]+)", ticket.inner_text()).group(1)
        browser.close()

    env = lab["env"]
    session = ibkr_nb.connect(port=int(env["IBKR_PORT"]), client_id=0)  # sees every client's
    try:
        executions = session.executions()
    finally:
        session.disconnect()
    mine = executions[executions["order_ref"] == sent_ref]
    assert list(mine["quantity"]) == [QUANTITY] and list(mine["symbol"]) == ["AAPL"]
    fills = ibkr_nb.Ledger(env["IBKR_NB_DB"]).fills()
    assert list(fills.loc[fills["order_ref"] == sent_ref, "quantity"]) == [QUANTITY]
