"""Who serves a request, and when: load-aware choice, per-participant concurrency and a
fair queue per room.

Each participant has a concurrency limit (:mod:`gambiarra_desktop.hub.proxy.capacity`: the
``maxConcurrent`` it declares, what its server says, or one learned from its latency); the
scheduler only asks whether it has a free slot. A request goes to the matching participant with
the fewest requests in flight, ties broken by the lower recent time to first token. When
all are full it waits in its room's queue, first in first out, for a bounded time; a full
queue or a wait that runs out is a 429 with ``Retry-After``. A participant that keeps
failing is "degraded" for a cooldown and only used when nothing healthy matches.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gambiarra_desktop.hub.errors import QueueFullError, QueueTimeoutError
from gambiarra_desktop.hub.proxy.stats import ParticipantStats, StatsBook
from gambiarra_desktop.protocol import ParticipantInfo

Candidates = Callable[[], list[ParticipantInfo]]
"""Re-evaluated whenever a slot frees up, so participants that came or went count."""


class NoCandidatesError(Exception):
    """Nothing matches the request any more (after excluding participants that failed)."""


@dataclass
class Lease:
    """A slot on one participant, held while its request runs."""

    room_code: str
    participant: ParticipantInfo
    stats: ParticipantStats
    queued_ms: float
    _scheduler: Scheduler
    _released: bool = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._scheduler.release(self)


@dataclass
class _Waiter:
    candidates: Candidates
    exclude: frozenset[str]
    future: asyncio.Future[ParticipantInfo]
    enqueued: float = field(default_factory=time.monotonic)


class Scheduler:
    def __init__(
        self,
        stats: StatsBook,
        max_queue: int,
        max_wait_s: float,
        on_queued: Callable[[str, int], None],
    ) -> None:
        self._stats = stats
        self._max_queue = max_queue
        self._max_wait_s = max_wait_s
        self._on_queued = on_queued
        self._queues: dict[str, collections.deque[_Waiter]] = collections.defaultdict(
            collections.deque)
        self.rejected: collections.Counter[str] = collections.Counter()

    def waiting(self, room_code: str) -> int:
        return len(self._queues.get(room_code, ()))

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self._max_wait_s / 2))

    def _pick(
        self, room_code: str, candidates: list[ParticipantInfo], exclude: frozenset[str]
    ) -> ParticipantInfo | None:
        now = time.monotonic()
        usable = [(p, self._stats.get(room_code, p["id"])) for p in candidates
                  if p["id"] not in exclude]
        healthy = [(p, s) for p, s in usable if not s.degraded(now)]
        # A busy healthy participant is worth waiting for; a degraded one is the last resort.
        pool = [(p, s) for p, s in (healthy or usable) if s.has_slot()]
        if not pool:
            return None
        best, _ = min(pool, key=lambda ps: (ps[1].in_flight, ps[1].ttft_ms or 0.0))
        return best

    def _lease(self, room_code: str, participant: ParticipantInfo, queued_ms: float) -> Lease:
        stats = self._stats.get(room_code, participant["id"])
        return Lease(room_code, participant, stats, queued_ms, self)

    async def acquire(
        self, room_code: str, candidates: Candidates, exclude: frozenset[str] = frozenset()
    ) -> Lease:
        matching = [p for p in candidates() if p["id"] not in exclude]
        if not matching:
            raise NoCandidatesError
        chosen = self._pick(room_code, matching, exclude)
        if chosen is not None:
            self._stats.get(room_code, chosen["id"]).in_flight += 1
            # It never waited in the queue: the picking time is routing, not queueing.
            return self._lease(room_code, chosen, 0.0)
        queue = self._queues[room_code]
        if len(queue) >= self._max_queue:
            self.rejected[room_code] += 1
            raise QueueFullError("Every matching participant is busy and the queue is full;"
                                 " retry later", self.retry_after_s)
        waiter = _Waiter(candidates, exclude, asyncio.get_running_loop().create_future())
        queue.append(waiter)
        self._on_queued(room_code, len(queue))
        try:
            await asyncio.wait({waiter.future}, timeout=self._max_wait_s)
        except asyncio.CancelledError:
            self._abandon(room_code, waiter)  # The client left while waiting.
            raise
        if not waiter.future.done():
            self._abandon(room_code, waiter)
            self.rejected[room_code] += 1
            raise QueueTimeoutError(f"No participant became free within {self._max_wait_s:g} s;"
                                    " retry later", self.retry_after_s)
        queued_ms = (time.monotonic() - waiter.enqueued) * 1000
        return self._lease(room_code, waiter.future.result(), queued_ms)

    def _abandon(self, room_code: str, waiter: _Waiter) -> None:
        """Leave the queue; a slot already handed to this waiter goes to the next one."""
        if waiter.future.done() and not waiter.future.cancelled():
            self._stats.get(room_code, waiter.future.result()["id"]).in_flight -= 1
            self.dispatch(room_code)
            return
        waiter.future.cancel()
        with contextlib.suppress(ValueError):
            self._queues[room_code].remove(waiter)

    def release(self, lease: Lease) -> None:
        lease.stats.in_flight -= 1
        self.dispatch(lease.room_code)

    def dispatch(self, room_code: str) -> None:
        """Hand free slots to waiting requests, oldest first. A waiter that nothing can
        serve yet does not block a later one waiting for another model."""
        queue = self._queues.get(room_code)
        if not queue:
            return
        for waiter in list(queue):
            if waiter.future.done():
                continue
            chosen = self._pick(room_code, waiter.candidates(), waiter.exclude)
            if chosen is not None:
                self._stats.get(room_code, chosen["id"]).in_flight += 1
                waiter.future.set_result(chosen)
                queue.remove(waiter)
