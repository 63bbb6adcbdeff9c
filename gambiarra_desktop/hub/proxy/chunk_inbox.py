"""Body chunks handed from a network callback to the one coroutine that forwards them.

Both ways of reaching a model (a direct connection and a participant tunnel) receive an
answer's body in callbacks and forward it from the request handler; this is that hand-over,
once. Whatever piled up while the consumer was busy is taken in one piece, so a slow
client gets fewer, larger writes instead of falling further behind.

This is the streaming hot path (every relayed chunk passes here), so the idle timeout is
one timer per stream, not one per wait: each wait only moves a deadline forward (a clock
read and a float), and the timer, when it fires, either finds the deadline passed and fails
the wait, or re-arms itself for the new deadline. Entering ``asyncio.timeout()`` per chunk
built a timeout object and scheduled and cancelled a timer handle every time, and cancelled
handles piled up in the loop's heap.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Callable

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
"""A whole (non-streamed) answer larger than this is refused: it is held in memory at once,
so a hostile model server answering gigabytes must not be able to fill the hub's RAM."""


class UpstreamError(Exception):
    """The model could not be reached, broke the connection, or answered nonsense."""


class ChunkInbox:
    """Slotted, with a plain list for the chunks: thousands of open streams each hold one,
    and a deque alone allocates a 64-slot block (over 600 bytes) before its first chunk."""

    __slots__ = ("_source", "_on_taken", "_chunks", "buffered", "complete", "error",
                 "_waiter", "_loop", "_timer", "_deadline", "_armed_for", "_timed_out")

    def __init__(self, source: str, on_taken: Callable[[], None] | None = None) -> None:
        """``source`` names the sender in timeout messages; ``on_taken`` runs after the
        consumer emptied the inbox (the direct connection resumes reading there)."""
        self._source = source
        self._on_taken = on_taken
        self._chunks: list[bytes] = []
        self.buffered = 0
        self.complete = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = math.inf
        """When the wait in progress times out (``inf``: it never does)."""
        self._armed_for = math.inf
        """The deadline ``_timer`` was scheduled for."""
        self._timed_out = False

    def put(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self.buffered += len(chunk)
        self._wake()

    def finish(self) -> None:
        self.complete = True
        self._wake()

    def fail(self, error: BaseException, discard: bool = False) -> None:
        """``discard``: drop what is waiting too (an overflow frees its memory at once and
        the consumer sees the error next); else it is delivered first."""
        if self.error is None:
            self.error = error
        if discard:
            self._chunks.clear()
            self.buffered = 0
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self) -> bytes | None:
        """Everything received so far, joined, or ``None`` when empty."""
        chunks = self._chunks
        if not chunks:
            return None
        chunk = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self._on_taken is not None:
            self._on_taken()
        return chunk

    async def read_all(
        self, idle_timeout_s: float | None, max_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> bytes:
        """The whole body, or an :class:`UpstreamError` once it passes ``max_bytes`` (what
        was read so far is dropped then). Small answers usually arrive complete with their
        head: then this returns at once, without waiting at all."""
        if self.complete and self.buffered <= max_bytes:
            return self.take() or b""
        parts: list[bytes] = []
        total = 0
        try:
            while (chunk := await self.next_chunk(idle_timeout_s)) is not None:
                total += len(chunk)
                if total > max_bytes:
                    raise UpstreamError(
                        f"{self._source} answer is larger than the limit of {max_bytes} bytes")
                parts.append(chunk)
        finally:
            self.stop_timer()
        return b"".join(parts)

    async def next_chunk(self, idle_timeout_s: float | None) -> bytes | None:
        """The next chunk (everything that arrived since the last one), or ``None`` once the
        body is complete. Chunks that arrived before a failure are still delivered, then the
        failure is raised. Cheaper per chunk than iterating :meth:`chunks`. A caller that
        stops before ``None`` or an error should call :meth:`stop_timer`, else the idle timer
        keeps this inbox alive until it next fires (at most ``idle_timeout_s``)."""
        while True:
            if self._chunks:
                return self.take()
            if self.complete:
                self.stop_timer()
                return None
            if self.error is not None:
                self.stop_timer()
                raise self.error
            waiter = self._arm(idle_timeout_s)
            try:
                await waiter
            except BaseException:
                self.stop_timer()  # Cancelled: nobody waits any more.
                raise
            finally:
                self._waiter = None
            if self._timed_out:
                raise self._idle_error(idle_timeout_s)

    async def chunks(self, idle_timeout_s: float | None) -> AsyncGenerator[bytes, None]:
        """Chunks until the body is complete. Chunks that arrived before a failure are
        still delivered, then the failure is raised."""
        try:
            while True:
                chunk = self.take()
                if chunk is not None:
                    yield chunk
                    continue
                if self.complete:
                    return
                if self.error is not None:
                    raise self.error
                waiter = self._arm(idle_timeout_s)
                try:
                    await waiter
                finally:
                    self._waiter = None
                if self._timed_out:
                    raise self._idle_error(idle_timeout_s)
        finally:
            self.stop_timer()

    def stop_timer(self) -> None:
        """Cancel the idle timer: the consumer is done with this inbox."""
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()

    def _arm(self, idle_timeout_s: float | None) -> asyncio.Future[None]:
        """The future the consumer awaits until something arrives, with the idle deadline
        moved to ``idle_timeout_s`` from now. The timer is only (re)scheduled when there is
        none or it would fire too late; otherwise it re-arms itself when it fires."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        self._timed_out = False
        if idle_timeout_s is None:
            self._deadline = math.inf
            return waiter
        deadline = self._deadline = loop.time() + idle_timeout_s
        if self._timer is None or self._armed_for > deadline:
            self.stop_timer()
            self._armed_for = deadline
            self._timer = loop.call_at(deadline, self._on_idle_timer)
        return waiter

    def _on_idle_timer(self) -> None:
        """The timer fired: fail the wait when its deadline is the one the timer was armed
        for (nothing arrived since), else wait on until the later deadline."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # Not waiting: the next wait arms a timer again.
        deadline = self._deadline
        if deadline > self._armed_for:
            if deadline != math.inf and self._loop is not None:
                self._armed_for = deadline
                self._timer = self._loop.call_at(deadline, self._on_idle_timer)
            return
        self._timed_out = True
        waiter.set_result(None)

    def _idle_error(self, idle_timeout_s: float | None) -> UpstreamError:
        self._timed_out = False
        return UpstreamError(f"{self._source} sent nothing for {idle_timeout_s:g} s")
