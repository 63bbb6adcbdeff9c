"""Exponential backoff with jitter, capped: how every client here waits between tries.

The share agent (rejoining a hub, reopening its tunnel) and a room's live-event feed both
wait this way, so many machines that lost the same hub do not all knock at the same
instant when it comes back, and none waits longer than the cap.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial_s: float = 1.0, cap_s: float = 30.0, jitter: float = 0.2) -> None:
        self.initial_s = initial_s
        self.cap_s = cap_s
        self.jitter = jitter
        self._attempt = 0

    def delay(self, attempt: int) -> float:
        """The wait before try ``attempt + 1``: doubling from ``initial_s``, spread by
        ±``jitter``, never above ``cap_s``."""
        base = min(self.cap_s, self.initial_s * 2.0 ** min(attempt, 30))
        spread = random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311 - not secret.
        return min(self.cap_s, base * spread)

    def next_delay(self) -> float:
        """The next wait, for a caller that does not count its tries itself."""
        delay = self.delay(self._attempt)
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """A try worked: the next failure waits ``initial_s`` again."""
        self._attempt = 0
