"""Id allocation for the paper account: order ids per client, perm ids and execution ids.

Deterministic: the same seed gives the same perm ids and exec ids in the same order.
"""

from __future__ import annotations

import hashlib


def digest(*parts: object) -> int:
    """A stable 64-bit number derived from ``parts`` (the same on every run and machine)."""
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big")


class IdAllocator:
    """Order ids used per client, the next valid order id, perm ids and exec ids."""

    def __init__(self, seed: int) -> None:
        self.used: dict[int, set[int]] = {}
        self.max_order_id = 0
        self.perm_next = 1_000_000_000 + digest("perm", seed) % 900_000_000
        self.exec_prefix = digest("exec", seed) & 0xFFFFFFFF
        self.exec_base = digest("exec-base", seed) % 0x80000000
        self.exec_count = 0

    @property
    def next_order_id(self) -> int:
        """Next valid order id (for nextValidId / reqIds): 1 + highest id used by any client."""
        return self.max_order_id + 1

    def is_used(self, client_id: int, order_id: int) -> bool:
        return order_id in self.used.get(client_id, ())

    def use(self, client_id: int, order_id: int) -> None:
        self.used.setdefault(client_id, set()).add(order_id)
        self.max_order_id = max(self.max_order_id, order_id)

    def next_perm(self) -> int:
        perm = self.perm_next
        self.perm_next += 1
        return perm

    def next_exec_id(self) -> str:
        self.exec_count += 1
        return f"{self.exec_prefix:08x}.{self.exec_base + self.exec_count:08x}.01.01"

    def state(self) -> dict:
        """The counters as plain JSON data (see :meth:`restore`)."""
        return {
            "used_ids": {str(c): sorted(ids) for c, ids in self.used.items()},
            "perm_next": self.perm_next,
            "exec_count": self.exec_count,
            "max_order_id": self.max_order_id,
        }

    def restore(self, used: dict[int, set[int]], counters: dict[str, int]) -> None:
        self.used = used
        self.perm_next = counters["perm_next"]
        self.exec_count = counters["exec_count"]
        self.max_order_id = counters["max_order_id"]
