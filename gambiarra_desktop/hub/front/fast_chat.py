"""Answering one chat the front end read: the route's own steps, written to the socket.

The steps are :func:`gambiarra_desktop.hub.api.room_chat.chat`, the very function aiohttp's
route runs; only where the answer goes differs (bytes onto the transport instead of
aiohttp's response objects), and refusals come from the same error mapping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gambiarra_desktop.accounting.caller import ChatCall
from gambiarra_desktop.hub.api import room_chat
from gambiarra_desktop.hub.api.responses import error_reply, parse_json_object
from gambiarra_desktop.hub.front import wire
from gambiarra_desktop.hub.proxy.forward import NowChat

if TYPE_CHECKING:
    from gambiarra_desktop.hub.front.connection import ChatRequest, FrontConnection

log = logging.getLogger(__name__)


class _StreamOut:
    """A streamed answer onto the connection: chunked on HTTP/1.1, else until the close."""

    __slots__ = ("_call", "_chunked", "_connection", "_request", "started", "status")

    def __init__(self, connection: FrontConnection, request: ChatRequest, call: ChatCall) -> None:
        self._connection = connection
        self._request = request
        self._call = call
        self.started = False
        self.status = 0
        self._chunked = request.version >= (1, 1)

    async def start(self, status: int, headers: Mapping[str, str]) -> None:
        self.start_now(status, headers)

    async def write(self, chunk: bytes) -> None:
        if chunk:
            self._connection.write(wire.chunk_frame(chunk) if self._chunked else chunk)
            await self._connection.drain()

    async def finish(self) -> None:
        self.finish_now()

    # PushOut: the same, from callbacks.
    def start_now(self, status: int, headers: Mapping[str, str]) -> None:
        request = self._request
        if not self._chunked:
            request.keep_alive = False
        self._connection.write(wire.stream_head(status, headers, self._call.rate_headers,
                                                request.keep_alive, request.version))
        self._connection.streaming()
        self.started = True
        self.status = status

    def write_now(self, chunk: bytes) -> bool:
        if chunk:
            self._connection.write(wire.chunk_frame(chunk) if self._chunked else chunk)
        return not self._connection.write_paused

    def finish_now(self) -> None:
        if self._chunked:
            self._connection.write(wire.LAST_CHUNK)

    def when_drained(self, callback: Callable[[], None] | None) -> None:
        self._connection.on_drained = callback


class _Answer:
    """One chat's answer on its way to the connection, by either path: served with no task
    (:func:`answer_now`) or in a task (:func:`answer`), which a no-task start may also hand
    the rest of its work to."""

    __slots__ = ("call", "connection", "out", "request", "status")

    def __init__(self, connection: FrontConnection, request: ChatRequest) -> None:
        self.connection = connection
        self.request = request
        self.call = ChatCall(request.headers, connection.remote)
        self.out = _StreamOut(connection, request, self.call)
        self.status = 0
        """The status of a whole answer written by :meth:`write_whole`."""

    # NowDone
    def reply(self, response: web.Response | None) -> None:
        self.deliver(response)
        self.connection.answered()

    def write_whole(self, status: int, headers: Mapping[str, str], content_type: str,
                    data: bytes) -> None:
        request = self.request
        self.status = status
        self.connection.write(wire.whole_answer(status, headers, content_type, data,
                                                self.call.rate_headers, request.keep_alive,
                                                request.version))

    def resume(self, rest: Coroutine[Any, Any, web.Response | None]) -> None:
        self.connection.answer_in_task(self.finish(rest))

    async def finish(self, work: Awaitable[web.Response | None]) -> None:
        """Await the answer and deliver it, or the error it ended in."""
        try:
            reply = await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.out.started:  # Bytes are out: no status can follow. aiohttp also cuts.
                log.warning("chat stream to %s failed after it started: %r",
                            self.connection.remote, exc)
                self.connection.abort()
                return
            reply = error_reply(exc, "POST", self.request.path, self.connection.remote)
        self.deliver(reply)

    def deliver(self, reply: web.Response | None) -> None:
        connection, request = self.connection, self.request
        if reply is not None:
            connection.write(wire.whole_response(reply, self.call.rate_headers,
                                                 request.keep_alive, request.version))
        self._logged(reply.status if reply is not None else self.status or self.out.status)

    def _logged(self, status: int) -> None:
        """The answer is out: its access log line, and the connection's next step."""
        connection, request = self.connection, self.request
        access_log = connection.access_log
        if access_log is not None:  # One line per request, as aiohttp's access log writes.
            access_log.info('%s "POST %s HTTP/%d.%d" %d', connection.remote, request.path,
                            *request.version, status)
        connection.finish_request(request)


def _raw_body(request: ChatRequest) -> bytes:
    raw = request.body[0] if len(request.body) == 1 else b"".join(request.body)
    request.body[:] = [raw]
    return raw


def answer_now(connection: FrontConnection, request: ChatRequest) -> NowChat | None:
    """Begin answering with no task (see ``room_chat.chat_now``); ``None``: nothing was
    begun, so :func:`answer` serves it."""
    answer = _Answer(connection, request)
    return room_chat.chat_now(connection.app, answer.call, request.code, _raw_body(request),
                              answer.out, answer, answer.out)


async def answer(connection: FrontConnection, request: ChatRequest) -> None:
    """Serve ``request`` in a task and write its answer."""
    raw = _raw_body(request)
    request.body.clear()
    job = _Answer(connection, request)
    parsed: dict[str, Any] | None = None

    async def read_body() -> dict[str, Any]:
        nonlocal parsed  # Parsed when first asked for: a room that refuses never parses it.
        if parsed is None:
            parsed = parse_json_object(raw)
        return parsed

    await job.finish(room_chat.chat(connection.app, job.call, request.code, read_body,
                                    job.out, raw))
