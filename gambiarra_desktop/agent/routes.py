"""Seed 004's three endpoints. Each validates, calls :class:`AgentService`, shapes the reply;
``/chat`` also turns the run's events into the SSE stream, with a comment heartbeat while
nothing else is said (a relay may wait minutes for a person)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiohttp import web

from gambiarra_desktop.agent import events
from gambiarra_desktop.agent.errors import INVALID_JSON, InvalidAgentRequestError
from gambiarra_desktop.agent.events import AgentEvent
from gambiarra_desktop.agent.keys import SERVICE
from gambiarra_desktop.agent.requests import chat_plan, relay_answer, relay_session_id
from gambiarra_desktop.hub.api import body_checks
from gambiarra_desktop.hub.api.responses import json_response
from gambiarra_desktop.hub.api.sse import HEARTBEAT
from gambiarra_desktop.hub.proxy.stream_relay import STREAM_HEADERS

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
BODY_TIMEOUT_S = 30.0
MAX_QUEUED_EVENTS = 256
"""Events waiting for a slow client: past this the run waits (it never buffers without end)."""


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            raw = await request.read()
    except TimeoutError as exc:
        raise InvalidAgentRequestError(f"Request body took too long (limit {BODY_TIMEOUT_S:g}"
                                       " s)") from exc
    if body_checks.json_depth_exceeds(raw):
        raise InvalidAgentRequestError(body_checks.TOO_DEEP)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidAgentRequestError(INVALID_JSON) from exc
    if not isinstance(body, dict):
        raise InvalidAgentRequestError(INVALID_JSON)
    return body


@routes.get("/models")
async def models(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return json_response({"models": await service.client.models(),
                          "defaultModel": service.config.default_model})


@routes.post("/chat")
async def chat(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    plan = chat_plan(await _json_body(request), service.config.default_model,
                     service.config.default_max_iterations)
    session = service.open_session(request.remote or "")
    queue: asyncio.Queue[AgentEvent | None] = asyncio.Queue(MAX_QUEUED_EVENTS)

    reading = True

    async def emit(event: AgentEvent) -> None:
        """Once the client is gone, events are dropped: the run's cleanup (``harness_end``
        in a ``finally``) must not wait forever on a full queue nobody empties."""
        if reading:
            await queue.put(event)

    async def run() -> None:
        try:
            await service.run(session, plan, emit)
        except Exception:
            log.exception("agent session %s failed", session.id)
            await queue.put(events.error("the agent stopped on an internal error"))
        finally:  # No await here: a cancelled run must end even with the queue full.
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    response = web.StreamResponse(headers=STREAM_HEADERS)
    task = asyncio.create_task(run(), name=f"agent {session.id}")
    event: AgentEvent | bytes | None
    try:
        await response.prepare(request)
        while True:
            try:
                async with asyncio.timeout(service.config.heartbeat_s):
                    event = await queue.get()
            except TimeoutError:
                if task.done() and queue.empty():
                    break  # Its end marker found the queue full: nothing more will come.
                event = HEARTBEAT
            if event is None:
                break
            async with asyncio.timeout(service.config.write_timeout_s):
                await response.write(event if isinstance(event, bytes)
                                     else events.sse_frame(event))
    except TimeoutError:
        log.info("agent session %s: the client stopped reading; ending it", session.id)
        if request.transport is not None:
            request.transport.abort()  # Nothing more can be written to it anyway.
        return response
    finally:  # The client went away (or the run ended): nothing of the run may live on.
        reading = False
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        service.close_session(session.id)
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


@routes.post("/chat/relay/{relay_id}")
async def answer_relay(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    body = await _json_body(request)
    session_id = relay_session_id(body)
    answer = relay_answer(body)
    service.answer_relay(session_id, request.match_info["relay_id"], answer)
    return json_response({"success": True})
