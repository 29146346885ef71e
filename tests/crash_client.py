"""A notebook kernel in a subprocess: plan and execute decisions, optionally SIGKILLed on the way.

    python tests/crash_client.py PORT CLIENT_ID DECISIONS_JSON MOMENT

The ledger and kill-switch paths come from ``IBKR_NB_DB`` / ``IBKR_KILL_SWITCH``. ``MOMENT``
names where the process kills itself with SIGKILL (no cleanup, no flush, as when a kernel dies):

intent        after the batch's intents are written and claimed, before anything is transmitted
transmit-N    right after the N-th ``placeOrder`` (the legs of a bracket count one each; a
              parent is held by the broker until its last leg is transmitted; a message that
              ib_async's 45/s throttle still queues dies with the process)
acknowledged  after the batch's intents are marked acknowledged (fills not yet written)
record        before the batch's statuses and fills are written to the ledger
none          no kill: execute and exit normally
"""

from __future__ import annotations

import os
import signal
import sys

from ib_async import IB

import ibkr_nb
from ibkr_nb.execution import Executor
from ibkr_nb.ledger import Ledger


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_after(owner, name: str, nth: int = 1, when=lambda *a, **k: True) -> None:
    """Let ``owner.name`` run, then SIGKILL on its ``nth`` call that matches ``when``."""
    original = getattr(owner, name)
    calls = [0]

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        if when(*args, **kwargs):
            calls[0] += 1
            if calls[0] == nth:
                die()
        return result

    setattr(owner, name, wrapped)


def kill_before(owner, name: str) -> None:
    def wrapped(*args, **kwargs):
        die()

    setattr(owner, name, wrapped)


def arm(moment: str) -> None:
    if moment == "intent":
        kill_after(Ledger, "record_intents")
    elif moment.startswith("transmit-"):
        kill_after(IB, "placeOrder", nth=int(moment.split("-")[1]))
    elif moment == "acknowledged":
        kill_after(
            Ledger, "mark_intent", when=lambda self, ref, status, **k: status == "acknowledged"
        )
    elif moment == "record":
        kill_before(Executor, "record")
    elif moment != "none":
        raise SystemExit(f"unknown moment {moment!r}")


def main() -> None:
    port, client_id, decisions, moment = sys.argv[1:]
    session = ibkr_nb.connect(port=int(port), client_id=int(client_id), timeout=5)
    valid, rejects = ibkr_nb.load_decisions(decisions)
    assert rejects.empty, rejects
    plan = session.plan(valid)
    arm(moment)
    result = session.execute(plan, dry_run=False, wait=5)
    print(result[["order_ref", "status", "reason"]].to_string())
    session.disconnect()


if __name__ == "__main__":
    main()
