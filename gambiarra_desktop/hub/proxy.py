"""Forwarding chat completions to a participant's model server, chunk by chunk.

Why it is built this way:
- Every upstream chunk is written to the client as it arrives, with
  ``X-Accel-Buffering: no``, so tokens appear as the model makes them.
- The client response is only started once the upstream answered. Until then a failure
  can still become a clean 502, and a stale pooled connection can be retried once (see
  :mod:`upstream_client`): the llama.cpp server closes connections after a streamed reply
  while advertising keep-alive.
- A client that disconnects cancels the handler (the server runs with handler
  cancellation), which closes the upstream connection and stops the generation.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gambiarra_desktop.endpoints import chat_completions_url
from gambiarra_desktop.events import EventType
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.metrics import CompletionMeter, error_chunk
from gambiarra_desktop.hub.responses import ApiError, dump_json
from gambiarra_desktop.hub.rooms import Room, RoomRegistry
from gambiarra_desktop.hub.tunnel import TunnelHub
from gambiarra_desktop.hub.upstream_client import (
    ModelResponse,
    Target,
    UpstreamError,
    UpstreamPool,
)
from gambiarra_desktop.protocol import ErrorText, ParticipantInfo

log = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"
MAX_CACHED_TARGETS = 1024
STREAM_HEADERS = {
    "Content-Type": EVENT_STREAM,
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class ChatProxy:
    def __init__(self, config: HubConfig, registry: RoomRegistry, tunnels: TunnelHub) -> None:
        self._config = config
        self._registry = registry
        self._tunnels = tunnels
        self._pool = UpstreamPool(config.upstream_connect_timeout_s)
        self._targets: dict[str, Target] = {}

    def _target(self, endpoint: str) -> Target:
        """Parsed upstream URLs, cached: parsing costs more than the rest of routing."""
        target = self._targets.get(endpoint)
        if target is None:
            if len(self._targets) >= MAX_CACHED_TARGETS:
                self._targets.clear()
            target = self._targets[endpoint] = Target.parse(chat_completions_url(endpoint))
        return target

    @property
    def pool(self) -> UpstreamPool:
        return self._pool

    async def close(self) -> None:
        """Close idle upstream connections (the hub is stopping)."""
        self._pool.close()

    async def forward(
        self,
        request: web.Request,
        room: Room,
        participant: ParticipantInfo,
        body: dict[str, Any],
    ) -> web.StreamResponse:
        upstream_body = {**body, "model": participant["model"]}
        if self._registry.has_listeners:
            self._registry.publish(
                EventType.LLM_REQUEST, room,
                {"participantId": participant["id"], "model": body.get("model")},
            )
        meter = CompletionMeter()
        try:
            upstream = await self._open(room, participant, upstream_body)
        except UpstreamError as exc:
            self._report_error(room, participant, str(exc))
            raise ApiError(502, ErrorText.PROXY_FAILED_PREFIX + str(exc)) from exc
        try:
            content_type = upstream.header("Content-Type") or ""
            wants_stream = body.get("stream") is True and upstream.status < 300
            if wants_stream or content_type.startswith(EVENT_STREAM):
                return await self._stream(request, room, participant, upstream, meter)
            return await self._whole(room, participant, upstream, content_type, meter)
        except BaseException:
            upstream.close()  # Client gone or hub stopping: stop the generation upstream.
            raise
        finally:
            upstream.release()

    async def _open(
        self, room: Room, participant: ParticipantInfo, body: dict[str, Any]
    ) -> ModelResponse:
        timeout_s = self._config.upstream_first_byte_timeout_s
        if participant["transport"] == "tunnel":
            session = self._tunnels.get(room.code, participant["id"])
            if session is None:
                raise UpstreamError(ErrorText.TUNNEL_NOT_CONNECTED)
            return await session.open(body, timeout_s)
        target = self._target(participant["endpoint"])
        return await self._pool.post(target, dump_json(body), timeout_s)

    async def _whole(
        self,
        room: Room,
        participant: ParticipantInfo,
        upstream: ModelResponse,
        content_type: str,
        meter: CompletionMeter,
    ) -> web.Response:
        try:
            data = await upstream.read(self._config.upstream_idle_timeout_s)
        except UpstreamError as exc:
            self._report_error(room, participant, str(exc))
            raise ApiError(502, ErrorText.PROXY_FAILED_PREFIX + str(exc)) from exc
        meter.on_body(data)
        response = web.Response(body=data, status=upstream.status)
        if content_type:
            response.headers["Content-Type"] = content_type
        self._report_outcome(room, participant, upstream.status, meter, data[:500])
        return response

    async def _stream(
        self,
        request: web.Request,
        room: Room,
        participant: ParticipantInfo,
        upstream: ModelResponse,
        meter: CompletionMeter,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, headers=STREAM_HEADERS)
        await response.prepare(request)
        try:
            async for chunk in upstream.iter_chunks(self._config.upstream_idle_timeout_s):
                meter.on_chunk(chunk)
                await response.write(chunk)
        except UpstreamError as exc:
            # Bytes are out, so the status can no longer change: end with an error event.
            upstream.close()
            message = ErrorText.PROXY_FAILED_PREFIX + str(exc)
            self._report_error(room, participant, message)
            await response.write(error_chunk(message))
            await response.write_eof()
            return response
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
        if not self._registry.has_listeners:
            return  # Nobody watches the room: skip building the event.
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
