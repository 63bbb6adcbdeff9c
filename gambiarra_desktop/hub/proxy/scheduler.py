"""Who serves a request, and when: load-aware choice, per-participant concurrency and a
queue per room that serves people in turn.

Each participant has a concurrency limit (:mod:`gambiarra_desktop.hub.proxy.capacity`: the
``maxConcurrent`` it declares, what its server says, or one learned from its latency); the
scheduler only asks whether it has a free slot. A request goes to the matching participant with
the fewest requests in flight, ties broken by the lower recent time to first token. A
participant that keeps failing is "degraded" for a cooldown and only used when nothing healthy
matches.

When all are full the request waits in its room's queue for a bounded time; a full queue or a
wait that runs out is a 429 with ``Retry-After``. The queue is fair between people, not
first in first out, because rooms are shared machines: one person's batch of 500 prompts must
not make everyone else wait for all of it. A person is an API key, else the client's address
(:attr:`gambiarra_desktop.accounting.caller.Caller.person`). Why each rule:

- Waiters are grouped per person, first in first out within a person. A freed slot goes to
  the highest priority first (a key's ``priority``, 0 without one: the room owner's own work
  may jump the line), and among equal priorities to the person whose turn it is.
- Turns are a rotation kept as numbers, counted in slots handed out (immediate ones too, so a
  batch that took the free slots before anyone queued has already had its turn): a person
  served holds the turn of that moment; a person arriving holds the turn just before the last
  one handed out, so they are served next after people who have waited since before it, but
  ahead of whoever was just served. So with one slot, when A queues 20 and then B sends 1, B
  waits for at most the one request of A's already running; and a stream of newcomers cannot
  starve A either (each newcomer arrives behind A's last turn once anyone else got one). A
  person's turn is forgotten once they have nothing running and nothing waiting, so the
  state stays as small as the room's load.
- A waiter nothing can serve yet (its model is busy) never blocks another waiter, of the same
  person or not, that a freed slot fits.
- The room's queue holds at most ``max_queue`` waiters, and one person at most
  ``share = max(1, max_queue // 2)`` of them while anyone else waits: one person cannot fill
  the queue and shut everyone else out with 429s. A person alone may use the whole queue (idle
  space helps nobody); when someone else then finds it full, the newest waiter of the person
  holding the most, if that is more than their share, is answered 429 to make room: it waited
  the least, and that person still holds half the queue. Only that person sees 429s.
- A waiter's place in line (:meth:`Scheduler.positions`) is the order the rotation above
  would serve the queue in if slots freed one at a time, so a client can be told "position
  N" truthfully even though the queue is not first in first out. It ignores which waiters a
  freed slot fits (that depends on which participant frees), so it is the order, not a
  promise. Every change of the queue (a waiter in, served, gone, pushed out) is reported once
  through ``on_change``, so listeners never poll.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gambiarra_desktop.hub.errors import QueueFullError, QueueTimeoutError
from gambiarra_desktop.hub.proxy.stats import ParticipantStats, StatsBook
from gambiarra_desktop.protocol import ParticipantInfo

Candidates = Callable[[], list[ParticipantInfo]]
QueueChanged = Callable[[str], None]
"""Called with the room's code after any change to its queue; the listener reads
:meth:`Scheduler.waiting` and :meth:`Scheduler.positions` only if anyone listens."""
"""Re-evaluated whenever a slot frees up, so participants that came or went count."""

QUEUE_FULL = "Every matching participant is busy and the queue is full; retry later"


class NoCandidatesError(Exception):
    """Nothing matches the request any more (after excluding participants that failed)."""


@dataclass(slots=True)
class Lease:
    """A slot on one participant, held while its request runs."""

    room_code: str
    participant: ParticipantInfo
    stats: ParticipantStats
    queued_ms: float
    _scheduler: Scheduler
    _released: bool = False
    person: str = ""

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._scheduler.release(self)


@dataclass(slots=True)
class _Waiter:
    candidates: Candidates
    exclude: frozenset[str]
    future: asyncio.Future[ParticipantInfo | None]
    """Set to the participant whose slot it got, or to None when pushed out of the queue."""
    priority: int
    order: int
    """Arrival order in the hub, the last tie-break between people."""
    enqueued: float = field(default_factory=time.monotonic)
    request_id: str = ""
    """The client's ``X-Request-Id``, so it can find its own place in the line."""


@dataclass(slots=True)
class _Person:
    """One person's place in a room: their waiters, slots and turn in the rotation."""

    turn: int
    waiters: collections.deque[_Waiter] = field(default_factory=collections.deque)
    in_flight: int = 0
    priority: int = 0


@dataclass(slots=True)
class _Room:
    people: dict[str, _Person] = field(default_factory=dict)
    waiting: int = 0
    handed: int = 0
    """Slots handed out so far: the rotation's clock."""

    def person(self, name: str) -> _Person:
        person = self.people.get(name)
        if person is None:
            # Just before the last turn handed out: ahead of whoever was just served,
            # behind everyone who has waited since before that.
            person = self.people[name] = _Person(2 * self.handed - 1)
        return person

    def serve(self, name: str, person: _Person) -> None:
        self.handed += 1
        person.turn = 2 * self.handed
        person.in_flight += 1

    def forget_if_idle(self, name: str, person: _Person) -> None:
        if not person.in_flight and not person.waiters and self.people.get(name) is person:
            del self.people[name]


class Scheduler:
    def __init__(
        self,
        stats: StatsBook,
        max_queue: int,
        max_wait_s: float,
        on_queued: Callable[[str, int, str], None],
        on_change: QueueChanged | None = None,
    ) -> None:
        """``on_queued(room, position, request id)``: a request joined the queue.
        ``on_change``: the queue changed in any way (see the module's notes)."""
        self._stats = stats
        self._max_queue = max_queue
        self._share = max(1, max_queue // 2)
        """Waiters one person may hold while anyone else waits (see the module's notes)."""
        self._max_wait_s = max_wait_s
        self._on_queued = on_queued
        self._on_change = on_change
        self._rooms: dict[str, _Room] = {}
        self._arrivals = itertools.count()
        self.rejected: collections.Counter[str] = collections.Counter()

    def waiting(self, room_code: str) -> int:
        room = self._rooms.get(room_code)
        return room.waiting if room is not None else 0

    def positions(self, room_code: str) -> dict[str, int]:
        """Each identified waiter's 1-based place in the order the rotation would serve the
        queue (priority, then turn, then arrival; a person served goes behind everyone)."""
        room = self._rooms.get(room_code)
        if room is None or not room.waiting:
            return {}
        heap = [(-person.priority, person.turn, person.waiters[0].order, name, 0)
                for name, person in room.people.items() if person.waiters]
        heapq.heapify(heap)
        clock = 2 * room.handed
        places: dict[str, int] = {}
        place = 0
        while heap:  # At most room.waiting rounds: bounded by the queue's own bound.
            priority, _turn, _order, name, index = heapq.heappop(heap)
            waiters = room.people[name].waiters
            place += 1
            if waiters[index].request_id:
                places[waiters[index].request_id] = place
            if index + 1 < len(waiters):
                clock += 2
                heapq.heappush(heap, (priority, clock, waiters[index + 1].order, name,
                                      index + 1))
        return places

    def _changed(self, room_code: str) -> None:
        if self._on_change is not None:
            self._on_change(room_code)

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self._max_wait_s / 2))

    def _pick(
        self, room_code: str, candidates: list[ParticipantInfo], exclude: frozenset[str]
    ) -> tuple[ParticipantInfo, ParticipantStats] | None:
        """The least loaded candidate with a free slot (fewest in flight, then fastest
        first token), with its stats. A busy healthy participant is worth waiting for (then
        ``None``); a degraded one is the last resort, taken only when none is healthy. One
        pass: this runs for every request."""
        now = time.monotonic()
        get = self._stats.get
        any_healthy = False
        best: tuple[ParticipantInfo, ParticipantStats] | None = None
        best_key = (0, 0.0)
        for participant in candidates:
            if participant["id"] in exclude:
                continue
            stats = get(room_code, participant["id"])
            healthy = now >= stats.degraded_until
            if healthy and not any_healthy:
                any_healthy = True
                best = None  # Only healthy ones count from here.
            elif not healthy and any_healthy:
                continue
            if stats.in_flight >= stats.capacity.limit:
                continue
            key = (stats.in_flight, stats.ttft_ms or 0.0)
            if best is None or key < best_key:
                best, best_key = (participant, stats), key
        return best

    def _lease(self, room_code: str, participant: ParticipantInfo, queued_ms: float,
               person: str, stats: ParticipantStats | None = None) -> Lease:
        if stats is None:
            stats = self._stats.get(room_code, participant["id"])
        return Lease(room_code, participant, stats, queued_ms, self, person=person)

    def acquire_now(
        self, room_code: str, candidates: Candidates, exclude: frozenset[str] = frozenset(),
        person: str = "",
    ) -> Lease | None:
        """A free slot on the least loaded matching participant, or ``None`` when the
        request would have to wait (then :meth:`acquire` queues it). Raises
        :class:`NoCandidatesError` when nothing matches at all."""
        matching = [p for p in candidates() if p["id"] not in exclude]
        if not matching:
            raise NoCandidatesError
        picked = self._pick(room_code, matching, exclude)
        if picked is None:
            return None
        chosen, stats = picked
        room = self._rooms.get(room_code) or self._rooms.setdefault(room_code, _Room())
        stats.in_flight += 1
        room.serve(person, room.person(person))
        # It never waited in the queue: the picking time is routing, not queueing.
        return self._lease(room_code, chosen, 0.0, person, stats)

    async def acquire(
        self, room_code: str, candidates: Candidates, exclude: frozenset[str] = frozenset(),
        person: str = "", priority: int = 0, request_id: str = "",
    ) -> Lease:
        """A slot for ``person`` (a key or an address; "" counts as one anonymous person)
        on a matching participant, now or after waiting in the room's queue. ``request_id``
        names the waiter in queue events (already checked by the caller)."""
        lease = self.acquire_now(room_code, candidates, exclude, person)
        if lease is not None:
            return lease
        room = self._rooms.get(room_code) or self._rooms.setdefault(room_code, _Room())
        waiter = self._enqueue(room_code, room, person, priority, candidates, exclude,
                               request_id)
        try:
            await asyncio.wait({waiter.future}, timeout=self._max_wait_s)
        except asyncio.CancelledError:
            self._abandon(room_code, person, waiter)  # The client left while waiting.
            raise
        if not waiter.future.done():
            self._abandon(room_code, person, waiter)
            self.rejected[room_code] += 1
            raise QueueTimeoutError(f"No participant became free within {self._max_wait_s:g} s;"
                                    " retry later", self.retry_after_s)
        participant = waiter.future.result()
        if participant is None:  # Pushed out to make room for someone else.
            raise QueueFullError(QUEUE_FULL, self.retry_after_s)
        queued_ms = (time.monotonic() - waiter.enqueued) * 1000
        return self._lease(room_code, participant, queued_ms, person)

    def _enqueue(
        self, room_code: str, room: _Room, name: str, priority: int,
        candidates: Candidates, exclude: frozenset[str], request_id: str = "",
    ) -> _Waiter:
        """Take a place in the queue, within the room's bound and the person's share
        (checked and taken with no await in between)."""
        existing = room.people.get(name)
        mine = len(existing.waiters) if existing is not None else 0
        over_share = mine >= self._share and room.waiting > mine
        if mine >= self._max_queue or over_share or (
                room.waiting >= self._max_queue and not self._push_out(room_code, room, name)):
            self.rejected[room_code] += 1
            if existing is not None:
                room.forget_if_idle(name, existing)
            elif not room.people:
                self._rooms.pop(room_code, None)
            raise QueueFullError(QUEUE_FULL, self.retry_after_s)
        person = room.person(name)
        person.priority = priority
        waiter = _Waiter(candidates, exclude, asyncio.get_running_loop().create_future(),
                         priority, next(self._arrivals), request_id=request_id)
        person.waiters.append(waiter)
        room.waiting += 1
        positions = self.positions(room_code) if request_id else {}
        self._on_queued(room_code, positions.get(request_id, room.waiting), request_id)
        self._changed(room_code)
        return waiter

    def _push_out(self, room_code: str, room: _Room, newcomer: str) -> bool:
        """The queue is full: free a place by answering 429 to the newest waiter of the
        person holding the most, if that is more than a share and not the newcomer."""
        name, person = max(room.people.items(), key=lambda item: len(item[1].waiters))
        if name == newcomer or len(person.waiters) <= self._share:
            return False
        waiter = person.waiters.pop()
        room.waiting -= 1
        waiter.future.set_result(None)
        self.rejected[room_code] += 1
        return True  # The caller's own enqueue reports the change.

    def _abandon(self, room_code: str, name: str, waiter: _Waiter) -> None:
        """Leave the queue; a slot already handed to this waiter goes to the next one."""
        room = self._rooms.get(room_code)
        person = room.people.get(name) if room is not None else None
        if waiter.future.done() and not waiter.future.cancelled():
            participant = waiter.future.result()
            if participant is not None:
                self._stats.get(room_code, participant["id"]).in_flight -= 1
                if room is not None and person is not None:
                    person.in_flight -= 1
                    room.forget_if_idle(name, person)
                self.dispatch(room_code)
            return
        waiter.future.cancel()
        if room is None or person is None:
            return
        with contextlib.suppress(ValueError):
            person.waiters.remove(waiter)
            room.waiting -= 1
        room.forget_if_idle(name, person)
        if not room.people:
            del self._rooms[room_code]
        self._changed(room_code)

    def release(self, lease: Lease) -> None:
        lease.stats.in_flight -= 1
        room = self._rooms.get(lease.room_code)
        if room is None:
            return
        person = room.people.get(lease.person)
        if person is not None:
            person.in_flight -= 1
            room.forget_if_idle(lease.person, person)
        if room.waiting:
            self.dispatch(lease.room_code)
        elif not room.people:
            del self._rooms[lease.room_code]

    def dispatch(self, room_code: str) -> None:
        """Hand free slots to waiting people: highest priority first, then whose turn it is.
        A waiter that nothing can serve yet does not block another that a slot fits."""
        room = self._rooms.get(room_code)
        if room is None or not room.waiting:
            return
        stuck: set[str] = set()
        """People none of whose waiters fits a slot: serving others only takes slots."""
        served = False
        while room.waiting:
            ready = sorted(
                ((name, person) for name, person in room.people.items()
                 if person.waiters and name not in stuck),
                key=lambda item: (-item[1].priority, item[1].turn, item[1].waiters[0].order))
            for name, person in ready:
                if self._serve_one(room_code, room, name, person):
                    served = True
                    break
                stuck.add(name)
            else:
                break
        if served:
            self._changed(room_code)

    def _serve_one(self, room_code: str, room: _Room, name: str, person: _Person) -> bool:
        """Give a free slot to this person's oldest waiter that one fits, if any."""
        for waiter in person.waiters:
            picked = self._pick(room_code, waiter.candidates(), waiter.exclude)
            if picked is None:
                continue
            chosen, stats = picked
            stats.in_flight += 1
            person.waiters.remove(waiter)
            room.waiting -= 1
            room.serve(name, person)
            waiter.future.set_result(chosen)
            return True
        return False
