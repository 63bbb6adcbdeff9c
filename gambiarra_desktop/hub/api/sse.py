"""``GET /rooms/:code/events``: the room's core events as Server-Sent Events.

One bus subscriber serves every listener: each event is encoded once, and the same bytes
object is queued for each listener it concerns, so a large event costs its size once, not
once per listener (an 8 MB event to 300 listeners used to take 2.5 GB). Each listener's
queue is bounded in events and in bytes; a listener over either bound has stopped reading
and is ended, and its connection is cut when it is stuck behind a full socket. Listeners
are capped per hub and per client address, and on shutdown every stream ends at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import deque
from collections.abc import Callable

from aiohttp import web

from gambiarra_desktop.events import HUB_WIDE_EVENTS, Event, EventBus, EventType
from gambiarra_desktop.hub.api.address_quota import AddressQuota
from gambiarra_desktop.hub.api.responses import ApiError
from gambiarra_desktop.hub.proxy.stream_relay import STREAM_HEADERS

HEARTBEAT = b": heartbeat\n\n"
RETRY_AFTER_S = 5


def format_event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class _Listener:
    """One open stream: its queue of encoded events and how many bytes it holds."""

    __slots__ = ("address", "chunks", "ended", "finishing", "queued_bytes", "room_code",
                 "transport", "wake", "writing")

    def __init__(self, address: str, transport: asyncio.BaseTransport | None,
                 room_code: str) -> None:
        self.address = address
        self.room_code = room_code
        self.transport = transport
        self.chunks: deque[bytes] = deque()
        self.queued_bytes = 0
        self.ended = False
        self.finishing = False
        """Its room was deleted: send what is queued (the ``room:deleted`` event), then end."""
        self.writing = False
        self.wake = asyncio.Event()

    def end(self) -> None:
        """Stop the stream: what is queued is dropped. A pump stuck writing to a client that
        reads nothing would never see the end, so its connection is cut instead."""
        self.ended = True
        self.chunks.clear()
        self.queued_bytes = 0
        self.wake.set()
        if self.writing and isinstance(self.transport, asyncio.Transport):
            self.transport.abort()


class RoomEventStreams:
    def __init__(
        self,
        bus: EventBus,
        heartbeat_s: float,
        queue_size: int,
        buffer_bytes: int = 1024 * 1024,
        max_listeners: int = 2000,
        max_listeners_per_address: int = 64,
    ) -> None:
        self._heartbeat_s = heartbeat_s
        self._queue_size = queue_size
        self._buffer_bytes = buffer_bytes
        self._quota = AddressQuota(max_listeners, max_listeners_per_address)
        self._by_room: dict[str, set[_Listener]] = {}
        self._bus = bus
        self._unsubscribe: Callable[[], None] | None = None
        """Subscribed only while someone listens: the chat path skips building events
        when the bus has no subscribers."""

    @property
    def listener_count(self) -> int:
        return self._quota.count

    def close_all(self) -> None:
        for listeners in self._by_room.values():
            for listener in listeners:
                listener.end()

    def _deliver(self, event: Event) -> None:
        if event.type in HUB_WIDE_EVENTS:
            targets = [x for listeners in self._by_room.values() for x in listeners]
        else:
            targets = list(self._by_room.get(event.room_code, ()))
        if not targets:
            return
        chunk = format_event(event.type.value, event.data)  # Once, for all of them.
        for listener in targets:
            if listener.ended:
                continue
            if (len(listener.chunks) >= self._queue_size
                    or listener.queued_bytes + len(chunk) > self._buffer_bytes):
                listener.end()  # It fell behind.
                continue
            listener.chunks.append(chunk)
            listener.queued_bytes += len(chunk)
            if event.type is EventType.ROOM_DELETED and event.room_code == listener.room_code:
                listener.finishing = True
            listener.wake.set()

    def _admit(self, request: web.Request, room_code: str) -> _Listener:
        """Check the caps and register the listener, with no ``await`` in between."""
        address = request.remote or ""
        refusal = self._quota.admit(address)
        if refusal == "total":
            raise ApiError(503, f"This hub is serving its limit of {self._quota.max_total}"
                                " event listeners; try again later",
                           {"Retry-After": str(RETRY_AFTER_S)})
        if refusal == "address":
            raise ApiError(429, f"Too many event streams from your address (limit"
                                f" {self._quota.max_per_address})",
                           {"Retry-After": str(RETRY_AFTER_S)})
        listener = _Listener(address, request.transport, room_code)
        self._by_room.setdefault(room_code, set()).add(listener)
        if self._unsubscribe is None:
            self._unsubscribe = self._bus.subscribe(self._deliver)
        return listener

    def _remove(self, room_code: str, listener: _Listener) -> None:
        room = self._by_room.get(room_code)
        if room is None or listener not in room:
            return
        room.discard(listener)
        if not room:
            del self._by_room[room_code]
        self._quota.release(listener.address)
        if not self._quota.count and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def handle(self, request: web.Request, room_code: str) -> web.StreamResponse:
        if request.method == "HEAD":
            # Headers only: a stream written after them would corrupt the connection.
            return web.Response(headers=STREAM_HEADERS)
        # Registered before the response starts, so no event in between is missed.
        listener = self._admit(request, room_code)
        try:
            response = web.StreamResponse(headers=STREAM_HEADERS)
            await response.prepare(request)
            await response.write(format_event("connected", {"clientId": str(uuid.uuid4())}))
            await self._pump(listener, response)
            with contextlib.suppress(ConnectionResetError):
                await response.write_eof()
            return response
        finally:
            listener.end()
            self._remove(room_code, listener)

    async def _pump(self, listener: _Listener, response: web.StreamResponse) -> None:
        while not listener.ended:
            if not listener.chunks:
                if listener.finishing:
                    return
                listener.wake.clear()
                try:
                    async with asyncio.timeout(self._heartbeat_s):
                        await listener.wake.wait()
                except TimeoutError:
                    await self._write(listener, response, HEARTBEAT)
                continue
            chunk = listener.chunks.popleft()
            listener.queued_bytes -= len(chunk)
            await self._write(listener, response, chunk)

    @staticmethod
    async def _write(listener: _Listener, response: web.StreamResponse, chunk: bytes) -> None:
        listener.writing = True
        try:
            await response.write(chunk)
        finally:
            listener.writing = False
