"""The room queue serves people in turn: rotation, priority, leaving mid-queue, each person's
share of the queue. Scheduler-level tests with real stats and fake participants: the
rotation is a pure in-memory rule, and these pin its order exactly (the HTTP-level
measurement is tests/test_fair_share.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from gambiarra_desktop.hub.errors import QueueFullError, QueueTimeoutError
from gambiarra_desktop.hub.proxy.scheduler import Lease, Scheduler
from gambiarra_desktop.hub.proxy.stats import StatsBook
from gambiarra_desktop.protocol import ParticipantInfo

ROOM = "ROOM01"


def participant(pid: str, model: str = "m") -> ParticipantInfo:
    return ParticipantInfo(id=pid, nickname=pid, model=model, endpoint="http://127.0.0.1:9",
                           specs={}, config={}, status="online", joinedAt=0, lastSeen=0,
                           transport="direct")


def scheduler(max_queue: int = 64, max_wait_s: float = 5.0,
              slots: dict[str, int] | None = None) -> Scheduler:
    stats = StatsBook()
    for pid, limit in (slots or {"p": 1}).items():
        stats.get(ROOM, pid).capacity.configure(limit, "declared")
    return Scheduler(stats, max_queue, max_wait_s, lambda _room, _position, _id: None)


async def until(predicate: Callable[[], object], within_s: float = 2.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.001)


class Queue:
    """Queues requests as tasks, in a known order, and records who got a slot when."""

    def __init__(self, sched: Scheduler, *participants: ParticipantInfo) -> None:
        self.sched = sched
        self.participants = list(participants) or [participant("p")]
        self.served: list[tuple[str, Lease]] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def add(self, person: str, priority: int = 0,
                  participants: list[ParticipantInfo] | None = None) -> asyncio.Task[None]:
        wanted = participants or self.participants

        async def take() -> None:
            lease = await self.sched.acquire(ROOM, lambda: wanted, person=person,
                                             priority=priority)
            self.served.append((person, lease))

        waiting, served = self.sched.waiting(ROOM), len(self.served)
        finished = self.finished()
        task = asyncio.ensure_future(take())
        self.tasks.append(task)
        # Queued, served at once, refused, or pushed another waiter out.
        await until(lambda: self.sched.waiting(ROOM) != waiting or
                    len(self.served) > served or self.finished() > finished)
        return task

    def finished(self) -> int:
        return sum(task.done() for task in self.tasks)

    async def release_next(self) -> str:
        """Free the oldest held slot; return who got it."""
        count = len(self.served)
        held = [lease for _, lease in self.served if not lease._released]
        held[0].release()
        await until(lambda: len(self.served) > count)
        return self.served[-1][0]


async def test_three_people_are_served_in_turn_not_first_in_first_out() -> None:
    sched = scheduler()
    queue = Queue(sched)
    await queue.add("a")  # Takes the only slot at once.
    for person in "aaabbbccc":
        await queue.add(person)
    assert sched.waiting(ROOM) == 9
    order = [await queue.release_next() for _ in range(9)]
    # First in first out would be a a a b b b c c c. a just had the slot: b, then c, go first.
    assert order == list("bcabcabca")
    assert sched.waiting(ROOM) == 0
    for _, lease in queue.served:
        lease.release()
    assert sched._rooms == {}, "a quiet room keeps no state"


async def test_a_newcomer_never_waits_behind_a_whole_batch_nor_starves_it() -> None:
    sched = scheduler()
    queue = Queue(sched)
    await queue.add("batch")
    for _ in range(10):
        await queue.add("batch")
    await queue.add("one")
    assert await queue.release_next() == "one"
    # A stream of new people, one request each, alternates with the batch.
    order = []
    for index in range(4):
        await queue.add(f"new{index}")
        order.append(await queue.release_next())
        order.append(await queue.release_next())
    assert order == ["batch", "new0", "batch", "new1", "batch", "new2", "batch", "new3"]


async def test_higher_priority_jumps_the_rotation() -> None:
    sched = scheduler()
    queue = Queue(sched)
    await queue.add("a")
    await queue.add("a")
    await queue.add("b")
    await queue.add("owner", priority=5)
    await queue.add("owner", priority=5)
    order = [await queue.release_next() for _ in range(4)]
    assert order == ["owner", "owner", "b", "a"]


async def test_a_cancelled_waiter_in_the_middle_leaves_and_the_rest_keep_their_turns() -> None:
    sched = scheduler()
    queue = Queue(sched)
    await queue.add("a")
    await queue.add("a")
    await queue.add("b")
    middle = await queue.add("c")
    await queue.add("d")
    middle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await middle
    assert sched.waiting(ROOM) == 3
    assert [await queue.release_next() for _ in range(3)] == ["b", "d", "a"]


async def test_a_slot_handed_to_a_waiter_that_then_leaves_goes_to_the_next() -> None:
    sched = scheduler()
    queue = Queue(sched)
    await queue.add("a")
    await queue.add("a")
    handed = await queue.add("b")
    await queue.add("c")
    queue.served[0][1].release()  # b's turn: b is handed the slot...
    handed.cancel()  # ...but its client leaves before it runs.
    await until(lambda: len(queue.served) == 2)
    assert queue.served[-1][0] == "c"  # Next in turn; a just had the slot.
    assert sched.waiting(ROOM) == 1


async def test_a_waiter_timing_out_in_the_middle_does_not_disturb_the_others() -> None:
    big, small = participant("big", "big"), participant("small", "small")
    sched = scheduler(max_wait_s=0.3, slots={"big": 1, "small": 1})
    queue = Queue(sched, big, small)
    await queue.add("x", participants=[big])  # Holds big throughout.
    await queue.add("a", participants=[small])
    await queue.add("a", participants=[small])
    middle = await queue.add("c", participants=[big])
    await asyncio.sleep(0.15)
    await queue.add("d", participants=[small])
    small_leases = [lease for _, lease in queue.served if lease.participant is small]
    small_leases[0].release()
    await until(lambda: len(queue.served) == 3)
    assert queue.served[-1][0] == "d"  # a just had small: d's turn, though a queued first.
    queue.served[-1][1].release()
    await until(lambda: len(queue.served) == 4)
    assert queue.served[-1][0] == "a"
    with pytest.raises(QueueTimeoutError):
        await middle  # Nothing freed big within 0.3 s.
    assert sched.waiting(ROOM) == 0
    assert sched.rejected[ROOM] == 1
    for _, lease in queue.served:
        lease.release()
    assert sched._rooms == {}


async def test_one_person_cannot_take_more_than_half_the_queue_while_others_wait() -> None:
    sched = scheduler(max_queue=4)
    queue = Queue(sched)
    await queue.add("a")
    await queue.add("a")
    await queue.add("a")
    await queue.add("b")
    refused = await queue.add("a")  # a holds 2 of 4 places and b waits: a's share is full.
    with pytest.raises(QueueFullError):
        await refused
    await queue.add("b")  # b is not refused: a's 429 was a's alone.
    assert sched.waiting(ROOM) == 4
    assert sched.rejected[ROOM] == 1
    assert sorted([await queue.release_next() for _ in range(4)]) == ["a", "a", "b", "b"]


async def test_alone_a_person_may_fill_the_queue_until_someone_else_needs_a_place() -> None:
    sched = scheduler(max_queue=4)
    queue = Queue(sched)
    await queue.add("a")
    tasks = [await queue.add("a") for _ in range(4)]
    assert sched.waiting(ROOM) == 4
    await queue.add("b")  # The queue is full: a's newest waiter makes room.
    with pytest.raises(QueueFullError):
        await tasks[-1]
    assert not any(task.done() for task in tasks[:-1])
    assert sched.waiting(ROOM) == 4
    assert await queue.release_next() == "b"


async def test_a_waiter_no_slot_fits_does_not_block_the_next_in_turn() -> None:
    big, small = participant("big", "big"), participant("small", "small")
    sched = scheduler(slots={"big": 1, "small": 1})
    queue = Queue(sched, big, small)
    await queue.add("x", participants=[big])
    await queue.add("y", participants=[small])
    await queue.add("a", participants=[big])  # First in turn, but big stays busy.
    await queue.add("y", participants=[small])
    await queue.add("b", participants=[small])
    queue.served[1][1].release()  # y's slot on small.
    await until(lambda: len(queue.served) == 3)
    assert queue.served[-1][0] == "b"  # a cannot use it; y just had it.
    assert sched.waiting(ROOM) == 2
    queue.served[0][1].release()  # x's slot on big.
    await until(lambda: len(queue.served) == 4)
    assert queue.served[-1][0] == "a"
