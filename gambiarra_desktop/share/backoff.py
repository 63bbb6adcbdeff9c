"""Exponential backoff with jitter, so many agents do not hammer a hub that comes back."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial_s: float = 1.0, maximum_s: float = 30.0) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self._next = initial_s

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.maximum_s)
        return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security.

    def reset(self) -> None:
        self._next = self.initial_s
