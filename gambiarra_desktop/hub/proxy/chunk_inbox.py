"""Body chunks handed from a network callback to the one coroutine that forwards them.

Both ways of reaching a model (a direct connection and a participant tunnel) receive an
answer's body in callbacks and forward it from the request handler; this is that hand-over,
once. Whatever piled up while the consumer was busy is taken in one piece, so a slow
client gets fewer, larger writes instead of falling further behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncGenerator, Callable

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
"""A whole (non-streamed) answer larger than this is refused: it is held in memory at once,
so a hostile model server answering gigabytes must not be able to fill the hub's RAM."""


class UpstreamError(Exception):
    """The model could not be reached, broke the connection, or answered nonsense."""


class ChunkInbox:
    def __init__(self, source: str, on_taken: Callable[[], None] | None = None) -> None:
        """``source`` names the sender in timeout messages; ``on_taken`` runs after the
        consumer emptied the inbox (the direct connection resumes reading there)."""
        self._source = source
        self._on_taken = on_taken
        self._chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

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
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take(self) -> bytes | None:
        """Everything received so far, joined, or ``None`` when empty."""
        if not self._chunks:
            return None
        chunks = self._chunks
        chunk = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
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
        head: then this returns at once, without starting an iterator."""
        if self.complete and self.buffered <= max_bytes:
            return self.take() or b""
        parts: list[bytes] = []
        total = 0
        chunks = self.chunks(idle_timeout_s)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                total += len(chunk)
                if total > max_bytes:
                    raise UpstreamError(
                        f"{self._source} answer is larger than the limit of {max_bytes} bytes")
                parts.append(chunk)
        return b"".join(parts)

    async def chunks(self, idle_timeout_s: float | None) -> AsyncGenerator[bytes, None]:
        """Chunks until the body is complete. Chunks that arrived before a failure are
        still delivered, then the failure is raised."""
        while True:
            chunk = self.take()
            if chunk is not None:
                yield chunk
                continue
            if self.complete:
                return
            if self.error is not None:
                raise self.error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(idle_timeout_s):
                    await self._waiter
            except TimeoutError as exc:
                raise UpstreamError(
                    f"{self._source} sent nothing for {idle_timeout_s:g} s") from exc
            finally:
                self._waiter = None
