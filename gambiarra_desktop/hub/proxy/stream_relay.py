"""Relaying a model's event stream to the client, chunk by chunk.

Shared by the room proxy and the gateway's direct providers, so both keep the same
promises: nothing is sent before the model's first chunk (until then a failure is
invisible to the client and the caller may try elsewhere), every chunk is written as it
arrives, and a stream that breaks after bytes went out ends with an OpenAI-style error
chunk rather than a silently cut connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

from aiohttp import web

from gambiarra_desktop.hub.proxy.metrics import error_chunk
from gambiarra_desktop.hub.proxy.upstream_client import ModelResponse, UpstreamError
from gambiarra_desktop.protocol import ErrorText

EVENT_STREAM = "text/event-stream"
STREAM_HEADERS = {
    "Content-Type": EVENT_STREAM,
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


async def relay_stream(
    request: web.Request, upstream: ModelResponse, headers: Mapping[str, str],
    idle_timeout_s: float, on_chunk: Callable[[bytes], None],
) -> tuple[web.StreamResponse, str | None]:
    """Stream ``upstream`` to the client. Returns the response and, when the stream broke
    after bytes went out, what went wrong. Raises :class:`UpstreamError` when it failed
    before its first chunk: then nothing was sent."""
    chunks: AsyncIterator[bytes] = upstream.iter_chunks(idle_timeout_s)
    first = await anext(chunks, b"")
    response = web.StreamResponse(status=upstream.status, headers={**STREAM_HEADERS, **headers})
    await response.prepare(request)
    try:
        if first:
            on_chunk(first)
            await response.write(first)
        async for chunk in chunks:
            on_chunk(chunk)
            await response.write(chunk)
    except UpstreamError as exc:
        # Bytes are out, so the status can no longer change: end with an error event.
        upstream.close()
        message = ErrorText.PROXY_FAILED_PREFIX + str(exc)
        await response.write(error_chunk(message))
        await response.write_eof()
        return response, message
    await response.write_eof()
    return response, None
