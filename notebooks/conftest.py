"""nbval: every notebook runs against one paper gateway with a fixed seed and clock, started
before the first kernel, with a fresh ledger and kill-switch path, so the committed outputs
(written by ``ibkr-nb run --in-place`` in the same environment) compare strictly."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack

from ibkr_nb.notebooks import paper_environment, patched_environ


def pytest_configure(config):
    if not config.getoption("nbval", default=False):
        return
    stack = ExitStack()
    work = tempfile.mkdtemp(prefix="ibkr-nb-nbval-")
    stack.callback(shutil.rmtree, work, ignore_errors=True)
    env = stack.enter_context(paper_environment(work))
    stack.enter_context(patched_environ(env))  # nbval's kernels inherit os.environ
    config.add_cleanup(stack.close)
