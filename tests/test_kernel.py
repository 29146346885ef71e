"""Widget handlers run where the session lives, and a kernel's nested messages still run."""

from __future__ import annotations

import asyncio
import contextvars
import threading

from ibkr_nb import kernel


def test_handler_from_another_thread_runs_on_the_creating_loop():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        main = kernel.MainThread()
        ran_on = []
        handler = main.wrap(lambda value: ran_on.append((threading.current_thread(), value)))
        handler("here")  # same thread: at once
        assert ran_on == [(threading.current_thread(), "here")]
        worker = threading.Thread(target=handler, args=("there",))
        worker.start()
        worker.join()
        assert len(ran_on) == 1  # handed over, not run on the worker
        loop.run_until_complete(asyncio.sleep(0.01))
        assert ran_on[1] == (threading.current_thread(), "there")
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def test_nested_messages_are_not_installed_outside_a_kernel():
    assert kernel.allow_nested_messages() is False


def test_entered_context_is_detected():
    context = contextvars.copy_context()
    assert not kernel._entered(context)
    assert context.run(kernel._entered, context)
