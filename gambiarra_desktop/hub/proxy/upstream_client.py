"""A lean HTTP/1.1 client for talking to model servers, with keep-alive pooling.

Why not ``aiohttp.ClientSession``: on the hub's hot path its per-request Python work (URL
objects, header multidicts, tracing hooks, cookie handling) cost about as much as
everything else the hub does, and the product promise is that the hub adds less latency
than the TypeScript hub. This client does only what the proxy needs: send one pre-built
POST, parse the answer with ``httptools`` (llhttp, in C), and hand over body chunks the
moment they arrive. It also knows exactly when a reused connection turned out stale, which
the llama.cpp server's keep-alive quirk makes necessary.

Every new connection is dialed to an address the hub's endpoint policy has checked: the host
is resolved here, every address it resolves to is checked, and the socket connects to that
very address (never to the name again), so a resolver that answers differently a moment
later (DNS rebinding) cannot steer it. Pooled connections were checked when made, so the
hot path adds no lookup.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools

from gambiarra_desktop.hub.deadline import Deadline
from gambiarra_desktop.hub.ip_addresses import IPAddress
from gambiarra_desktop.hub.proxy.chunk_inbox import (
    DEFAULT_MAX_BODY_BYTES,
    ChunkInbox,
    UpstreamError,
)
from gambiarra_desktop.hub.proxy.endpoint_policy import EndpointPolicy, resolve

__all__ = ["ModelResponse", "StaleConnectionError", "Target", "UpstreamError", "UpstreamPool",
           "UpstreamResponse"]

IDLE_CONNECTION_TTL_S = 30.0
MAX_IDLE_PER_HOST = 64
PAUSE_READING_ABOVE_BYTES = 1 << 20
"""Stop reading from the upstream while this much is waiting for a slow client."""
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
"""A response head (status line and headers) must end within these. llhttp sets no limit of
its own, and httptools keeps a header's name and value in memory until the header ends, so
without a cap a model server sending header lines forever grows the hub without bound."""


class _HeadTooLargeError(UpstreamError):
    """The response head passed :data:`MAX_HEAD_BYTES` or :data:`MAX_HEADERS`."""


class StaleConnectionError(UpstreamError):
    """A reused keep-alive connection was closed by the server before any answer."""


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed upstream URL, computed once per request."""

    scheme: str
    host: str
    port: int
    path: str
    host_header: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        default_port = port == (443 if scheme == "https" else 80)
        shown_host = f"[{host}]" if ":" in host else host
        host_header = shown_host if default_port else f"{shown_host}:{port}"
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        return cls(scheme, host, port, path, host_header)

    @property
    def pool_key(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


PoolKey = tuple[str, str, int, bool]
"""A target's (scheme, host, port) and whether loopback was allowed when it was dialed: a
connection checked for a participant on the hub's machine is never lent to another."""


class ModelResponse(Protocol):
    """An answer from a model server, whether dialed directly or reached through a tunnel."""

    status: int

    def header(self, name: str) -> str | None: ...
    def iter_chunks(self, idle_timeout_s: float | None) -> AsyncIterator[bytes]: ...
    async def read(
        self, idle_timeout_s: float | None, max_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> bytes: ...
    def release(self) -> None: ...
    def close(self) -> None: ...


class Pusher(Protocol):
    """Where a pushed body goes (:meth:`UpstreamResponse.push`)."""

    def chunk(self, data: bytes) -> None: ...
    def end(self, error: BaseException | None) -> None: ...


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; serves one request at a time. Slotted: every open
    stream holds one."""

    __slots__ = (
        "_first_byte", "_first_byte_s", "_framed", "_head_complete", "_head_room",
        "_header_count", "_loop", "_parser", "_paused", "closed", "content_length",
        "content_type", "headers", "headers_done", "idle_since", "inbox", "keep_alive",
        "on_head", "pusher", "received_any", "reused", "status", "transport",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self._first_byte = Deadline(self._loop, self._first_byte_late)
        """The wait for the response head: one re-armed timer for every exchange on this
        connection, not a timer handle per request."""
        self._first_byte_s = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done: asyncio.Future[None] = self._loop.create_future()
        self.keep_alive = False
        self.received_any = False
        self.inbox = ChunkInbox("upstream", on_taken=self._resume_reading)
        self._paused = False
        self._framed = False
        self._head_complete = False
        self._head_room = MAX_HEAD_BYTES
        self._header_count = 0
        self.content_type: bytes | None = None
        self.content_length: bytes | None = None
        """The two headers the proxy reads of every answer, kept as they are parsed."""
        self.pusher: Pusher | None = None
        """Takes the body's chunks as they are parsed, instead of the inbox (push mode)."""
        self.on_head: Callable[[], None] | None = None
        """Called once, with no task in between, when the response head has arrived (after
        the segment it came in was parsed, so a small body is complete by then) or the
        exchange failed first: the proxy's no-task path (:meth:`UpstreamPool.send_now`)."""

    def _notify(self) -> None:
        callback = self.on_head
        if callback is not None and (self._head_complete or self.inbox.error is not None):
            self.on_head = None
            callback()

    @property
    def message_complete(self) -> bool:
        return self.inbox.complete

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its interface.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        if self.inbox.error is not None:
            return  # Already failed; the transport is closing.
        try:
            if not self._head_complete:
                # Only the head's first MAX_HEAD_BYTES are parsed: it must end within them.
                room = self._head_room
                if len(data) > room:
                    self._parser.feed_data(data[:room])
                    if not self._head_complete:
                        raise _HeadTooLargeError(
                            f"upstream's response head is larger than {MAX_HEAD_BYTES} bytes")
                    data = data[room:]
                else:
                    self._head_room = room - len(data)
            self._parser.feed_data(data)
        except _HeadTooLargeError as exc:
            self._fail(exc)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamError("upstream tried to upgrade the connection"))
        except httptools.HttpParserError as exc:
            cause = exc.__context__  # What one of our callbacks raised, if one did.
            if isinstance(cause, _HeadTooLargeError):
                self._fail(cause)
            else:
                self._fail(UpstreamError(f"invalid HTTP from upstream: {exc}"))
        self._notify()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._first_byte.cancel()
        self._lost()
        self._notify()

    def _lost(self) -> None:
        if self.message_complete:
            return
        if self.headers_done.done() and not self._framed:
            self.on_message_complete()  # Body delimited by the connection closing.
            return
        if self.received_any:
            self._fail(UpstreamError("upstream closed the connection mid-response"))
        elif self.reused:
            self._fail(StaleConnectionError("reused connection was closed by the server"))
        else:
            self._fail(UpstreamError("upstream closed the connection without answering"))

    def pause_writing(self) -> None:  # Requests are small; nothing to throttle.
        pass

    def resume_writing(self) -> None:
        pass

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            raise _HeadTooLargeError(f"upstream sent more than {MAX_HEADERS} headers")
        self.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-type":
            if self.content_type is None:
                self.content_type = value
        elif lowered == b"content-length":
            self._framed = True
            if self.content_length is None:
                self.content_length = value
        elif lowered == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        self._head_complete = True
        self._first_byte.stop()
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        if not self.headers_done.done():
            self.headers_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.pusher is not None:
            self.pusher.chunk(body)
            return
        self.inbox.put(body)
        over = self.inbox.buffered > PAUSE_READING_ABOVE_BYTES
        if over and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        self.inbox.finish()
        if self.pusher is not None:
            self.pusher.end(None)

    def _resume_reading(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    # used by UpstreamResponse
    def fail_waiting(self, error: BaseException) -> None:
        """Give up on a response that has not started (the first-byte timeout)."""
        if not self.headers_done.done():
            self._fail(error)
            self._notify()

    def first_byte_timer_off(self) -> None:
        """Drop the first-byte timer (its deadline has passed with the head): a stream
        keeps the connection for minutes, with no timer of this kind armed meanwhile."""
        self._first_byte.cancel()

    def _first_byte_late(self) -> None:
        self.fail_waiting(UpstreamError(f"no answer within {self._first_byte_s:g} s"))

    def _fail(self, error: BaseException) -> None:
        self.inbox.fail(error)
        if self.pusher is not None:
            self.pusher.end(error)
        if not self.headers_done.done():
            self.headers_done.set_exception(error)
            self.headers_done.exception()  # Mark retrieved; the caller may be gone.
        if self.transport is not None:
            self.transport.close()

    def send(self, request: bytes, first_byte_timeout_s: float) -> None:
        """Send ``request``; its response head must begin within ``first_byte_timeout_s``
        (else the exchange fails with an :class:`UpstreamError`)."""
        if self.transport is None or self.closed:
            raise StaleConnectionError("connection closed before the request was sent")
        self._reset()
        self._first_byte_s = first_byte_timeout_s
        self._first_byte.start(first_byte_timeout_s)
        self.transport.write(request)

    def close(self) -> None:
        self.closed = True
        self._first_byte.cancel()
        if self.transport is not None:
            self.transport.close()


def _request_bytes(method: str, target: Target, body: bytes, extra_headers: str) -> bytes:
    try:
        head = (
            f"{method} {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{extra_headers}Accept: */*\r\nAccept-Encoding: identity\r\n"
            "Connection: keep-alive\r\n\r\n"
        ).encode("ascii")
    except UnicodeEncodeError as exc:  # An endpoint stored before it was normalized.
        raise UpstreamError("the endpoint URL is not plain ASCII") from exc
    return head + body


UpstreamConnection = _Connection
"""One connection to a model server (what :meth:`UpstreamPool.dial` gives)."""


class UpstreamResponse:
    __slots__ = ("_connection", "_key", "_pool", "_released", "status")

    def __init__(self, pool: UpstreamPool, key: PoolKey, connection: _Connection) -> None:
        self._pool = pool
        self._key = key
        self._connection = connection
        self.status = connection.status
        self._released = False

    @property
    def error(self) -> BaseException | None:
        """Why the exchange failed before its head arrived (:meth:`UpstreamPool.send_now`);
        ``None`` once the head is here."""
        connection = self._connection
        return None if connection.headers_done.done() and connection.status else (
            connection.inbox.error or UpstreamError("no answer"))

    def push(self, pusher: Pusher) -> None:
        """Hand every body chunk to ``pusher`` as it is parsed, with no task between the
        socket and it (what already arrived first), then its end or failure. For relaying
        a stream from callbacks; :meth:`pause`/:meth:`resume` hold the model back while
        the client is slow."""
        connection = self._connection
        connection.first_byte_timer_off()  # A stream holds the connection: drop its timer.
        inbox = connection.inbox
        waiting = inbox.take()
        connection.pusher = pusher
        if waiting:
            pusher.chunk(waiting)
        if connection.pusher is pusher and (inbox.complete or inbox.error is not None):
            connection.pusher = None
            pusher.end(None if inbox.complete else inbox.error)

    def unpush(self) -> None:
        self._connection.pusher = None

    def fail(self, error: BaseException) -> None:
        """Fail the answer's reading with ``error`` (a pushed stream's idle timeout): the
        reader that takes over sees it, and the connection is not reused."""
        self._connection.inbox.fail(error)
        self._connection.keep_alive = False

    def pause(self) -> None:
        transport = self._connection.transport
        if transport is not None and not self._connection.closed:
            transport.pause_reading()

    def resume(self) -> None:
        transport = self._connection.transport
        if transport is not None and not self._connection.closed:
            transport.resume_reading()

    def take_whole(self, max_bytes: int) -> bytes | None:
        """The whole body when it has all arrived, fits ``max_bytes`` and nothing failed;
        else ``None`` (read it with :meth:`read`, which says what is wrong)."""
        inbox = self._connection.inbox
        if not inbox.complete or inbox.error is not None or inbox.buffered > max_bytes:
            return None
        if self._declared_over(max_bytes):
            return None
        return inbox.take() or b""

    def _declared_over(self, max_bytes: int) -> str:
        """The ``Content-Length`` when it says the body passes ``max_bytes``, else ""."""
        length = self._connection.content_length
        declared = "" if length is None else length.decode("latin-1").strip()
        # llhttp has checked the digits; the length test keeps int() away from huge strings.
        if declared.isdecimal() and (len(declared) > 18 or int(declared) > max_bytes):
            return declared
        return ""

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` ("" when absent)."""
        value = self._connection.content_type
        return "" if value is None else value.decode("latin-1")

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for key, value in self._connection.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    def iter_chunks(self, idle_timeout_s: float | None) -> AsyncIterator[bytes]:
        return self._connection.inbox.chunks(idle_timeout_s)

    async def read(
        self, idle_timeout_s: float | None, max_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> bytes:
        """The whole body, refused (:class:`UpstreamError`) past ``max_bytes``: at once when
        the declared length says so, else as soon as the count passes it."""
        declared = self._declared_over(max_bytes)
        if declared:
            raise UpstreamError(
                f"upstream answer is larger than the limit of {max_bytes} bytes "
                f"(Content-Length {declared})")
        return await self._connection.inbox.read_all(idle_timeout_s, max_bytes)

    def release(self) -> None:
        """Return the connection to the pool when it is reusable, else close it."""
        if self._released:
            return
        self._released = True
        connection = self._connection
        if connection.message_complete and connection.keep_alive and not connection.closed:
            self._pool._give_back(self._key, connection)
        else:
            connection.close()

    def close(self) -> None:
        """Abort: the upstream sees the connection drop and stops generating."""
        self._released = True
        self._connection.close()


class UpstreamPool:
    """Keep-alive connections to model servers. With a ``policy`` (the hub's), each new
    connection goes only to addresses the policy allows; without one (benchmarks, tests of
    the HTTP client itself) to whatever the host resolves to."""

    def __init__(self, connect_timeout_s: float, policy: EndpointPolicy | None = None) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._policy = policy
        self._idle: dict[PoolKey, list[_Connection]] = {}
        self._ssl_context: ssl.SSLContext | None = None
        self.stale_retries = 0
        """Requests retried on a fresh connection after a pooled one turned out dead."""

    async def post(
        self, target: Target, body: bytes, first_byte_timeout_s: float, *,
        on_hub_machine: bool = False, extra_headers: str = "",
    ) -> UpstreamResponse:
        """Send a JSON POST and wait for the response head.

        ``on_hub_machine``: the participant joined from the hub's machine, so loopback and
        the machine's other addresses are its own servers. ``extra_headers``: complete
        ``Name: value\\r\\n`` lines (the hop header). A reused connection that turns out
        stale is replaced by a fresh one, once: nothing has reached our client yet, so the
        retry is invisible to it.
        """
        return await self.send("POST", target, body, first_byte_timeout_s,
                               on_hub_machine=on_hub_machine, extra_headers=extra_headers)

    async def send(
        self, method: str, target: Target, body: bytes, first_byte_timeout_s: float, *,
        on_hub_machine: bool = False, extra_headers: str = "",
    ) -> UpstreamResponse:
        """:meth:`post` with another method (the gateway probes providers with ``GET``)."""
        request = _request_bytes(method, target, body, extra_headers)
        key = (target.scheme, target.host, target.port, on_hub_machine)
        connection = self._take_idle(key)
        if connection is not None:
            try:
                return await self._exchange(key, connection, request, first_byte_timeout_s)
            except StaleConnectionError:
                self.stale_retries += 1
        connection = await self._connect(target, on_hub_machine)
        return await self._exchange(key, connection, request, first_byte_timeout_s)

    async def dial(self, target: Target, on_hub_machine: bool) -> UpstreamConnection:
        """A new connection to ``target``, checked and dialed as :meth:`post` dials one,
        for :meth:`send_now` to send on."""
        return await self._connect(target, on_hub_machine)

    def send_now(
        self, target: Target, body: bytes, first_byte_timeout_s: float,
        on_head: Callable[[UpstreamResponse], None], *, on_hub_machine: bool = False,
        extra_headers: str = "", connection: UpstreamConnection | None = None,
    ) -> UpstreamResponse | None:
        """:meth:`post` with no task: sent at once on an idle pooled connection (or on
        ``connection``, from :meth:`dial`), and ``on_head`` is called when the answer's head
        arrived or the exchange failed (the response's :attr:`UpstreamResponse.error` says
        which). ``None``: no idle connection, so the caller dials one or takes :meth:`post`'s
        path instead. Raises :class:`UpstreamError` when no request can be sent to ``target``
        at all (an endpoint URL that is not plain ASCII), as :meth:`post` does."""
        request = _request_bytes("POST", target, body, extra_headers)
        key = (target.scheme, target.host, target.port, on_hub_machine)
        if connection is None:
            connection = self._take_idle(key)
        if connection is None:
            return None
        try:
            connection.send(request, first_byte_timeout_s)
        except StaleConnectionError:
            return None
        response = UpstreamResponse(self, key, connection)

        def head_arrived() -> None:
            response.status = connection.status
            on_head(response)

        connection.on_head = head_arrived
        return response

    async def _exchange(
        self, key: PoolKey, connection: _Connection, request: bytes, timeout_s: float
    ) -> UpstreamResponse:
        connection.send(request, timeout_s)
        try:
            await connection.headers_done
        except BaseException:
            connection.close()
            raise
        return UpstreamResponse(self, key, connection)

    async def _connect(self, target: Target, on_hub_machine: bool) -> _Connection:
        """Resolve, check every address, then dial the checked addresses in turn (the
        whole step within the connect timeout). TLS still verifies the name as spelled."""
        loop = asyncio.get_running_loop()
        ssl_context = self._tls() if target.scheme == "https" else None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                self._check(target, [], on_hub_machine)  # By name (``localhost``) first.
                addresses = await resolve(target.host, target.port, self._connect_timeout_s)
                self._check(target, addresses, on_hub_machine)
                connection = await self._dial(loop, addresses, target, ssl_context)
        except TimeoutError as exc:
            raise UpstreamError(
                f"cannot connect to {target.host}:{target.port}: no answer within "
                f"{self._connect_timeout_s:g} s"
            ) from exc
        except ConnectionRefusedError as exc:
            raise UpstreamError(
                f"cannot connect to {target.host}:{target.port}: connection refused"
            ) from exc
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise UpstreamError(f"cannot connect to {target.host}:{target.port}: {reason}") from exc
        return connection

    def _check(self, target: Target, addresses: list[IPAddress], on_hub_machine: bool) -> None:
        if self._policy is not None:
            refusal = self._policy.refusal(target.host, target.port, addresses, on_hub_machine)
            if refusal is not None:
                raise UpstreamError(refusal)

    @staticmethod
    async def _dial(
        loop: asyncio.AbstractEventLoop, addresses: list[IPAddress], target: Target,
        ssl_context: ssl.SSLContext | None,
    ) -> _Connection:
        """The first of the checked addresses that accepts; the last one's error if none."""
        for address in addresses[:-1]:
            try:
                _, connection = await loop.create_connection(
                    _Connection, str(address), target.port, ssl=ssl_context,
                    server_hostname=target.host if ssl_context else None)
                return connection
            except OSError:
                continue
        _, connection = await loop.create_connection(
            _Connection, str(addresses[-1]), target.port, ssl=ssl_context,
            server_hostname=target.host if ssl_context else None)
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _take_idle(self, key: PoolKey) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_CONNECTION_TTL_S:
                connection.reused = True
                return connection
            connection.close()
        return None

    def _give_back(self, key: PoolKey, connection: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= MAX_IDLE_PER_HOST:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
