"""How many requests one participant is given at once: declared, stated by its server, or
learned.

The original Gambiarra hub put no limit on a participant, and its clients send no
``config.maxConcurrent``. A fixed default of 1 made such a participant serve one request at
a time, however capable its server (llama.cpp with several slots, vLLM). So:

- ``declared``: the participant sent ``config.maxConcurrent`` (1..64): a fixed cap.
- ``server``: our share agent read it from the model server itself (llama.cpp ``/props``
  ``total_slots``) and sent it with ``config.maxConcurrentSource: "server"``: a fixed cap.
- ``adaptive``: nothing was said, so the hub learns the limit with AIMD (additive increase,
  multiplicative decrease), the rule of Netflix's concurrency-limits ``AIMDLimit``:

  ======================================================  ===============================
  sample                                                  limit becomes
  ======================================================  ===============================
  a failure of the participant's own (refused, no first   ``max(1, floor(limit * 0.9))``
  byte in time, a 5xx, a broken stream) or a 429
  a success whose latency is above the tolerance          ``max(1, floor(limit * 0.9))``
  a success within tolerance while ``in_flight`` had      ``min(64, limit + 1)``
  reached the limit
  any other success                                       unchanged
  ======================================================  ===============================

  It starts at 4: most local servers take a few requests at once, and the first overload
  takes it down within a few answers. It only grows when the limit was actually the
  constraint, so an idle participant keeps its limit instead of drifting to 64. The 0.9
  factor (at least -1) backs off gently: one slow answer is often a long prompt, not
  overload.

  Latency is judged against a baseline, the minimum of the last ``WINDOW`` samples (a
  windowed minimum follows a participant that changes its model, unlike an all-time one).
  A sample is too slow when it exceeds ``max(baseline * TOLERANCE, baseline +
  MIN_SLACK_MS)``: a server past its slots queues the request, and the time to first token
  then jumps by a whole answer's duration, far beyond normal jitter. Streams are judged on
  the time to first token; a whole (non-streamed) answer only has its total duration, so it
  is judged per generated token, against a baseline of its own kind.
  Limitation: a much longer prompt than usual also raises the time to first token, and may
  cost one step (-1) that later saturated successes win back.
"""

from __future__ import annotations

import collections
import math
from typing import Any, Literal

from gambiarra_desktop.protocol import MAX_CONCURRENT

ConcurrencySource = Literal["declared", "server", "adaptive"]
SampleKind = Literal["first_token", "per_token"]

INITIAL_LIMIT = 4
MIN_LIMIT = 1
MAX_LIMIT = MAX_CONCURRENT
BACKOFF_RATIO = 0.9
TOLERANCE = 2.0
MIN_SLACK_MS = 100.0
WINDOW = 50


class AimdLimit:
    """The adaptive limit of one participant; plain state, no I/O, no clock."""

    def __init__(self, initial: int = INITIAL_LIMIT) -> None:
        self.limit = clamp(initial)
        self._samples: dict[SampleKind, collections.deque[float]] = {
            "first_token": collections.deque(maxlen=WINDOW),
            "per_token": collections.deque(maxlen=WINDOW),
        }

    def baseline(self, kind: SampleKind = "first_token") -> float | None:
        samples = self._samples[kind]
        return min(samples) if samples else None

    def on_success(self, latency_ms: float, in_flight: int,
                   kind: SampleKind = "first_token") -> None:
        """An answer arrived; ``in_flight`` counts the requests running with it, itself too."""
        baseline = self.baseline(kind)
        self._samples[kind].append(latency_ms)
        if baseline is not None and latency_ms > max(baseline * TOLERANCE,
                                                     baseline + MIN_SLACK_MS):
            self._back_off()
        elif in_flight >= self.limit:
            self.limit = min(MAX_LIMIT, self.limit + 1)

    def on_overload(self) -> None:
        """A timeout, a 5xx, a 429, a refused or broken connection."""
        self._back_off()

    def _back_off(self) -> None:
        self.limit = max(MIN_LIMIT, min(self.limit - 1, math.floor(self.limit * BACKOFF_RATIO)))


class Capacity:
    """A participant's concurrency limit, fixed or adaptive (see the module docstring)."""

    def __init__(self) -> None:
        self.source: ConcurrencySource = "adaptive"
        self._fixed = INITIAL_LIMIT
        self._adaptive = AimdLimit()

    @property
    def limit(self) -> int:
        return self._adaptive.limit if self.source == "adaptive" else self._fixed

    def configure(self, declared: int | None, source: ConcurrencySource) -> None:
        """At each join: a ``declared`` limit is fixed; without one the limit is learned,
        and one learned before (a re-join) is kept."""
        if declared is not None:
            self.source, self._fixed = source, declared
        elif self.source != "adaptive":
            self.source, self._adaptive = "adaptive", AimdLimit()

    def on_success(self, latency_ms: float, in_flight: int, kind: SampleKind) -> None:
        if self.source == "adaptive":
            self._adaptive.on_success(latency_ms, in_flight, kind)

    def on_overload(self) -> None:
        if self.source == "adaptive":
            self._adaptive.on_overload()


def declared_source(config: dict[str, Any]) -> ConcurrencySource:
    """Where a participant's ``config.maxConcurrent`` came from, as it says."""
    return "server" if config.get("maxConcurrentSource") == "server" else "declared"


def clamp(limit: int) -> int:
    return min(MAX_LIMIT, max(MIN_LIMIT, limit))
