"""How long the notebooks take: the whole nbval run (target <= 90 s) and `make demo`, i.e.
`ibkr-nb run` of every notebook into reports/ (target <= 60 s after installation).

Prints wall-clock seconds and the ratio to each target; run from the repository root.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"nbval (6 notebooks)": 90.0, "make demo": 60.0}


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    figures = {
        "nbval (6 notebooks)": timed(
            [sys.executable, "-m", "pytest", "--nbval", "notebooks", "-q", "-p", "no:cacheprovider"]
        ),
        "make demo": timed(["make", "--no-print-directory", "demo"]),
    }
    for name, seconds in figures.items():
        target = TARGETS[name]
        print(
            f"{name:22s} {seconds:6.1f} s   target {target:4.0f} s   ratio {seconds / target:.2f}"
        )


if __name__ == "__main__":
    main()
