"""Relaying a model's event stream to the client, chunk by chunk.

Shared by the room proxy and the gateway's direct providers, so both keep the same
promises: nothing is sent before the model's first chunk (until then a failure is
invisible to the client and the caller may try elsewhere), every chunk is written as it
arrives, and a stream that breaks after bytes went out ends with an OpenAI-style error
chunk rather than a silently cut connection.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping

from aiohttp import web

from gambiarra_desktop.hub.proxy.metrics import error_chunk
from gambiarra_desktop.hub.proxy.reply import AiohttpStreamOut, StreamOut
from gambiarra_desktop.hub.proxy.upstream_client import ModelResponse, UpstreamError
from gambiarra_desktop.protocol import ErrorText

EVENT_STREAM = "text/event-stream"
STREAM_HEADERS = {
    "Content-Type": EVENT_STREAM,
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
MAX_HELD_BYTES = 64 * 1024
"""Held back while waiting for a stream's first content (``require_content``); a stream
whose first 64 KB carry none is sent on anyway (it is not empty, just unusual)."""
_CONTENT = re.compile(
    rb'"(?:content|reasoning_content|text)"\s*:\s*"(?!")|"(?:tool_calls|function_call)"\s*:\s*[\[{]')
"""A delta that carries something: a non-empty text, or a tool call."""


class EmptyAnswerError(UpstreamError):
    """The stream ended before it carried any content: worth another model's try."""


async def _held_until_content(first: bytes, chunks: AsyncIterator[bytes]) -> bytes:
    """``first`` and the chunks after it, up to the first one with content. Raises
    :class:`EmptyAnswerError` when the stream ends without any."""
    held = first
    while held and not _CONTENT.search(held) and len(held) < MAX_HELD_BYTES:
        chunk = await anext(chunks, b"")
        if not chunk:
            break
        held += chunk
    if not _CONTENT.search(held) and len(held) < MAX_HELD_BYTES:
        raise EmptyAnswerError("the model's answer was empty")
    return held


async def relay_stream(
    request: web.Request, upstream: ModelResponse, headers: Mapping[str, str],
    idle_timeout_s: float, on_chunk: Callable[[bytes], None], require_content: bool = False,
) -> tuple[web.StreamResponse, str | None]:
    """:func:`relay_to` an aiohttp request; returns its response and what broke, if any."""
    out = AiohttpStreamOut(request)
    broken = await relay_to(out, upstream, headers, idle_timeout_s, on_chunk, require_content)
    return out.response, broken


async def relay_to(
    out: StreamOut, upstream: ModelResponse, headers: Mapping[str, str],
    idle_timeout_s: float, on_chunk: Callable[[bytes], None], require_content: bool = False,
) -> str | None:
    """Stream ``upstream`` to the client. Returns, when the stream broke after bytes went
    out, what went wrong. Raises :class:`UpstreamError` when it failed before its first
    chunk: then nothing was sent. ``require_content``: hold the first chunks back until
    one carries content, and fail (:class:`EmptyAnswerError`, nothing sent) if the stream
    ends first, so the caller can ask another model."""
    chunks: AsyncIterator[bytes] = upstream.iter_chunks(idle_timeout_s)
    first = await anext(chunks, b"")
    if require_content:
        first = await _held_until_content(first, chunks)
    await out.start(upstream.status, {**STREAM_HEADERS, **headers})
    try:
        if first:
            on_chunk(first)
            await out.write(first)
        async for chunk in chunks:
            on_chunk(chunk)
            await out.write(chunk)
    except UpstreamError as exc:
        # Bytes are out, so the status can no longer change: end with an error event.
        upstream.close()
        message = ErrorText.PROXY_FAILED_PREFIX + str(exc)
        await out.write(error_chunk(message))
        await out.finish()
        return message
    await out.finish()
    return None
