"""A terminal session's output waiting to be read, in bounded memory.

A shell can print far faster than anyone polls ``GET /v1/terminal/:id/output`` (``yes``,
a build log, a client that never polls). The ring keeps the NEWEST output up to
:data:`MAX_BYTES` and :data:`MAX_CHUNKS` and drops the oldest first; it counts what it
dropped and says so at the head of the next :meth:`OutputRing.take`, so a reader knows its
view has a hole instead of seeing two unrelated pieces of output glued together.
"""

from __future__ import annotations

from collections import deque

MAX_BYTES = 1_048_576
MAX_CHUNKS = 1000
"""Bounds the per-chunk overhead too: a program writing one byte at a time makes many
tiny chunks, each a Python object."""


def dropped_marker(count: int) -> str:
    return f"[... {count} bytes dropped ...]\n"


class OutputRing:
    """Chunks in arrival order; sizes are UTF-8 bytes (what the bound is about)."""

    def __init__(self, max_bytes: int = MAX_BYTES, max_chunks: int = MAX_CHUNKS) -> None:
        self.max_bytes = max(1, max_bytes)
        self.max_chunks = max(1, max_chunks)
        self._chunks: deque[tuple[str, int]] = deque()
        self._size = 0
        self._dropped = 0

    def append(self, text: str) -> None:
        """Add ``text``; older chunks go until the bounds hold again. A chunk larger than
        the whole ring keeps only its tail (the newest output)."""
        if not text:
            return
        raw = text.encode("utf-8", "replace")
        if len(raw) > self.max_bytes:
            tail = raw[-self.max_bytes:].decode("utf-8", "ignore")  # A cut char goes too.
            self._dropped += len(raw) - len(tail.encode("utf-8"))
            text, raw = tail, tail.encode("utf-8")
        self._chunks.append((text, len(raw)))
        self._size += len(raw)
        while self._size > self.max_bytes or len(self._chunks) > self.max_chunks:
            _, size = self._chunks.popleft()
            self._size -= size
            self._dropped += size

    def take(self) -> list[str]:
        """The chunks since the previous take (then forgotten), after a
        ``"[... N bytes dropped ...]\\n"`` chunk when some were lost in between."""
        taken = [text for text, _ in self._chunks]
        if self._dropped:
            taken.insert(0, dropped_marker(self._dropped))
        self._chunks.clear()
        self._size = 0
        self._dropped = 0
        return taken

    @property
    def size(self) -> int:
        """Bytes held now (tests and the status line read it)."""
        return self._size

    @property
    def dropped(self) -> int:
        """Bytes dropped since the previous take."""
        return self._dropped
