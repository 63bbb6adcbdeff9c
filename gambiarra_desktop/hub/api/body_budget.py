"""How much request-body memory the hub spends at once, and for how long one body may take.

aiohttp reads a body into memory as it arrives and sets no time limit on it. A client that
trickles a body a byte at a time held its connection open indefinitely, and 60 clients each
stalled 9 MB into a 10 MB body held 852 MB of the hub's memory. So every body read is
reserved here first, hub-wide, for its declared length (or the largest allowed body when the
length is unknown), and must finish within a deadline.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["BODY_BUDGET", "BodyBudget"]


class BodyBudget:
    """Bytes of request bodies being read, all clients together, against a limit.

    ``try_reserve`` checks and takes in one synchronous step, so concurrent readers can never
    both pass a check that only one of them fits."""

    def __init__(self, limit_bytes: int, max_body_bytes: int, timeout_s: float) -> None:
        self.limit_bytes = limit_bytes
        self.max_body_bytes = max_body_bytes
        """The largest body the hub accepts (``client_max_size``): what an unknown length
        (a chunked body) reserves."""
        self.timeout_s = timeout_s
        """A body must arrive whole within this time."""
        self.in_use = 0

    def size_to_reserve(self, content_length: int | None) -> int:
        if content_length is None:
            return self.max_body_bytes
        return min(content_length, self.max_body_bytes)

    def try_reserve(self, size: int) -> bool:
        """Take ``size`` bytes of the budget if they fit; no await between check and take."""
        if self.in_use + size > self.limit_bytes:
            return False
        self.in_use += size
        return True

    def release(self, size: int) -> None:
        self.in_use -= size


BODY_BUDGET = web.AppKey("body_budget", BodyBudget)
"""Here rather than in ``hub/keys.py``: ``keys`` imports the proxy, which imports
``api/responses``, which reads bodies through this; keeping it here avoids the cycle."""
