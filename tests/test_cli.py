"""The ibkr-nb command: the demo (the main job of `make demo`) and argument errors."""

from __future__ import annotations

import pytest

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
    assert main(["gateway", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "loopback" in capsys.readouterr().err
