"""Answering one chat the front end read: the route's own steps, written to the socket.

The steps are :func:`gambiarra_desktop.hub.api.room_chat.chat`, the very function aiohttp's
route runs; only where the answer goes differs (bytes onto the transport instead of
aiohttp's response objects), and refusals come from the same error mapping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gambiarra_desktop.accounting.caller import ChatCall
from gambiarra_desktop.hub.api import room_chat
from gambiarra_desktop.hub.api.responses import error_reply, parse_json_object
from gambiarra_desktop.hub.front import wire

if TYPE_CHECKING:
    from gambiarra_desktop.hub.front.connection import ChatRequest, FrontConnection

log = logging.getLogger(__name__)


class _StreamOut:
    """A streamed answer onto the connection: chunked on HTTP/1.1, else until the close."""

    def __init__(self, connection: FrontConnection, request: ChatRequest, call: ChatCall) -> None:
        self._connection = connection
        self._request = request
        self._call = call
        self.started = False
        self.status = 0
        self._chunked = request.version >= (1, 1)

    async def start(self, status: int, headers: Mapping[str, str]) -> None:
        request = self._request
        if not self._chunked:
            request.keep_alive = False
        self._connection.write(wire.stream_head(status, headers, self._call.rate_headers,
                                                request.keep_alive, request.version))
        self.started = True
        self.status = status

    async def write(self, chunk: bytes) -> None:
        if chunk:
            self._connection.write(wire.chunk_frame(chunk) if self._chunked else chunk)
            await self._connection.drain()

    async def finish(self) -> None:
        if self._chunked:
            self._connection.write(wire.LAST_CHUNK)


async def answer(connection: FrontConnection, request: ChatRequest) -> None:
    """Serve ``request`` and write its answer; then the connection reads on (or ends)."""
    raw = request.body[0] if len(request.body) == 1 else b"".join(request.body)
    request.body.clear()
    call = ChatCall(request.headers, connection.remote)
    out = _StreamOut(connection, request, call)
    parsed: dict[str, Any] | None = None

    async def read_body() -> dict[str, Any]:
        nonlocal parsed  # Parsed when first asked for: a room that refuses never parses it.
        if parsed is None:
            parsed = parse_json_object(raw)
        return parsed

    try:
        reply = await room_chat.chat(connection.app, call, request.code, read_body, out, raw)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if out.started:  # Bytes are out: no status can follow. aiohttp also cuts it.
            log.warning("chat stream to %s failed after it started: %r", connection.remote, exc)
            connection.abort()
            return
        reply = error_reply(exc, "POST", request.path, connection.remote)
    if reply is not None:
        connection.write(wire.whole_response(reply, call.rate_headers, request.keep_alive,
                                             request.version))
    access_log = connection.access_log
    if access_log is not None:  # One line per request, as aiohttp's access log writes.
        access_log.info('%s "POST %s HTTP/%d.%d" %d', connection.remote, request.path,
                        *request.version, reply.status if reply is not None else out.status)
    connection.finish_request(request)
