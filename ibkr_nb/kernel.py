"""ib_async's blocking calls in an ipykernel 7 kernel that also receives widget messages.

A session runs ib_async's requests in a nested event loop inside the running cell
(nest-asyncio). ipykernel 7 handles every shell message (the next cell of "Run All", a
widget's click) in a task that runs in one shared ``contextvars.Context``; the cell that is
waiting in the nested loop has already entered that context, so Python refuses to enter it
again ("cannot enter context: ... is already entered"): the message is dropped and queued
cells hang. ``allow_nested_messages()`` lets such a callback run in a copy of its context
instead (its ContextVars are the same values). It changes nothing outside a kernel and is
applied once.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import sys
import threading

_state = {"installed": False}


def _entered(context) -> bool:
    """True if ``context`` is entered somewhere up the stack (Context.run would refuse)."""
    try:
        context.run(int)
    except RuntimeError:
        return True
    return False


def allow_nested_messages() -> bool:
    """In an IPython kernel, let callbacks whose context is already entered run in a copy of
    it (see the module text). Returns True if installed (now or before)."""
    if _state["installed"]:
        return True
    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    if getattr(shell, "kernel", None) is None:  # not inside a Jupyter kernel
        return False
    original = asyncio.events.Handle._run

    def _run(self):
        if self._context is not None and _entered(self._context):
            self._context = self._context.copy()
        return original(self)

    asyncio.events.Handle._run = _run
    _state["installed"] = True
    return True


class MainThread:
    """Runs widget handlers on the thread (and event loop) that created the widget, where the
    session's ib_async connection lives.

    JupyterLab 4 sends widget messages to a kernel *subshell* by default (another thread with
    its own event loop); ib_async is not thread-safe, so a click that called it from there
    would wait forever for a reply delivered to the other loop. From another thread the
    handler is handed to the creating loop (it runs once that loop is free, e.g. after the
    running cell); on the creating thread (scripts, tests, classic kernels) it runs at once.
    """

    def __init__(self):
        self.thread = threading.current_thread()
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = asyncio.get_event_loop_policy().get_event_loop()

    def call(self, handler, *args) -> None:
        if threading.current_thread() is self.thread:
            handler(*args)
        else:
            self.loop.call_soon_threadsafe(handler, *args)

    def wrap(self, handler):
        """``handler`` as a callback that always runs on the creating thread."""
        return lambda *args: self.call(handler, *args)
