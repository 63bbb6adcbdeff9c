"""The hub's own HTTP/1.1 client against raw sockets: framing, pooling, failures."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub.proxy.upstream_client import (
    Target,
    UpstreamError,
    UpstreamPool,
)
from tests.upstreams import read_request

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()

    def target(self) -> Target:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return Target.parse(f"http://127.0.0.1:{port}/v1/chat/completions")


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    pool = UpstreamPool(connect_timeout_s=2)
    yield pool
    pool.close()


async def test_target_parsing() -> None:
    t = Target.parse("https://Models.example/v1/chat/completions")
    assert (t.scheme, t.host, t.port, t.path, t.host_header) == (
        "https", "models.example", 443, "/v1/chat/completions", "models.example")
    t = Target.parse("http://[::1]:8080/x")
    assert (t.host, t.port, t.host_header) == ("::1", 8080, "[::1]:8080")


async def test_body_delimited_by_connection_close(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"1}")
        await writer.drain()

    async with RawServer(handler) as server:
        response = await pool.post(server.target(), b"{}", 5)
        assert response.status == 200
        assert await response.read(5) == b'{"a":1}'
        response.release()


async def test_keep_alive_connection_is_reused(pool: UpstreamPool) -> None:
    async with FakeOpenAIServer() as fake:
        target = Target.parse(fake.url + "/v1/chat/completions")
        for stream in (False, True, False):
            body = b'{"model":"m","stream":%s}' % (b"true" if stream else b"false")
            response = await pool.post(target, body, 5)
            assert response.status == 200
            assert b"tok15" in await response.read(5)
            response.release()
        assert len(pool._idle[(*target.pool_key, False)]) == 1


async def test_connection_close_answers_are_not_pooled(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()

    async with RawServer(handler) as server:
        for _ in range(2):
            response = await pool.post(server.target(), b"{}", 5)
            assert await response.read(5) == b"ok"
            response.release()
        assert server.connections == 2


async def test_garbage_from_upstream_is_an_upstream_error(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with RawServer(handler) as server:
        with pytest.raises(UpstreamError, match="invalid HTTP"):
            await pool.post(server.target(), b"{}", 5)


async def test_close_mid_body_is_an_upstream_error(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()

    async with RawServer(handler) as server:
        response = await pool.post(server.target(), b"{}", 5)
        with pytest.raises(UpstreamError, match="mid-response"):
            await response.read(5)


async def test_silence_mid_stream_hits_the_idle_timeout(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async with RawServer(handler) as server:
        response = await pool.post(server.target(), b"{}", 5)
        chunks = []
        with pytest.raises(UpstreamError, match="sent nothing for 0.2 s"):
            async for chunk in response.iter_chunks(0.2):
                chunks.append(chunk)
        assert chunks == [b"hello"]
        response.close()


async def test_first_byte_timeout(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with RawServer(handler) as server:
        with pytest.raises(UpstreamError, match="no answer within 0.2 s"):
            await pool.post(server.target(), b"{}", 0.2)


async def test_large_body_with_a_slow_reader_arrives_intact(pool: UpstreamPool) -> None:
    """More than the pause threshold waits in the socket, not in the hub's memory."""
    payload = bytes(range(256)) * 16 * 1024  # 4 MiB

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload))
        writer.write(payload)
        await writer.drain()

    async with RawServer(handler) as server:
        response = await pool.post(server.target(), b"{}", 5)
        digest = hashlib.sha256()
        peak = 0
        async for chunk in response.iter_chunks(5):
            digest.update(chunk)
            await asyncio.sleep(0.01)  # A slow client: the upstream gets ahead meanwhile.
            peak = max(peak, response._connection.inbox.buffered)
        assert digest.digest() == hashlib.sha256(payload).digest()
        assert (1 << 20) < peak <= (1 << 20) + 512 * 1024, peak
        response.release()


async def test_refused_connection_says_so(pool: UpstreamPool) -> None:
    async with RawServer(read_request) as server:  # type: ignore[arg-type]
        target = server.target()
    await asyncio.sleep(0.05)
    with pytest.raises(UpstreamError, match="connection refused"):
        await pool.post(target, b"{}", 5)


async def test_fresh_connection_closed_without_answer_is_not_retried(pool: UpstreamPool) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with RawServer(handler) as server:
        with pytest.raises(UpstreamError, match="without answering"):
            await pool.post(server.target(), b"{}", 5)
        assert server.connections == 1
