"""The hub's side of participant tunnels.

A participant whose model server only listens on its own localhost (Ollama's default), or
sits behind a firewall, opens one WebSocket to the hub. The hub then sends that
participant's chat requests down the socket, and the answers come back as they are
produced. See :mod:`gambiarra_desktop.tunnel_wire` for the frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from gambiarra_desktop import tunnel_wire
from gambiarra_desktop.hub.proxy.chunk_inbox import (
    DEFAULT_MAX_BODY_BYTES,
    ChunkInbox,
    UpstreamError,
)
from gambiarra_desktop.protocol import ParticipantInfo

log = logging.getLogger(__name__)

TUNNEL_HEARTBEAT_S = 20.0
"""WebSocket pings: a participant whose machine vanished is noticed within this time."""
TUNNEL_INBOX_MAX_BYTES = 8 * 1024 * 1024
"""Bytes of one answer waiting for its client. A WebSocket has no per-request backpressure
(one slow client must not stall the participant's other answers), so past this the request
fails and is cancelled on the agent instead of growing the hub's memory."""
CLOSE_REPLACED = 4000
CLOSE_LEFT = 4001


class TunnelResponse:
    """One answer arriving through a tunnel; the same interface as an upstream response."""

    def __init__(self, session: TunnelSession, request_id: int) -> None:
        self._session = session
        self.request_id = request_id
        self.status = 0
        self._content_type = ""
        self.head: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.inbox = ChunkInbox("tunnel")
        self._released = False

    # fed by the session
    def on_head(self, status: int, content_type: str) -> None:
        self.status = status
        self._content_type = content_type
        if not self.head.done():
            self.head.set_result(None)

    def on_error(self, error: UpstreamError, discard: bool = False) -> None:
        self.inbox.fail(error, discard)
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()

    # used by the proxy
    def header(self, name: str) -> str | None:
        return self._content_type if name.lower() == "content-type" else None

    def iter_chunks(self, idle_timeout_s: float | None) -> AsyncIterator[bytes]:
        return self.inbox.chunks(idle_timeout_s)

    async def read(
        self, idle_timeout_s: float | None, max_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> bytes:
        return await self.inbox.read_all(idle_timeout_s, max_bytes)

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self.inbox.stop_timer()  # A reader that stopped early must not leave it armed.
        self._session.finish(self.request_id, cancel=not self.inbox.complete)

    def close(self) -> None:
        """Abort: the participant's agent cancels its request to the model server."""
        self.release()


class TunnelSession:
    def __init__(self, ws: web.WebSocketResponse, label: str) -> None:
        self.ws = ws
        self.label = label
        self._pending: dict[int, TunnelResponse] = {}
        self._ids = itertools.count(1)
        self._background: set[asyncio.Task[None]] = set()
        self.ended = False
        """Set when the hub itself ends this tunnel (replaced, participant left, hub
        stopping): its handler must then not report the participant lost."""

    async def open(self, body: dict[str, Any], first_byte_timeout_s: float) -> TunnelResponse:
        """Send a chat request down the tunnel and wait for the answer's status."""
        if self.ws.closed:
            raise UpstreamError("the participant's tunnel closed")
        request_id = next(self._ids)
        response = TunnelResponse(self, request_id)
        self._pending[request_id] = response
        try:
            await self.ws.send_bytes(tunnel_wire.control(
                {"type": "request", "id": request_id, "path": "/v1/chat/completions",
                 "body": body}))
            async with asyncio.timeout(first_byte_timeout_s):
                await response.head
        except TimeoutError as exc:
            self.finish(request_id, cancel=True)
            raise UpstreamError(f"no answer within {first_byte_timeout_s:g} s") from exc
        except ConnectionError as exc:
            self.finish(request_id, cancel=False)
            raise UpstreamError("the participant's tunnel closed") from exc
        except BaseException:
            self.finish(request_id, cancel=True)
            raise
        return response

    def finish(self, request_id: int, cancel: bool) -> None:
        if self._pending.pop(request_id, None) is not None and cancel and not self.ws.closed:
            task = asyncio.get_running_loop().create_task(self._send_cancel(request_id))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _send_cancel(self, request_id: int) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_bytes(tunnel_wire.control({"type": "cancel", "id": request_id}))

    async def pump(self) -> None:
        """Read the participant's frames until the socket closes."""
        try:
            async for message in self.ws:
                if message.type != WSMsgType.BINARY:
                    continue
                try:
                    self._on_frame(message.data)
                except tunnel_wire.TunnelProtocolError as exc:
                    log.warning("tunnel %s broke the protocol: %s", self.label, exc)
                    await self.ws.close(code=1002, message=b"protocol error")
                    break
        finally:
            error = UpstreamError("the participant's tunnel closed")
            for response in list(self._pending.values()):
                response.on_error(error)
            self._pending.clear()

    def _on_frame(self, frame: bytes) -> None:
        message, request_id, chunk = tunnel_wire.parse(frame)
        if message is None:
            response = self._pending.get(request_id)
            if response is not None:
                response.inbox.put(chunk)
                if response.inbox.buffered > TUNNEL_INBOX_MAX_BYTES:
                    response.on_error(UpstreamError(
                        "the participant sends faster than the client reads (over "
                        f"{TUNNEL_INBOX_MAX_BYTES} bytes waiting)"), discard=True)
                    self.finish(request_id, cancel=True)
            return
        response = self._pending.get(message["id"])
        if response is None:
            return  # Answer to a request the hub already gave up on.
        kind = message.get("type")
        if kind == "head":
            response.on_head(int(message.get("status", 502)), str(message.get("contentType", "")))
        elif kind == "end":
            response.inbox.finish()
        elif kind == "error":
            response.on_error(UpstreamError(str(message.get("message", "tunnel error"))))
        else:
            raise tunnel_wire.TunnelProtocolError(f"unknown message type {kind!r}")


class TunnelHub:
    """The open tunnels of one hub, by room code and participant id."""

    def __init__(
        self, on_lost: Callable[[str, str], Awaitable[None]] | None = None
    ) -> None:
        """``on_lost(room_code, participant_id)`` runs when a tunnel drops by itself (not
        when it is replaced, the participant left, or the hub stops)."""
        self._sessions: dict[tuple[str, str], TunnelSession] = {}
        self._on_lost = on_lost
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, room_code: str, participant_id: str) -> TunnelSession | None:
        return self._sessions.get((room_code, participant_id))

    def reachable(self, room_code: str, participant: ParticipantInfo) -> bool:
        """Direct participants are assumed reachable; tunnel ones when their socket is up."""
        return participant["transport"] != "tunnel" or (
            (room_code, participant["id"]) in self._sessions
        )

    def drop(self, room_code: str, participant_id: str) -> None:
        """Close a participant's tunnel, for example when it leaves the room."""
        session = self._sessions.pop((room_code, participant_id), None)
        if session is not None:
            self._end(session, CLOSE_LEFT, b"participant left")

    def _end(self, session: TunnelSession, code: int, message: bytes) -> None:
        """Close a tunnel the hub no longer uses, without waiting for the peer."""
        session.ended = True

        async def close() -> None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.ws.close(code=code, message=message)

        task = asyncio.get_running_loop().create_task(close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def drop_room(self, room_code: str) -> None:
        """Close every tunnel of a room that was deleted."""
        for code, participant_id in [key for key in self._sessions if key[0] == room_code]:
            self.drop(code, participant_id)

    async def serve(
        self, request: web.Request, room_code: str, participant_id: str
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=TUNNEL_HEARTBEAT_S,
                                   max_msg_size=tunnel_wire.MAX_FRAME_BYTES)
        await ws.prepare(request)
        key = (room_code, participant_id)
        session = TunnelSession(ws, f"{room_code}/{participant_id}")
        # Register the new tunnel before closing the old one. Closing awaits, and the old
        # handler's ``finally`` runs meanwhile: had it still found itself registered, it
        # would have reported the participant lost (offline) although it was only replaced.
        previous = self._sessions.get(key)
        self._sessions[key] = session
        log.info("room %s: tunnel of %s connected", room_code, participant_id)
        if previous is not None:
            # In the background: a dead old peer may take the close timeout to answer, and
            # the new tunnel must be read meanwhile.
            self._end(previous, CLOSE_REPLACED, b"replaced by a new tunnel")
        try:
            await session.pump()
        finally:
            lost = not session.ended and self._sessions.get(key) is session
            if self._sessions.get(key) is session:
                del self._sessions[key]
            log.info("room %s: tunnel of %s closed", room_code, participant_id)
            if lost and self._on_lost is not None:
                await self._on_lost(room_code, participant_id)
        return ws

    async def close_all(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.ended = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.ws.close(code=1001, message=b"hub stopping")
