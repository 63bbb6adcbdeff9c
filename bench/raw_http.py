"""A raw asyncio HTTP/1.1 keep-alive client: the benchmark's load generator.

aiohttp's client spends about as much CPU per request as the hub does, so on a 2-core
machine it would be the bottleneck and hide the hub's own cost. This client writes
pre-built request bytes straight to the transport and parses answers with httptools
(llhttp, in C): both framings a server may choose, ``Content-Length`` and ``chunked``, end
a message correctly, and a connection is reused while the server keeps it alive.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast

import httptools


def build_request(method: str, path: str, host: str, body: bytes = b"",
                  headers: dict[str, str] | None = None) -> bytes:
    """The whole request as bytes, built once and sent many times."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if body or method in ("POST", "PUT"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(slots=True)
class RawResponse:
    status: int = 0
    parts: list[bytes] = field(default_factory=list)
    first_body_at: float = 0.0
    """``time.perf_counter()`` when the first body byte arrived (0.0 if none did)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Lower-case names; filled only by a connection opened with ``keep_headers``."""

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)


class _Protocol(asyncio.Protocol):
    """One connection; httptools calls back the ``on_*`` methods as bytes arrive."""

    def __init__(self, keep_headers: bool, discard_body: bool) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._keep_headers = keep_headers
        self._discard = discard_body
        self._header_name = b""
        self.transport: asyncio.Transport | None = None
        self.response = RawResponse()
        self.waiter: asyncio.Future[RawResponse] | None = None
        self.closed = False
        self.body_bytes = 0
        self.headers_seen = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass.

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad HTTP answer: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError(f"connection closed mid-answer: {exc}"))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if self._keep_headers:
            self.response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.response.status = self._parser.get_status_code()
        self.headers_seen.set()

    def on_body(self, body: bytes) -> None:
        if not self.response.first_body_at:
            self.response.first_body_at = time.perf_counter()
        self.body_bytes += len(body)
        if not self._discard:
            self.response.parts.append(body)

    def on_message_complete(self) -> None:
        response, self.response = self.response, RawResponse()
        if not self._parser.should_keep_alive() and self.transport is not None:
            self.closed = True
            self.transport.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(response)


class RawConnection:
    """A keep-alive connection to one server that reconnects when the server closes it."""

    def __init__(self, host: str, port: int, local_host: str | None = None,
                 keep_headers: bool = False, discard_body: bool = False) -> None:
        self.host, self.port = host, port
        self._local = (local_host, 0) if local_host else None
        self._keep_headers = keep_headers
        self._discard = discard_body
        self._protocol: _Protocol | None = None
        self.connects = 0

    async def _connected(self) -> _Protocol:
        if self._protocol is None or self._protocol.closed:
            loop = asyncio.get_running_loop()
            _, protocol = await loop.create_connection(
                lambda: _Protocol(self._keep_headers, self._discard), self.host, self.port,
                local_addr=self._local)
            self._protocol = protocol
            self.connects += 1
        return self._protocol

    async def send(self, request: bytes) -> asyncio.Future[RawResponse]:
        """Send one request; the future is its whole answer (set when the last byte came)."""
        protocol = await self._connected()
        assert protocol.transport is not None
        protocol.waiter = asyncio.get_running_loop().create_future()
        protocol.transport.write(request)
        return protocol.waiter

    async def request(self, request: bytes, timeout_s: float = 30.0) -> RawResponse:
        future = await self.send(request)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the connection at once (a client hanging up); a pending answer is
        cancelled, not failed, since the caller chose to leave."""
        if self._protocol is not None:
            if self._protocol.waiter is not None:
                self._protocol.waiter.cancel()
            if self._protocol.transport is not None:
                self._protocol.transport.abort()
        self._protocol = None

    @property
    def received_bytes(self) -> int:
        """Body bytes received on this connection so far (all answers together)."""
        return self._protocol.body_bytes if self._protocol is not None else 0

    def state(self) -> str:
        """``idle`` (no answer pending), ``waiting`` (sent, no body byte yet) or
        ``streaming`` (the answer's body has begun)."""
        protocol = self._protocol
        if protocol is None or protocol.waiter is None or protocol.waiter.done():
            return "idle"
        return "streaming" if protocol.response.first_body_at else "waiting"

    async def wait_headers(self, timeout_s: float) -> int:
        """Wait for the current answer's status line and headers; its status."""
        assert self._protocol is not None
        await asyncio.wait_for(self._protocol.headers_seen.wait(), timeout_s)
        return self._protocol.response.status

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
