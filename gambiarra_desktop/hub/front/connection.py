"""One client connection of the hub: its chats served here, everything else by aiohttp.

A connection is judged by its first request line. One that starts with a room chat
(``POST /rooms/CODE/v1/chat/completions``) is parsed here (``httptools``) and its chats are
served by :mod:`.fast_chat`, one at a time and in order, so pipelined answers never
interleave. Any other connection is given to aiohttp's protocol object as it is, its bytes
untouched (``transport.set_protocol``). A chat connection that later sends a request this
front end does not serve itself (another route, a chunked body, ``Expect``, an upgrade)
goes to aiohttp from that request on: the request is written again from what was parsed
(:mod:`.translate`), after every answer before it has gone out.

A connection is counted against the hub's caps when it is made (one over a cap is given to
aiohttp's protocol, which refuses it), and its request heads are timed (slowloris), as
aiohttp's protocol does for its own; that protocol object is made only for a connection
handed to it (it costs kilobytes and a task per connection). Limits are aiohttp's own:
request line and each header 8190 bytes, 128 headers, the hub's body limit, budget and body
deadline.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import httptools
from aiohttp import web
from aiohttp.http_parser import SINGLETON_HEADERS

from gambiarra_desktop.hub.api import body_checks
from gambiarra_desktop.hub.api.body_budget import BODY_BUDGET
from gambiarra_desktop.hub.api.connections import peer_address
from gambiarra_desktop.hub.api.responses import (
    STATUS_MESSAGES,
    body_too_slow_message,
    raw_error_response,
)
from gambiarra_desktop.hub.deadline import Deadline
from gambiarra_desktop.hub.front import translate
from gambiarra_desktop.hub.front.fast_chat import answer, answer_now
from gambiarra_desktop.hub.front.headers import ParsedHeaders

if TYPE_CHECKING:
    from gambiarra_desktop.hub.api.connections import GuardedRequestHandler, GuardedServer
    from gambiarra_desktop.hub.proxy.forward import NowChat

log = logging.getLogger(__name__)

START = b"POST /rooms/"
CHAT_PATH = re.compile(rb"/rooms/([A-Za-z0-9_-]{1,64})/v1/chat/completions")
MAX_LINE = 8190
MAX_FIELD = 8190
MAX_HEADERS = 128
MAX_HEAD_BYTES = MAX_HEADERS * (MAX_FIELD + 4) + MAX_LINE
"""httptools keeps a header in memory until it ends and sets no limit of its own: a head
still unfinished past this many bytes is refused."""
MAX_WAITING = 8
"""Pipelined requests read ahead of the one being answered; reading pauses beyond."""
MAX_HELD_BYTES = 256 * 1024
BAD_HTTP = b"\x00\r\n\r\n"
"""No HTTP parser accepts this as a request line or a chunk size: written after the part of
a segment that parsed, it makes aiohttp refuse the connection right where ours did."""
SINGLE_HEADERS = frozenset(name.encode() for name in SINGLETON_HEADERS)
"""Sent twice, these make a request aiohttp refuses (400): such a request goes to it."""
NOT_SERVED_HERE = frozenset({b"transfer-encoding", b"expect", b"upgrade"})


class _Mode(enum.Enum):
    FIRST_LINE = enum.auto()
    """Waiting for the first request line to decide."""
    CHATS = enum.auto()
    """Parsed here; chats served here."""
    HANDING_OVER = enum.auto()
    """Parsed here; from one request on, written again for aiohttp."""


class _Timing(enum.Enum):
    """What the connection's deadline times now."""

    HEAD = enum.auto()
    BODY = enum.auto()
    IDLE = enum.auto()
    """Between requests, as aiohttp's keep-alive timeout."""


class _RefusedError(Exception):
    """Raised in a parser callback: the request breaks a limit."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass(slots=True)
class ChatRequest:
    """A chat request read whole, waiting for its turn or being answered."""

    code: str
    path: str
    headers: ParsedHeaders
    keep_alive: bool
    version: tuple[int, int]
    reserved: int
    """Bytes of the hub's body budget held while the body is read."""
    body: list[bytes] = field(default_factory=list)


class FrontConnection(asyncio.Protocol):
    __slots__ = (
        "_aiohttp_live", "_broken", "_budget", "_chunked", "_close_after", "_current",
        "_deadline", "_drained", "_feeding", "_final", "_first_bytes", "_handler",
        "_head_bytes", "_headers", "_held_bytes", "_held_for_aiohttp", "_in_head",
        "_in_message", "_loop", "_mode", "_now", "_now_over", "_parser", "_read_paused",
        "_retime", "_segment", "_server", "_task", "_timing", "_upgraded",
        "_url", "_waiting", "_write_paused", "admitted", "app", "on_drained", "remote",
        "transport",
    )

    def __init__(self, app: web.Application, server: GuardedServer) -> None:
        self.app = app
        self._server = server
        self._handler: GuardedRequestHandler | None = None
        """aiohttp's protocol, made when the connection (or its rest) is handed to it."""
        self.admitted = False
        self._close_after = False
        self._budget = app[BODY_BUDGET]
        self._loop = asyncio.get_running_loop()
        spans = (self._span(timing) for timing in _Timing)
        self._deadline = Deadline(self._loop, self._deadline_passed,
                                  min((span for span in spans if span > 0), default=math.inf))
        """The one timer of the head, body and idle deadlines (one at a time, see
        :attr:`_timing`)."""
        self._timing: _Timing | None = None
        self._feeding = False
        self._retime = False
        """A deadline changed while a segment was parsed: set once the segment is done (a
        request read whole from one segment then costs no deadline of its own)."""
        self.transport: asyncio.Transport | None = None
        self.remote = ""
        self._mode = _Mode.FIRST_LINE
        self._first_bytes = b""
        self._parser: httptools.HttpRequestParser | None = None
        # The request being parsed.
        self._in_head = False
        self._head_bytes = 0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._current: ChatRequest | None = None
        self._chunked = False
        """The request being handed over came chunked: re-chunk its body."""
        # Answering.
        self._waiting: list[ChatRequest] = []
        """A list, not a deque: at most a few wait, and a deque's first block is over 600
        bytes of every open connection."""
        self._task: asyncio.Task[None] | None = None
        self._now: NowChat | None = None
        """The answer on its way with no task (``fast_chat.answer_now``)."""
        self._now_over: asyncio.Future[None] | None = None
        """Set when it is over (the hub's stop waits for it)."""
        self._held_for_aiohttp: list[bytes] = []
        self._held_bytes = 0
        """Held for aiohttp until the answers before them are out; reading pauses past
        :data:`MAX_HELD_BYTES`, so a client cannot pile up memory behind a slow answer."""
        self._in_message = False
        self._broken = False
        """Bad HTTP after a hand-over: aiohttp was told, and nothing more is read."""
        self._segment: list[bytes] | None = None
        """Bytes for aiohttp from the segment being parsed (see :meth:`_feed`)."""
        self._aiohttp_live = False
        """Every chat answer is out: bytes for aiohttp go to it at once."""
        self._upgraded = False
        """aiohttp takes the raw connection once it is live (a WebSocket)."""
        self._final: bytes | None = None
        """An error to send once the answers before it are out; then the connection ends."""
        self._read_paused = False
        self._write_paused = False
        self._drained: asyncio.Future[None] | None = None
        self.on_drained: Callable[[], None] | None = None
        """Called once the client caught up after writing paused (a pushed stream)."""

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.remote = peer_address(transport)
        refusal = self._server.gate.admit_connection(self.remote)
        if refusal is not None:  # Over a cap: aiohttp's protocol answers and closes.
            handler = self._handler = self._server.make_handler()
            self._mode = _Mode.HANDING_OVER
            self._aiohttp_live = True
            self.transport.set_protocol(handler)
            handler.refuse(self.transport, *refusal)
            return
        self.admitted = True
        self._server.fronts.add(self)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        mode = self._mode
        if mode is _Mode.FIRST_LINE:
            data = self._first_bytes + data
            chats = _starts_with_chat(data)
            if chats is None:
                self._first_bytes = data
                return
            self._first_bytes = b""
            if not chats:
                self._hand_over(data)
                return
            self._mode = _Mode.CHATS
            self._parser = httptools.HttpRequestParser(self)
        elif self._upgraded:
            self._to_aiohttp(data)
            return
        if self._final is not None or self._broken:
            return  # Refused: the rest is not read.
        if self._in_head:
            self._head_bytes += len(data)
        self._feed(data)

    def eof_received(self) -> bool | None:
        if self._handler is not None and self._aiohttp_live:
            self._handler.eof_received()
        # As aiohttp does: a client that ends its side has left (the transport closes, and
        # an answer in progress is cancelled, which stops its model).
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self._drop_current()
        for request in self._waiting:
            self._budget.release(request.reserved)
        self._waiting.clear()
        if self._now is not None:
            self._now.cancel()  # The client left: the model stops, as a cancelled task's does.
            self._now_is_over()
        if self._task is not None:
            self._task.cancel()  # The client left: the upstream call is closed, as in aiohttp.
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionResetError("the client left"))
            self._drained.exception()
        self._server.fronts.discard(self)
        if self._handler is not None:
            self._handler.connection_lost(exc)  # It releases the connection's slot.
        elif self.admitted:
            self.admitted = False
            self._server.gate.release(self.remote)

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        callback, self.on_drained = self.on_drained, None
        if callback is not None:
            callback()
        if self._handler is not None:
            self._handler.resume_writing()

    # -- writing (for fast_chat) -----------------------------------------------------

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def drain(self) -> None:
        """Wait while the client reads slower than the model writes."""
        if self._write_paused and self.transport is not None and not self.transport.is_closing():
            self._drained = self._loop.create_future()
            try:
                await self._drained
            finally:
                self._drained = None

    @property
    def write_paused(self) -> bool:
        """The client reads slower than the hub writes to it."""
        return self._write_paused

    @property
    def access_log(self) -> logging.Logger | None:
        return self._server.access_log

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- httptools callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True
        self._in_head = True
        self._head_bytes = 0
        self._url = b""
        self._headers = []
        if self._timing is _Timing.IDLE:
            self._time(None)
        self._start_head_timer()

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_LINE:
            raise _RefusedError(400)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > MAX_FIELD or len(self._headers) >= MAX_HEADERS:
            raise _RefusedError(400)
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        parser = self._parser
        if parser is None:
            return
        method = parser.get_method()
        version = parser.get_http_version()
        if self._mode is _Mode.CHATS:
            self._current = self._chat_request(method, version, parser.should_keep_alive())
            if self._current is not None:
                self._time(_Timing.BODY)
                return
            self._mode = _Mode.HANDING_OVER
        self._chunked = any(name.lower() == b"transfer-encoding" and b"chunked" in value.lower()
                            for name, value in self._headers)
        self._to_aiohttp(translate.request_head(method, self._url, version, self._headers))
        if not self._aiohttp_live:
            self._next()  # Live at once when no answer is due (Expect waits for aiohttp).

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current.body.append(body)
        else:
            self._to_aiohttp(translate.body_piece(body, self._chunked))

    def on_message_complete(self) -> None:
        self._in_message = False
        request = self._current
        if request is None:
            if self._chunked:
                self._to_aiohttp(translate.body_end(True))
            return
        self._current = None
        if self._timing is _Timing.BODY:
            self._time(None)
        self._waiting.append(request)  # Its body stays counted in the budget until answered.
        if len(self._waiting) > MAX_WAITING and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()
        self._next()

    # -- deciding ------------------------------------------------------------------

    def _chat_request(self, method: bytes, version: str,
                      keep_alive: bool) -> ChatRequest | None:
        """The request, when this front end serves it; ``None`` hands it to aiohttp, which
        answers everything unusual (and refuses what it must) exactly as it always has."""
        path, _, _query = self._url.partition(b"?")
        match = CHAT_PATH.fullmatch(path)
        if method != b"POST" or match is None or version not in ("1.1", "1.0"):
            return None
        seen: dict[bytes, bytes] = {}
        for name, value in self._headers:
            lowered = name.lower()
            if lowered in seen:
                if lowered in SINGLE_HEADERS:
                    return None  # aiohttp refuses it (400).
            else:
                seen[lowered] = value
            if lowered in NOT_SERVED_HERE or b"\x00" in value:
                return None  # aiohttp judges these (it refuses them).
        if version == "1.1" and b"host" not in seen:
            return None  # aiohttp refuses it (400), as HTTP/1.1 says.
        encoding = seen.get(b"content-encoding")
        declared = seen.get(b"content-length", b"")
        if (encoding is not None and body_checks.encoding_refusal(
                {"Content-Encoding": encoding.decode("latin-1")}) is not None):
            return None
        content_type = seen.get(b"content-type", b"")
        if content_type != b"application/json" and body_checks.media_type_refusal(
                "POST", {"Content-Type": content_type.decode("latin-1")}):
            return None
        if not declared.isdigit() or len(declared) > 18:
            return None
        size = int(declared)
        if size > self._budget.max_body_bytes or not self._budget.try_reserve(size):
            return None
        return ChatRequest(match.group(1).decode("ascii"), path.decode("latin-1"),
                           ParsedHeaders(self._headers, seen), keep_alive,
                           (1, 1) if version == "1.1" else (1, 0), size)

    def _feed(self, data: bytes) -> None:
        """Parse a segment. What it produces for aiohttp is collected and passed on only
        once the whole segment parsed, so a fault in a segment reaches aiohttp in the same
        piece as what came before it in that segment (it refuses the piece, as it would
        have refused the segment)."""
        parser = self._parser
        if parser is None:
            return
        self._segment = []
        self._feeding = True
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._pass_segment()
            self._upgraded = True
            self._to_aiohttp(data[int(exc.args[0]):])
            return
        except httptools.HttpParserError as exc:
            if self._mode is _Mode.HANDING_OVER:
                # What parsed, then bytes no parser takes, in one piece: aiohttp refuses
                # there (400) and closes. Never the raw segment: it may begin inside a
                # body already read, which aiohttp would take for a request.
                segment, self._segment = self._segment or [], None
                self._parser = None
                self._broken = True
                self._to_aiohttp(b"".join(segment) + BAD_HTTP)
                return
            cause = exc.__context__
            self._refuse(cause.status if isinstance(cause, _RefusedError) else 400)
            return
        finally:
            self._feeding = False
            if self._retime:
                self._retime = False
                self._set_deadline()
        self._pass_segment()
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(400)

    def _pass_segment(self) -> None:
        segment, self._segment = self._segment, None
        if segment:
            self._to_aiohttp(b"".join(segment))

    # -- answering -------------------------------------------------------------------

    def _next(self) -> None:
        """Start the next answer, or, with none due, let aiohttp have the connection, send
        a pending refusal, or wait for the next request."""
        if (self._task is not None or self._now is not None or self.transport is None
                or self.transport.is_closing()):
            return
        if self._waiting:
            if self._read_paused and len(self._waiting) <= MAX_WAITING // 2:
                self._read_paused = False
                self.transport.resume_reading()
            request = self._waiting.pop(0)
            self._budget.release(request.reserved)
            request.reserved = 0
            try:
                now = answer_now(self, request)
            except Exception:  # A fault of ours: the task path answers it, or says 500.
                log.exception("a chat could not start with no task")
                now = None
            if self._task is not None:
                return  # Begun here and handed to a task at once (a tunnel's answer).
            self._now = now
            if now is None:
                self.answer_in_task(answer(self, request))
            return
        if self._final is not None:
            self.transport.write(self._final)
            self.transport.close()
        elif self._mode is _Mode.HANDING_OVER and not self._aiohttp_live:
            self._aiohttp_live = True
            handler = self._adopted()
            held = b"".join(self._held_for_aiohttp)
            self._held_for_aiohttp.clear()
            self._held_bytes = 0
            if self._read_paused:
                self._read_paused = False
                self.transport.resume_reading()
            if self._upgraded:
                self.transport.set_protocol(handler)
            if held:
                handler.data_received(held)
        elif self._close_after:
            self.transport.close()
        elif (self._mode is _Mode.CHATS and not self._in_message
              and self._timing is not _Timing.IDLE):
            self._time(_Timing.IDLE)

    def answer_in_task(self, work: Coroutine[Any, Any, None]) -> None:
        """Answer the current request in a task (all of it, or the rest of a no-task start)."""
        self._now_is_over()
        self._task = self._loop.create_task(work)
        self._task.add_done_callback(self._answered_in_task)

    def answered(self) -> None:
        """The no-task answer is out: on to the next request."""
        self._now_is_over()
        self._next()

    def _now_is_over(self) -> None:
        self._now = None
        if self._now_over is not None and not self._now_over.done():
            self._now_over.set_result(None)

    def _answered_in_task(self, task: asyncio.Task[None]) -> None:
        self._task = None
        if task.cancelled() or task.exception() is not None:
            self.abort()  # Logged by fast_chat; nothing sane can follow on this connection.
            return
        self._next()

    def streaming(self) -> None:
        """A stream's head went out: it may hold the connection for minutes, so the
        deadline's timer (nothing is timed while an answer is out) is dropped rather than
        left armed; the next deadline arms a new one."""
        if self._timing is None:
            self._deadline.cancel()

    def finish_request(self, request: ChatRequest) -> None:
        """An answer is out; a request that did not keep the connection alive ends it."""
        if not request.keep_alive and self.transport is not None:
            self.transport.close()  # What waits behind it is released when it is lost.

    # -- the hub stopping ------------------------------------------------------------

    def close_when_idle(self) -> None:
        """No new request is read; the connection ends once the answers due are out."""
        self._close_after = True
        idle = self._task is None and self._now is None and not self._waiting
        if idle and self.transport is not None:
            self.transport.close()

    async def shutdown(self, timeout_s: float | None) -> None:
        """Give the answer in progress ``timeout_s`` to finish, then end the connection."""
        self._close_after = True
        deadline = self._loop.time() + (timeout_s if timeout_s is not None else 3600.0)
        if self._now is not None:
            self._now_over = self._loop.create_future()
            await asyncio.wait({self._now_over}, timeout=timeout_s)
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=max(0.0, deadline - self._loop.time()))
        # Out of time: whatever is left is cut (a client that does not read must not keep
        # a model streaming into a stopped hub), as aiohttp cancels its own handlers.
        if self._now is not None:
            self._now.cancel()
            self._now_is_over()
        if self._task is not None:
            self._task.cancel()
        if self.transport is not None:
            self.transport.abort()

    # -- handing over ----------------------------------------------------------------

    def _adopted(self) -> GuardedRequestHandler:
        """aiohttp's protocol for this connection, made now and given its counted slot."""
        handler = self._handler
        if handler is None:
            handler = self._handler = self._server.make_handler()
            # It times heads from here on. The timer goes too, not only the deadline: once
            # the transport is aiohttp's, this object never hears of the connection's end,
            # and an armed timer would keep it and its transport alive until it fired.
            self._cancel_timers()
            self._server.fronts.discard(self)  # It is aiohttp's to close at shutdown now.
            if self.transport is not None:
                handler.adopt(self.transport)
        return handler

    def _hand_over(self, data: bytes) -> None:
        """The whole connection, from its first byte, is aiohttp's."""
        self._mode = _Mode.HANDING_OVER
        self._aiohttp_live = True
        handler = self._adopted()
        if self.transport is not None:
            self.transport.set_protocol(handler)
        if data:
            handler.data_received(data)

    def _to_aiohttp(self, data: bytes) -> None:
        if not data:
            return
        if self._segment is not None:
            self._segment.append(data)  # Passed on once the segment parsed whole.
            return
        if self._aiohttp_live:
            handler = self._adopted()
            if self._upgraded and self.transport is not None:
                self.transport.set_protocol(handler)
            handler.data_received(data)
        else:
            self._held_for_aiohttp.append(data)
            self._held_bytes += len(data)
            if self._held_bytes > MAX_HELD_BYTES and self.transport is not None:
                self._read_paused = True
                self.transport.pause_reading()  # Resumed once aiohttp has it.

    # -- refusing --------------------------------------------------------------------

    def _refuse(self, status: int) -> None:
        """Malformed or oversized HTTP: the seed-format error after the answers due, then
        the connection ends (as aiohttp's protocol does)."""
        self._cancel_timers()
        self._drop_current()
        self._final = raw_error_response(status, STATUS_MESSAGES.get(status, "Bad request"))
        self._next()

    def _body_too_slow(self) -> None:
        self._drop_current()
        self._final = raw_error_response(408, body_too_slow_message(self._budget.timeout_s))
        self._next()

    def _drop_current(self) -> None:
        """Forget the request being read, giving its body's budget back."""
        if self._current is not None:
            self._budget.release(self._current.reserved)
            self._current = None

    def _cancel_timers(self) -> None:
        self._timing = None
        self._deadline.cancel()

    # -- deadlines: the request head (as aiohttp's protocol keeps it), body, idle time ----

    def _span(self, timing: _Timing | None) -> float:
        """How long ``timing`` may last (0: it is not timed)."""
        if timing is _Timing.HEAD:
            return self._server.header_timeout_s
        if timing is _Timing.BODY:
            return self._budget.timeout_s
        if timing is _Timing.IDLE:
            return self._server.keepalive_timeout_s
        return 0.0

    def _time(self, timing: _Timing | None) -> None:
        """Time ``timing`` from now, for its span (``None``: nothing is timed)."""
        self._timing = timing
        if self._feeding:
            self._retime = True
            return
        self._set_deadline()

    def _set_deadline(self) -> None:
        seconds = self._span(self._timing)
        if seconds > 0:
            self._deadline.start(seconds)
        else:
            self._deadline.stop()

    def _deadline_passed(self) -> None:
        timing, self._timing = self._timing, None
        if timing is _Timing.HEAD:
            self._head_too_slow()
        elif timing is _Timing.BODY:
            self._body_too_slow()
        elif timing is _Timing.IDLE and self.transport is not None:
            self.transport.close()

    def _start_head_timer(self) -> None:
        if self._timing is not _Timing.HEAD and self._handler is None:
            self._time(_Timing.HEAD)

    def _stop_head_timer(self) -> None:
        if self._timing is _Timing.HEAD:
            self._time(None)

    def _head_too_slow(self) -> None:
        log.debug("closed a connection from %s: no complete request head within %g s",
                  self.remote, self._server.header_timeout_s)
        if self.transport is not None:
            self.transport.close()


def _starts_with_chat(data: bytes) -> bool | None:
    """Whether a connection's first bytes are a room chat's request line; ``None`` while
    too few have arrived to tell."""
    if len(data) < len(START):
        return None if START.startswith(data) else False
    if not data.startswith(START):
        return False
    end = data.find(b"\n", 0, MAX_LINE + 2)
    if end < 0:
        return None if len(data) <= MAX_LINE else False
    if data[end - 1:end] != b"\r":
        return False  # A bare LF: aiohttp refuses it.
    parts = data[:end - 1].split(b" ")
    return len(parts) == 3 and CHAT_PATH.fullmatch(parts[1].partition(b"?")[0]) is not None
