"""A provider's API key blanked out of what the provider sends back.

The hub sends the key to the provider, never to a client, but a provider can send it back:
some APIs quote a wrong key in their error, and a debugging proxy set as a base URL may
echo the request's headers in its answer. Whatever comes back, error or answer, whole or
streamed, reaches clients with the key replaced. A stream is redacted across chunk
boundaries: a chunk that ends with the start of the key keeps that end back until the
next chunk shows whether the key follows (SSE chunks end with a blank line, so in
practice nothing is held back and streaming keeps its pace).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from gambiarra_desktop.hub.proxy.chunk_inbox import DEFAULT_MAX_BODY_BYTES
from gambiarra_desktop.hub.proxy.upstream_client import ModelResponse

REDACTED = b"[redacted]"


def redact(data: bytes, secret: bytes) -> bytes:
    return data.replace(secret, REDACTED) if secret else data


def _partial_key_at_end(data: bytes, secret: bytes) -> int:
    """How many bytes at the end of ``data`` are the start of ``secret`` (0 if none)."""
    first = secret[:1]
    start = max(0, len(data) - len(secret) + 1)
    position = data.find(first, start)
    while position != -1:
        if secret.startswith(data[position:]):
            return len(data) - position
        position = data.find(first, position + 1)
    return 0


class RedactedResponse:
    """``upstream`` with ``secret`` blanked out of its body (a :class:`ModelResponse`)."""

    def __init__(self, upstream: ModelResponse, secret: bytes) -> None:
        self._upstream = upstream
        self._secret = secret
        self.status = upstream.status

    def header(self, name: str) -> str | None:
        return self._upstream.header(name)

    async def iter_chunks(self, idle_timeout_s: float | None) -> AsyncIterator[bytes]:
        held = b""
        async for chunk in self._upstream.iter_chunks(idle_timeout_s):
            data = redact(held + chunk, self._secret)
            keep = _partial_key_at_end(data, self._secret)
            held = data[len(data) - keep:] if keep else b""
            data = data[:len(data) - keep]
            if data:
                yield data
        if held:
            yield held

    async def read(self, idle_timeout_s: float | None,
                   max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> bytes:
        return redact(await self._upstream.read(idle_timeout_s, max_bytes), self._secret)

    def release(self) -> None:
        self._upstream.release()

    def close(self) -> None:
        self._upstream.close()
