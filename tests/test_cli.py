"""The ibkr-nb command: the demo (the main job of `make demo`) and argument errors."""

from __future__ import annotations

import logging

import pytest

import ibkr_nb
from ibkr_nb.cli import main


def test_demo_reads_the_account_and_fills_one_paper_order(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for section in (
        "account summary",
        "positions",
        "quote",
        "preview",
        "order",
        "executions",
        "portfolio",
    ):
        assert f"== {section}" in out
    assert "NetLiquidation" in out and "(paper)" in out
    assert "Filled" in out and "demo-1" in out
    assert out.rstrip().endswith("paper gateway stopped")


def test_demo_output_is_the_same_every_run(capsys):
    main(["demo"])
    first = capsys.readouterr().out
    main(["demo"])
    second = capsys.readouterr().out

    def stable(text: str) -> list[str]:  # the free port and the session line differ per run
        return [line for line in text.splitlines() if "127.0.0.1:" not in line]

    assert stable(first) == stable(second)


def test_clock_without_a_time_zone_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["gateway", "--clock", "2026-01-15T15:30:00"])
    assert info.value.code == 2
    assert "time zone" in capsys.readouterr().err


def test_non_loopback_host_is_refused_with_a_message(capsys):
    assert main(["gateway", "--host", "0.0.0.0", "--port", "0", "--log-level", "WARNING"]) == 2
    assert "loopback" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"ibkr-nb {ibkr_nb.__version__}"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["gateway", "--port", "99999"], "--port 99999 is not a TCP port"),
        (["gateway", "--port", "http"], "--port http is not a TCP port"),
        (["gateway", "--clock", "yesterday"], "is not an ISO time"),
        (["gateway", "--log-level", "LOUD"], "--log-level 'LOUD' is not one of"),
        (["gateway", "--state", "."], "is a directory"),
        (["gateway", "--state", f"{__file__}/state.json"], "cannot create files in"),
    ],
)
def test_bad_arguments_get_one_line_errors_without_internal_names(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert message in last and "_clock" not in err and "_port" not in err
    assert "Traceback" not in err


def test_log_level_is_accepted_after_the_subcommand(tmp_path, capsys):
    flex = tmp_path / "flex.xml"
    argv = ["gateway", "--memory", "--write-flex", str(flex), "--log-level", "debug"]
    ours = logging.getLogger("ibkr_nb")
    try:
        assert main(argv) == 0
        assert ours.level == logging.DEBUG
        assert main(["--log-level", "ERROR", *argv[:-2]]) == 0
        assert ours.level == logging.ERROR
    finally:
        ours.setLevel(logging.NOTSET)


def test_help_is_plain_text(capsys):
    for argv in (["--help"], ["gateway", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "`" not in out and "--log-level" in out
    assert "data/gateway_state.json" in out and "--fresh" in out


def test_the_tax_command_loads_no_gateway_client_or_plotting_code():
    """`ibkr-nb tax` starts fast: the package's heavy parts are imported on first use only,
    and every public name still imports from `ibkr_nb` and `ibkr_nb.tax`."""
    import subprocess
    import sys

    probe = (
        "import sys, ibkr_nb.cli\n"
        "heavy = ('ibkr_nb.gateway.market', 'ibkr_nb.session', 'ib_async', 'plotly',"
        " 'exchange_calendars', 'pydantic_settings')\n"
        "print(' '.join(m for m in heavy if m in sys.modules) or 'none')\n"
        "import ibkr_nb, ibkr_nb.tax\n"
        "for module in (ibkr_nb, ibkr_nb.tax):\n"
        "    for name in module.__all__:\n"
        "        exec(f'from {module.__name__} import {name}')\n"
        "print(ibkr_nb.connect.__module__, ibkr_nb.tax.fig_wash_sale_effect.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["none", "ibkr_nb.session ibkr_nb.plots"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = ibkr_nb.nothing
