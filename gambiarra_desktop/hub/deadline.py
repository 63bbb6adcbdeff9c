"""A deadline kept by one re-armed timer, for deadlines set and cleared on every request.

A hub connection times each request's head, its body and the idle time between requests,
and each upstream exchange its first byte. Scheduling and cancelling a timer handle for
each of those cost four timers per proxied request (an allocation, a heap push and a
cancelled entry left in the loop's heap each). Here setting or clearing a deadline is a
clock read and a float: the one timer, when it fires, finds the deadline passed (and acts),
cleared (and stops), or moved (and re-arms for it).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

EARLY_S = 0.001
"""A timer may fire up to a millisecond early (the loop's clock resolution): within this
of the deadline counts as passed."""


class Deadline:
    __slots__ = ("_armed_for", "_at", "_loop", "_on_expiry", "_tick_s", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_expiry: Callable[[], None],
                 tick_s: float = math.inf) -> None:
        """``tick_s``: the shortest span this deadline is ever set for. The timer is never
        armed further ahead than that, so moving from a long deadline (an idle connection)
        to a shorter one (the next request's head) needs no new timer either."""
        self._loop = loop
        self._on_expiry = on_expiry
        self._tick_s = tick_s
        self._at = math.inf
        self._armed_for = math.inf
        self._timer: asyncio.TimerHandle | None = None

    @property
    def active(self) -> bool:
        return self._at != math.inf

    def start(self, seconds: float) -> None:
        """Expire ``seconds`` from now (replacing any deadline set before); ``inf``:
        never."""
        if seconds == math.inf:
            self.stop()
            return
        now = self._loop.time()
        at = self._at = now + seconds
        if self._timer is None or self._armed_for > at:
            self._arm(now, at)

    def stop(self) -> None:
        """No deadline: the armed timer, if any, finds none and ends."""
        self._at = math.inf

    def cancel(self) -> None:
        """Stop, and drop the timer too (its owner is going away)."""
        self._at = math.inf
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, now: float, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = min(at, now + self._tick_s)
        self._timer = self._loop.call_at(self._armed_for, self._fire)

    def _fire(self) -> None:
        self._timer = None
        at = self._at
        if at == math.inf:
            return
        now = self._loop.time()
        if now < at - EARLY_S:
            self._arm(now, at)
            return
        self._at = math.inf
        self._on_expiry()
