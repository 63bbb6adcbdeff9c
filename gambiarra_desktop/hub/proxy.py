"""Forwarding chat completions to a participant's model server, chunk by chunk.

Why it is built this way:
- Every upstream chunk is written to the client as it arrives (``iter_any``), with
  ``X-Accel-Buffering: no``, so tokens appear as the model makes them.
- The client response is only started once the upstream answered. Until then a failure
  can still become a clean 502, and a stale pooled connection can be retried once: the
  llama.cpp server closes connections after a streamed reply while advertising keep-alive.
- A client that disconnects cancels the handler (the server runs with handler
  cancellation), which closes the upstream connection and stops the generation.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web

from gambiarra_desktop.events import EventType
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.metrics import CompletionMeter, error_chunk
from gambiarra_desktop.hub.responses import ApiError, dump_json
from gambiarra_desktop.hub.rooms import Room, RoomRegistry
from gambiarra_desktop.hub.upstream import chat_completions_url
from gambiarra_desktop.protocol import ErrorText, ParticipantInfo

log = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"
STREAM_HEADERS = {
    "Content-Type": EVENT_STREAM,
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
PASSED_UPSTREAM_HEADERS = ("Content-Type",)


class UpstreamUnavailableError(Exception):
    """The upstream could not be reached or did not answer in time."""


def _is_stale_connection(exc: BaseException) -> bool:
    """A reused keep-alive connection the server had already closed (safe to retry once).

    ``ClientConnectorError`` (refused, unreachable) is a ``ClientOSError`` too, but retrying
    it only doubles the wait, so it is excluded.
    """
    if isinstance(exc, aiohttp.ClientConnectorError):
        return False
    return isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ChatProxy:
    def __init__(self, config: HubConfig, registry: RoomRegistry) -> None:
        self._config = config
        self._registry = registry
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=self._config.upstream_connect_timeout_s,
                sock_read=self._config.upstream_idle_timeout_s,
            ),
            auto_decompress=False,  # Pass bytes through untouched, encoding and all.
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(
        self,
        request: web.Request,
        room: Room,
        participant: ParticipantInfo,
        body: dict[str, Any],
    ) -> web.StreamResponse:
        requested_model = body.get("model")
        payload = dump_json({**body, "model": participant["model"]})
        url = chat_completions_url(participant["endpoint"])
        self._registry.publish(
            EventType.LLM_REQUEST, room,
            {"participantId": participant["id"], "model": requested_model},
        )
        meter = CompletionMeter()
        try:
            upstream = await self._open(url, payload)
        except UpstreamUnavailableError as exc:
            self._report_error(room, participant, str(exc))
            raise ApiError(502, ErrorText.PROXY_FAILED_PREFIX + str(exc)) from exc
        try:
            content_type = upstream.headers.get("Content-Type", "")
            wants_stream = body.get("stream") is True and upstream.status < 300
            if wants_stream or content_type.startswith(EVENT_STREAM):
                return await self._stream(request, room, participant, upstream, meter)
            return await self._whole(room, participant, upstream, meter)
        finally:
            upstream.release()

    async def _open(self, url: str, payload: bytes) -> aiohttp.ClientResponse:
        if self._session is None:
            raise RuntimeError("ChatProxy.start() was not awaited")
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        timeout_s = self._config.upstream_first_byte_timeout_s
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(timeout_s):
                    return await self._session.post(url, data=payload, headers=headers)
            except TimeoutError as exc:
                raise UpstreamUnavailableError(
                    f"no answer from {url} within {timeout_s:g} s"
                ) from exc
            except aiohttp.ClientError as exc:
                if attempt == 1 and _is_stale_connection(exc):
                    log.debug("retrying %s after a stale connection: %s", url, exc)
                    continue
                raise UpstreamUnavailableError(_describe(exc)) from exc
        raise RuntimeError("unreachable")  # pragma: no cover

    async def _whole(
        self,
        room: Room,
        participant: ParticipantInfo,
        upstream: aiohttp.ClientResponse,
        meter: CompletionMeter,
    ) -> web.Response:
        try:
            data = await upstream.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._report_error(room, participant, _describe(exc))
            raise ApiError(502, ErrorText.PROXY_FAILED_PREFIX + _describe(exc)) from exc
        meter.on_body(data)
        response = web.Response(body=data, status=upstream.status)
        for name in PASSED_UPSTREAM_HEADERS:
            if name in upstream.headers:
                response.headers[name] = upstream.headers[name]
        self._report_outcome(room, participant, upstream.status, meter, data[:500])
        return response

    async def _stream(
        self,
        request: web.Request,
        room: Room,
        participant: ParticipantInfo,
        upstream: aiohttp.ClientResponse,
        meter: CompletionMeter,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, headers=STREAM_HEADERS)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                meter.on_chunk(chunk)
                await response.write(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Bytes are out, so the status can no longer change: end with an error event.
            upstream.close()
            message = ErrorText.PROXY_FAILED_PREFIX + _describe(exc)
            self._report_error(room, participant, message)
            await response.write(error_chunk(message))
            await response.write_eof()
            return response
        except BaseException:
            upstream.close()  # Client gone or hub stopping: stop the generation upstream.
            raise
        await response.write_eof()
        self._report_outcome(room, participant, upstream.status, meter, b"")
        return response

    def _report_outcome(
        self,
        room: Room,
        participant: ParticipantInfo,
        status: int,
        meter: CompletionMeter,
        error_body: bytes,
    ) -> None:
        if status >= 400:
            text = error_body.decode(errors="replace")
            self._report_error(room, participant, f"upstream answered {status}: {text}")
            return
        self._registry.publish(
            EventType.LLM_COMPLETE, room,
            {"participantId": participant["id"], "model": participant["model"],
             "metrics": dict(meter.result())},
        )

    def _report_error(self, room: Room, participant: ParticipantInfo, message: str) -> None:
        log.warning("proxy to %s failed: %s", participant["nickname"], message)
        self._registry.publish(
            EventType.LLM_ERROR, room, {"participantId": participant["id"], "error": message}
        )
