"""ChunkInbox's idle timeout is one re-armed timer per stream, not a timeout per wait,
and every hand-over promise still holds (through ``chunks()`` and ``next_chunk()``)."""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gambiarra_desktop.hub.proxy.chunk_inbox import ChunkInbox, UpstreamError

Reader = Callable[[ChunkInbox, float | None], AsyncIterator[bytes]]


async def via_generator(inbox: ChunkInbox, idle_timeout_s: float | None) -> AsyncIterator[bytes]:
    async for chunk in inbox.chunks(idle_timeout_s):
        yield chunk


async def via_next_chunk(inbox: ChunkInbox, idle_timeout_s: float | None) -> AsyncIterator[bytes]:
    while (chunk := await inbox.next_chunk(idle_timeout_s)) is not None:
        yield chunk


READERS = pytest.mark.parametrize("read", [via_generator, via_next_chunk],
                                  ids=["chunks", "next_chunk"])


async def collect(read: Reader, inbox: ChunkInbox, idle_timeout_s: float | None) -> list[bytes]:
    return [chunk async for chunk in read(inbox, idle_timeout_s)]


@READERS
async def test_a_quiet_sender_fails_the_wait_with_the_same_text(read: Reader) -> None:
    inbox = ChunkInbox("tunnel")
    inbox.put(b"first")
    got: list[bytes] = []
    started = time.monotonic()
    with pytest.raises(UpstreamError) as caught:
        async with asyncio.timeout(5):
            async for chunk in read(inbox, 0.05):
                got.append(chunk)
    assert str(caught.value) == "tunnel sent nothing for 0.05 s"
    assert got == [b"first"]
    assert time.monotonic() - started >= 0.05  # Never early.


@READERS
async def test_activity_re_arms_the_timer_so_a_slow_steady_stream_lives_on(read: Reader) -> None:
    """Ten chunks 60 ms apart: 600 ms in all, well past the 250 ms idle timeout."""
    inbox = ChunkInbox("upstream")

    async def produce() -> None:
        for i in range(10):
            await asyncio.sleep(0.06)
            inbox.put(b"%d" % i)
        inbox.finish()

    producer = asyncio.create_task(produce())
    async with asyncio.timeout(5):
        got = await collect(read, inbox, 0.25)
    await producer
    assert b"".join(got) == b"0123456789"


@READERS
async def test_the_timeout_counts_from_when_the_consumer_waits(read: Reader) -> None:
    """A consumer busy past the timeout (a slow client) does not make its next wait fail at
    once: the sender is only idle while someone waits for it."""
    inbox = ChunkInbox("upstream")
    inbox.put(b"a")
    got: list[bytes] = []
    async with asyncio.timeout(5):
        async for chunk in read(inbox, 0.3):
            got.append(chunk)
            if chunk == b"a":
                await asyncio.sleep(0.5)  # Busy writing; then wait for "b" for 50 ms.
                asyncio.get_running_loop().call_later(0.05, inbox.put, b"b")
                asyncio.get_running_loop().call_later(0.06, inbox.finish)
    assert got == [b"a", b"b"]


@READERS
async def test_a_wait_without_timeout_is_not_failed_by_an_earlier_timer(read: Reader) -> None:
    inbox = ChunkInbox("upstream")
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, inbox.put, b"a")
    async with asyncio.timeout(5):
        assert await anext(read(inbox, 0.05)) == b"a"  # Arms a 50 ms timer.
        loop.call_later(0.15, inbox.put, b"b")
        assert await anext(read(inbox, None)) == b"b"  # Waits 150 ms, no timeout.


async def test_one_timer_per_stream_not_one_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The consumer waits for each of 200 chunks; the old inbox entered asyncio.timeout()
    per wait (a call_at each time), this one schedules its timer once."""
    loop = asyncio.get_running_loop()
    scheduled: list[Any] = []
    real_call_at = loop.call_at

    def counting_call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
        scheduled.append(callback)
        return real_call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    left = 200
    inbox: ChunkInbox

    def produce() -> None:  # One chunk per loop turn after each take: a wait per chunk.
        nonlocal left
        if left:
            left -= 1
            inbox.put(b"x")
        else:
            inbox.finish()

    for read in (via_generator, via_next_chunk):
        scheduled.clear()
        left = 200
        inbox = ChunkInbox("upstream", on_taken=lambda: loop.call_soon(produce))
        loop.call_soon(produce)
        async with asyncio.timeout(10):
            scheduled.clear()  # Only the inbox's own timers count.
            got = await collect(read, inbox, 30.0)
        assert len(got) == 200
        assert len(scheduled) == 1, (read.__name__, len(scheduled))


@READERS
async def test_chunks_that_arrived_before_a_failure_come_first_in_one_piece(read: Reader) -> None:
    inbox = ChunkInbox("upstream")
    for part in (b"a", b"b", b"c"):
        inbox.put(part)
    inbox.fail(UpstreamError("broke"))
    got: list[bytes] = []
    with pytest.raises(UpstreamError, match="^broke$"):
        async for chunk in read(inbox, 1):
            got.append(chunk)
    assert got == [b"abc"]


@READERS
async def test_a_discarding_failure_drops_what_waits(read: Reader) -> None:
    inbox = ChunkInbox("tunnel")
    inbox.put(b"a" * 100)
    inbox.fail(UpstreamError("overflow"), discard=True)
    assert inbox.buffered == 0
    with pytest.raises(UpstreamError, match="^overflow$"):
        await collect(read, inbox, 1)


@READERS
async def test_on_taken_runs_after_each_take(read: Reader) -> None:
    taken: list[int] = []
    inbox = ChunkInbox("upstream", on_taken=lambda: taken.append(inbox.buffered))
    inbox.put(b"ab")
    inbox.put(b"cd")
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, inbox.put, b"ef")
    loop.call_later(0.02, inbox.finish)
    async with asyncio.timeout(5):
        assert await collect(read, inbox, 1) == [b"abcd", b"ef"]
    assert taken == [0, 0]


async def test_read_all_joins_refuses_past_the_limit_and_times_out() -> None:
    inbox = ChunkInbox("upstream")
    inbox.put(b"done")
    inbox.finish()
    assert await inbox.read_all(1) == b"done"  # Complete already: no wait at all.

    inbox = ChunkInbox("upstream")
    loop = asyncio.get_running_loop()
    for delay, part in ((0.01, b"12"), (0.02, b"34")):
        loop.call_later(delay, inbox.put, part)
    loop.call_later(0.03, inbox.finish)
    assert await inbox.read_all(1, max_bytes=4) == b"1234"

    inbox = ChunkInbox("upstream")
    loop.call_later(0.01, inbox.put, b"12345")
    with pytest.raises(UpstreamError, match="^upstream answer is larger than the limit of 4 b"):
        await inbox.read_all(1, max_bytes=4)
    assert inbox._timer is None

    inbox = ChunkInbox("upstream")
    inbox.put(b"12")
    with pytest.raises(UpstreamError, match="^upstream sent nothing for 0.05 s$"):
        await inbox.read_all(0.05)


@READERS
async def test_a_cancelled_consumer_leaves_no_timer_holding_the_inbox(read: Reader) -> None:
    inbox = ChunkInbox("upstream")
    inbox.put(b"a" * 1000)
    consumer = asyncio.create_task(collect(read, inbox, 300.0))
    await asyncio.sleep(0.01)  # Took the chunk and waits for the next, its timer armed.
    timer = inbox._timer
    assert timer is not None and not timer.cancelled()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert inbox._timer is None
    assert timer.cancelled()  # The loop drops a cancelled handle's callback: no reference.


async def drain_chunks(inbox: ChunkInbox) -> int:
    count = 0
    async for _chunk in inbox.chunks(300.0):
        count += 1
    return count


async def drain_next_chunk(inbox: ChunkInbox) -> int:
    count = 0
    while await inbox.next_chunk(300.0) is not None:
        count += 1
    return count


@pytest.mark.parametrize("drain", [drain_chunks, drain_next_chunk], ids=["chunks", "next_chunk"])
async def test_a_stream_waiting_on_its_inbox_holds_under_2_kib(
        drain: Callable[[ChunkInbox], Awaitable[int]]) -> None:
    """An inbox with its consumer task waiting for the next chunk (the task alone is about
    1 KB). The old inbox added a deque's 64-slot block, and per wait a future, a timeout
    object and its timer handle: about 2.6 KB in all."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        inboxes = [ChunkInbox("upstream") for _ in range(200)]
        consumers = [asyncio.ensure_future(drain(inbox)) for inbox in inboxes]
        await asyncio.sleep(0.01)
        held = (tracemalloc.get_traced_memory()[0] - before) / len(inboxes)
    finally:
        tracemalloc.stop()
    for inbox in inboxes:
        inbox.finish()
    assert await asyncio.gather(*consumers) == [0] * len(inboxes)
    assert held < 2048, held


async def test_a_reader_that_paused_past_the_timer_resumes_with_a_fresh_deadline() -> None:
    """next_chunk() keeps the timer between calls; one that fires while nobody waits only
    drops itself, and stop_timer() ends it for a reader that gives up early."""
    inbox = ChunkInbox("upstream")
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, inbox.put, b"a")
    async with asyncio.timeout(5):
        assert await inbox.next_chunk(0.05) == b"a"
        timer = inbox._timer
        assert timer is not None
        await asyncio.sleep(0.1)  # The timer fires with no wait in progress.
        assert inbox._timer is None
        loop.call_later(0.03, inbox.put, b"b")
        assert await inbox.next_chunk(0.05) == b"b"
        assert inbox._timer is not None
        inbox.stop_timer()
        assert inbox._timer is None
