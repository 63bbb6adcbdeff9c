"""A raw HTTP/1.x client on a plain socket, for tests that pin the hub's wire behaviour.

Why not aiohttp's client: it never pipelines, never splits a request into odd TCP segments,
never waits for ``100 Continue`` by hand and hides how a connection ends. The hub's front end
must get each of those right, so these tests speak the bytes themselves. Every read here is
bounded in time (``asyncio.wait_for``), so a front end that hangs fails a test, not the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

READ_TIMEOUT_S = 5.0
MAX_HEAD_BYTES = 256 * 1024


@dataclass
class RawResponse:
    """One parsed response: the status line, headers in order, and the decoded body."""

    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunked: bool = False

    def header(self, name: str) -> str | None:
        """The first value of ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def json(self) -> Any:
        return json.loads(self.body)


class RawConnection:
    """One TCP connection to a server, writing bytes as told and parsing what comes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> RawConnection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=MAX_HEAD_BYTES * 64), READ_TIMEOUT_S)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        """Write ``data`` in one write (one send() for the sizes used in these tests)."""
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), READ_TIMEOUT_S)

    async def send_in_pieces(self, data: bytes, sizes: Iterable[int], pause_every: int = 3,
                             pause_s: float = 0.002) -> int:
        """Write ``data`` a few bytes at a time: each piece is the next size from ``sizes``
        (cycled), each piece drained, with a short sleep after every ``pause_every`` pieces
        so that pieces reach the server as separate TCP segments. Returns the piece count."""
        cycle = list(sizes)
        assert cycle and all(size > 0 for size in cycle)
        offset = pieces = 0
        while offset < len(data):
            size = cycle[pieces % len(cycle)]
            self.writer.write(data[offset:offset + size])
            await asyncio.wait_for(self.writer.drain(), READ_TIMEOUT_S)
            offset += size
            pieces += 1
            if pieces % pause_every == 0:
                await asyncio.sleep(pause_s)
        return pieces

    async def read_response(self, head_only: bool = False,
                            timeout_s: float = READ_TIMEOUT_S) -> RawResponse:
        """Read one whole response (a 1xx comes back alone, without a body). ``head_only``
        is for answers to HEAD, which carry a length but no body."""
        return await asyncio.wait_for(self._read_response(head_only), timeout_s)

    async def _read_response(self, head_only: bool) -> RawResponse:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        status_text, _, reason = rest.partition(" ")
        response = RawResponse(version, int(status_text), reason)
        for line in lines[1:]:
            name, _, value = line.partition(":")
            response.headers.append((name.strip(), value.strip()))
        if response.status < 200 or response.status in (204, 304) or head_only:
            return response
        encoding = (response.header("Transfer-Encoding") or "").lower()
        length = response.header("Content-Length")
        if "chunked" in encoding:
            response.chunked = True
            response.body = await self._read_chunked()
        elif length is not None:
            response.body = await self.reader.readexactly(int(length))
        else:  # Delimited by the close (HTTP/1.0 or Connection: close without a length).
            response.body = await self.reader.read()
        return response

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while await self.reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # Trailers, if any.
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            assert await self.reader.readexactly(2) == b"\r\n", "chunk not followed by CRLF"

    async def read_available(self, timeout_s: float = 0.3) -> bytes:
        """Whatever bytes arrive within ``timeout_s`` (b"" when none or closed)."""
        try:
            return await asyncio.wait_for(self.reader.read(65536), timeout_s)
        except TimeoutError:
            return b""

    async def closed_by_server(self, timeout_s: float = READ_TIMEOUT_S) -> bool:
        """True when the server closes the connection within ``timeout_s`` with no more
        bytes sent; False when it stays open (or sends more)."""
        try:
            rest = await asyncio.wait_for(self.reader.read(65536), timeout_s)
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return rest == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)

    def abort(self) -> None:
        """Close at once with a reset, as a crashing client would."""
        self.writer.transport.abort()


def request_bytes(method: str, path: str, body: bytes = b"",
                  headers: Iterable[tuple[str, str]] = (), version: str = "HTTP/1.1",
                  length: bool = True) -> bytes:
    """One request as bytes: ``Host``, then ``headers``, then ``Content-Length`` when there is
    a body (unless ``length`` is False, for chunked or Expect tests that set their own)."""
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    if length and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(body: bytes, sizes: Iterable[int]) -> bytes:
    """``body`` in chunked transfer coding, cut in chunks of the given sizes (cycled)."""
    cycle = list(sizes)
    out: list[bytes] = []
    offset = index = 0
    while offset < len(body):
        piece = body[offset:offset + cycle[index % len(cycle)]]
        out.append(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        offset += len(piece)
        index += 1
    out.append(b"0\r\n\r\n")
    return b"".join(out)
