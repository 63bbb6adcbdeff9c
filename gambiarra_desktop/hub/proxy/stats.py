"""Live numbers per participant: load for routing, health for failover, metrics for people.

Kept in memory only: they describe the running hub, and a restart starts them afresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gambiarra_desktop.hub.proxy.capacity import Capacity
from gambiarra_desktop.protocol import LlmMetrics

TTFT_SMOOTHING = 0.3
"""Weight of the newest time to first token in the moving average used to break ties."""


@dataclass
class ParticipantStats:
    capacity: Capacity = field(default_factory=Capacity)
    in_flight: int = 0
    requests: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    ttft_ms: float | None = None
    last_tokens_per_second: float = 0.0
    consecutive_failures: int = 0
    degraded_until: float = 0.0

    @property
    def max_concurrent(self) -> int:
        return self.capacity.limit

    def has_slot(self) -> bool:
        return self.in_flight < self.capacity.limit

    def degraded(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) < self.degraded_until

    def record_success(self, metrics: LlmMetrics, tokens_in: int, streamed: bool = True) -> None:
        """Called before the request's slot is released: ``in_flight`` still counts it."""
        self.requests += 1
        self.consecutive_failures = 0
        self.tokens_out += metrics["tokens"]
        self.tokens_in += tokens_in
        ttft = metrics["latencyFirstTokenMs"]
        self.ttft_ms = ttft if self.ttft_ms is None else (
            TTFT_SMOOTHING * ttft + (1 - TTFT_SMOOTHING) * self.ttft_ms)
        self.last_tokens_per_second = metrics["tokensPerSecond"]
        if streamed:
            self.capacity.on_success(ttft, self.in_flight, "first_token")
        else:  # Only the whole call's duration is known: judge it per generated token.
            per_token = metrics["durationMs"] / max(metrics["tokens"], 1)
            self.capacity.on_success(per_token, self.in_flight, "per_token")

    def record_failure(self, degrade_after: int, cooldown_s: float, own_fault: bool) -> bool:
        """Count a failure; return True when it makes the participant degraded. Only the
        participant's own faults count towards that (a 4xx is the client's request)."""
        self.requests += 1
        self.errors += 1
        if not own_fault:
            return False
        self.capacity.on_overload()
        self.consecutive_failures += 1
        if self.consecutive_failures >= degrade_after:
            self.degraded_until = time.monotonic() + cooldown_s
            return True
        return False

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "errors": self.errors, "tokensIn": self.tokens_in,
            "tokensOut": self.tokens_out,
            "avgTtftMs": round(self.ttft_ms, 1) if self.ttft_ms is not None else None,
            "lastTokensPerSecond": self.last_tokens_per_second, "inFlight": self.in_flight,
            "maxConcurrent": self.capacity.limit, "concurrencySource": self.capacity.source,
            "degraded": self.degraded(),
        }


class StatsBook:
    def __init__(self) -> None:
        self._stats: dict[tuple[str, str], ParticipantStats] = {}

    def get(self, room_code: str, participant_id: str) -> ParticipantStats:
        key = (room_code, participant_id)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = ParticipantStats()
        return stats

    def forget(self, room_code: str, participant_id: str) -> None:
        self._stats.pop((room_code, participant_id), None)

    def forget_room(self, room_code: str) -> None:
        for key in [key for key in self._stats if key[0] == room_code]:
            del self._stats[key]

    def items(self) -> list[tuple[tuple[str, str], ParticipantStats]]:
        return list(self._stats.items())
