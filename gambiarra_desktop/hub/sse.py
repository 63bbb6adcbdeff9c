"""``GET /rooms/:code/events``: the room's core events as Server-Sent Events.

Each listener gets a bounded queue fed by the event bus. A listener that stops reading is
dropped when its queue fills, so one stuck browser tab cannot grow the hub's memory. On
shutdown every stream is ended at once instead of holding the hub open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

from aiohttp import web

from gambiarra_desktop.events import Event, EventBus
from gambiarra_desktop.hub.proxy import STREAM_HEADERS

HEARTBEAT = b": heartbeat\n\n"


def format_event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class _EndOfStream:
    """Queued in place of events when the listener must stop: it fell behind, or the hub
    is shutting down."""


_END = _EndOfStream()
Listener = asyncio.Queue[Event | _EndOfStream]


class RoomEventStreams:
    def __init__(self, bus: EventBus, heartbeat_s: float, queue_size: int) -> None:
        self._bus = bus
        self._heartbeat_s = heartbeat_s
        self._queue_size = queue_size
        self._listeners: set[Listener] = set()

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

    def close_all(self) -> None:
        for queue in self._listeners:
            _end(queue)

    async def handle(self, request: web.Request, room_code: str) -> web.StreamResponse:
        queue: Listener = asyncio.Queue(maxsize=self._queue_size)

        def deliver(event: Event) -> None:
            if not event.concerns(room_code):
                return
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                _end(queue)

        # Subscribe before the response starts, so no event in between is missed.
        unsubscribe = self._bus.subscribe(deliver)
        self._listeners.add(queue)
        try:
            response = web.StreamResponse(headers=STREAM_HEADERS)
            await response.prepare(request)
            await response.write(format_event("connected", {"clientId": str(uuid.uuid4())}))
            await self._pump(queue, response)
            with contextlib.suppress(ConnectionResetError):
                await response.write_eof()
            return response
        finally:
            unsubscribe()
            self._listeners.discard(queue)

    async def _pump(self, queue: Listener, response: web.StreamResponse) -> None:
        while True:
            try:
                async with asyncio.timeout(self._heartbeat_s):
                    item = await queue.get()
            except TimeoutError:
                await response.write(HEARTBEAT)
                continue
            if isinstance(item, _EndOfStream):
                return
            await response.write(format_event(item.type.value, item.data))


def _end(queue: Listener) -> None:
    """Replace whatever is queued with the end marker."""
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(_END)
