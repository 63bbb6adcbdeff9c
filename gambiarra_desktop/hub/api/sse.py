"""``GET /rooms/:code/events``: the room's core events as Server-Sent Events.

One bus subscriber serves every listener: each event is encoded once, and the same bytes
object is queued for each listener it concerns, so a large event costs its size once, not
once per listener (an 8 MB event to 300 listeners used to take 2.5 GB). An event is encoded
only when a listener it concerns exists (a dict lookup by room), and the bus subscription
asks only for the types today's listeners can receive, so the proxy builds no ``llm:*``
event when nobody listens to a room. Each listener's queue is bounded in events and in
bytes; a listener over either bound has stopped reading and is ended, and its connection
is cut when it is stuck behind a full socket. Pumps are woken :data:`FLUSH_DELAY_S` after
the first event queued since the last flush, and each writes everything queued in one
write (up to :data:`WRITE_BATCH_BYTES`); a stream's heartbeat is one timer re-armed from
its last write, not a timeout per wait. So per event a listener costs an append, and the
wake-up and the write are shared by all the events of a few milliseconds. Listeners are
capped per hub and per client address, and on shutdown every stream ends at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Callable

import orjson
from aiohttp import web

from gambiarra_desktop.events import (
    HUB_LEVEL_EVENTS,
    HUB_WIDE_EVENTS,
    Event,
    EventBus,
    EventType,
)
from gambiarra_desktop.hub.api.address_quota import AddressQuota
from gambiarra_desktop.hub.api.responses import ApiError
from gambiarra_desktop.hub.proxy.stream_relay import STREAM_HEADERS

HEARTBEAT = b": heartbeat\n\n"
RETRY_AFTER_S = 5
FLUSH_DELAY_S = 0.005
"""Events are written this long after the first of them is queued, all together: a pump
woken and a write per event (two per proxied request) cost a listened-to room's requests
~30 µs each; batched, well under 10. Nobody watching a room sees 5 ms."""
WRITE_BATCH_BYTES = 64 * 1024
"""At most this much (or one event, if larger) goes to the socket per write: a listener
stuck behind a full socket holds one batch in its transport, as it held one event before
the pump joined its queue, and the rest stays in the bounded queue."""
HUB_SCOPE = ""
"""The scope of a stream that is no room's (the admin's ``/v1/events``): it receives the
hub's own events (room code "") and the hub-wide ones."""
_SCOPE_TYPES = HUB_WIDE_EVENTS | HUB_LEVEL_EVENTS
"""What the bus must deliver while only :data:`HUB_SCOPE` streams listen."""
_OPTIONS = orjson.OPT_NON_STR_KEYS
_TIMER_SLACK_S = 0.001
"""The loop may run a timer this much early (its clock resolution): still on time."""


def format_event(name: str, data: object) -> bytes:
    """One SSE message. orjson: about a tenth of ``json.dumps``'s time, compact, and UTF-8
    as SSE is (non-ASCII text is sent as is, not as ``\\u`` escapes). Each event name's
    first line is encoded once: two events go out per proxied request."""
    head = _HEADS.get(name)
    if head is None:
        head = f"event: {name}\ndata: ".encode()
        if len(_HEADS) < MAX_CACHED_HEADS:
            _HEADS[name] = head
    return head + orjson.dumps(data, option=_OPTIONS) + b"\n\n"


MAX_CACHED_HEADS = 256
_HEADS: dict[str, bytes] = {}


class _Listener:
    """One open stream: its queue of encoded events and how many bytes it holds."""

    __slots__ = ("address", "beat", "chunks", "ended", "finishing", "last_write",
                 "queued_bytes", "room_code", "timer", "transport", "wake", "writing")

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
        self.beat = False
        """The heartbeat timer found the stream silent for a heartbeat period."""
        self.last_write = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def end(self) -> None:
        """Stop the stream: what is queued is dropped. A pump stuck writing to a client that
        reads nothing would never see the end, so its connection is cut instead."""
        self.ended = True
        self.chunks.clear()
        self.queued_bytes = 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
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
        flush_delay_s: float = FLUSH_DELAY_S,
    ) -> None:
        self._heartbeat_s = heartbeat_s
        self._flush_delay_s = flush_delay_s
        self._pending: set[_Listener] = set()
        """Listeners with events queued since the last flush; woken together by it."""
        self._flush_timer: asyncio.TimerHandle | None = None
        self._queue_size = queue_size
        self._buffer_bytes = buffer_bytes
        self._quota = AddressQuota(max_listeners, max_listeners_per_address)
        self._by_room: dict[str, set[_Listener]] = {}
        self._bus = bus
        self._unsubscribe: Callable[[], None] | None = None
        self._subscribed_for: frozenset[EventType] = frozenset()
        """The types the bus delivers here: none while nobody listens, the hub's own and
        hub-wide events while only :data:`HUB_SCOPE` streams do, all while a room's do. The
        proxy asks the bus before building an event, so this is what switches it on."""

    @property
    def listener_count(self) -> int:
        return self._quota.count

    def close_all(self) -> None:
        for listeners in self._by_room.values():
            for listener in listeners:
                listener.end()

    def _deliver(self, event: Event) -> None:
        targets: list[_Listener] | set[_Listener] | None
        if event.type in HUB_WIDE_EVENTS:
            targets = [x for listeners in self._by_room.values() for x in listeners]
        else:
            targets = self._by_room.get(event.room_code)
        if not targets:
            return  # Nobody listens to that room: the event is never encoded.
        chunk = format_event(event.type, event.data)  # Once, for all of them.
        size = len(chunk)
        deleted = event.type is EventType.ROOM_DELETED
        for listener in targets:  # Nothing here adds or removes listeners.
            if listener.ended:
                continue
            if (len(listener.chunks) >= self._queue_size
                    or listener.queued_bytes + size > self._buffer_bytes):
                listener.end()  # It fell behind.
                continue
            listener.chunks.append(chunk)
            listener.queued_bytes += size
            if deleted and event.room_code == listener.room_code:
                listener.finishing = True
            self._pending.add(listener)
        if self._flush_timer is None and self._pending:
            if self._flush_delay_s > 0:
                self._flush_timer = asyncio.get_running_loop().call_later(
                    self._flush_delay_s, self._flush)
            else:
                self._flush()

    def _flush(self) -> None:
        """Wake the pumps of every listener with events queued since the last flush."""
        self._flush_timer = None
        pending, self._pending = self._pending, set()
        for listener in pending:
            listener.wake.set()

    def _follow_bus(self) -> None:
        """Subscribe for what the current listeners can receive, no more (see
        :attr:`_subscribed_for`); called whenever a listener comes or goes."""
        if not self._by_room:
            wanted: frozenset[EventType] = frozenset()
        elif len(self._by_room) == 1 and HUB_SCOPE in self._by_room:
            wanted = _SCOPE_TYPES
        else:
            wanted = frozenset(EventType)
        if wanted == self._subscribed_for:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if wanted:
            self._unsubscribe = self._bus.subscribe(self._deliver, wanted)
        self._subscribed_for = wanted

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
        self._follow_bus()
        return listener

    def _remove(self, room_code: str, listener: _Listener) -> None:
        room = self._by_room.get(room_code)
        if room is None or listener not in room:
            return
        room.discard(listener)
        if not room:
            del self._by_room[room_code]
        self._quota.release(listener.address)
        self._follow_bus()

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
        loop = asyncio.get_running_loop()
        listener.last_write = loop.time()
        self._arm_heartbeat(listener, loop)
        chunks = listener.chunks
        while not listener.ended:
            if chunks:
                listener.beat = False  # An event is as good a sign of life.
                await self._write(listener, response, self._take_batch(listener))
                listener.last_write = loop.time()
            elif listener.finishing:
                return
            elif listener.beat:
                listener.beat = False
                await self._write(listener, response, HEARTBEAT)
                listener.last_write = loop.time()
            else:
                listener.wake.clear()
                await listener.wake.wait()

    @staticmethod
    def _take_batch(listener: _Listener) -> bytes:
        """Everything queued, as one bytes object, up to :data:`WRITE_BATCH_BYTES`."""
        chunks = listener.chunks
        first = chunks.popleft()
        if not chunks or len(first) >= WRITE_BATCH_BYTES:
            listener.queued_bytes -= len(first)
            return first
        batch = [first]
        size = len(first)
        while chunks and size + len(chunks[0]) <= WRITE_BATCH_BYTES:
            chunk = chunks.popleft()
            batch.append(chunk)
            size += len(chunk)
        listener.queued_bytes -= size
        return b"".join(batch)

    def _arm_heartbeat(self, listener: _Listener, loop: asyncio.AbstractEventLoop) -> None:
        """One timer per stream, due a heartbeat period after the last write: when it
        fires and nothing was written meanwhile, the pump sends a heartbeat; otherwise it
        is set again for the new due time. Events cost no timer."""
        listener.timer = loop.call_at(listener.last_write + self._heartbeat_s,
                                      self._on_heartbeat_due, listener, loop)

    def _on_heartbeat_due(self, listener: _Listener, loop: asyncio.AbstractEventLoop) -> None:
        if listener.ended:
            return
        now = loop.time()
        due = listener.last_write + self._heartbeat_s
        if now >= due - _TIMER_SLACK_S:
            if not listener.writing:  # Stuck behind a full socket: no heartbeat either.
                listener.beat = True
                listener.wake.set()
            due = now + self._heartbeat_s
        listener.timer = loop.call_at(due, self._on_heartbeat_due, listener, loop)

    @staticmethod
    async def _write(listener: _Listener, response: web.StreamResponse, chunk: bytes) -> None:
        listener.writing = True
        try:
            await response.write(chunk)
        finally:
            listener.writing = False
