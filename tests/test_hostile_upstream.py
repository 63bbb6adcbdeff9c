"""A participant's model server that is hostile cannot grow the hub's memory.

The hostile servers here are real raw-socket servers (asyncio), since a real HTTP library
would refuse to send what they send: a response head that never ends, more headers than any
server needs, gigabyte bodies. Each chat goes through a real hub, and the hub's memory (this
process's RSS: hub and test share it) is watched while it runs; a watchdog stops the
hostile server once the growth passes the bound, so a regression fails instead of eating
the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psutil
import pytest

from gambiarra_desktop.hub import HubConfig
from gambiarra_desktop.share.agent import ShareAgent, ShareSettings
from tests.conftest import Api, HubFactory, eventually
from tests.upstreams import read_request

MB = 1024 * 1024
GROWTH_BOUND = 100 * MB
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
JSON_BODY = b'{"choices":[{"message":{"role":"assistant","content":"ok"}}]}'
Script = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class HostileServer:
    """Answers every request on ``/v1/chat/completions`` with ``script``."""

    script: Script
    server: asyncio.Server | None = None
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the hub (or agent) closes a connection while the script is still sending."""

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    def stop_sending(self) -> None:
        for writer in self.writers:
            writer.transport.abort()

    async def stop(self) -> None:
        self.stop_sending()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            while True:
                request = await read_request(reader)
                if not request:
                    return
                if request.startswith(b"GET "):  # The agent asking which models it serves.
                    body = b'{"data":[{"id":"m"}],"models":[{"name":"m"}]}'
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    continue
                await self.script(writer)
                return
        except (ConnectionError, OSError):
            self.dropped.set()
        except asyncio.IncompleteReadError:
            pass  # The client left between requests.
        finally:
            writer.transport.abort()
            self.tasks.discard(task)


async def endless_head(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\n")
    blob = (b"X-Junk: " + b"y" * 8000 + b"\r\n") * 128
    while True:
        writer.write(blob)
        await writer.drain()


async def one_endless_header(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nX-Junk: ")
    blob = b"y" * MB
    while True:
        writer.write(blob)
        await writer.drain()


async def many_headers(writer: asyncio.StreamWriter) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(150))  # About 1.5 KB in all.
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + headers
                 + b"Content-Length: %d\r\n\r\n" % len(JSON_BODY) + JSON_BODY)
    await writer.drain()
    await asyncio.sleep(30)


async def four_gigabytes(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 4294967296\r\n\r\n")
    blob = b"x" * MB
    while True:
        writer.write(blob)
        await writer.drain()


async def endless_chunked(writer: asyncio.StreamWriter) -> None:
    """No length declared: only counting the bytes can stop it."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    blob = b"%x\r\n%s\r\n" % (MB, b"x" * MB)
    while True:
        writer.write(blob)
        await writer.drain()


def sse_of(size: int) -> bytes:
    event = b'data: {"choices":[{"delta":{"content":"' + b"z" * 1000 + b'"}}]}\n\n'
    return event * (size // len(event) + 1) + b"data: [DONE]\n\n"


async def two_megabytes(writer: asyncio.StreamWriter) -> None:
    """Twice a 1 MB cap. Labelled neither an event stream nor JSON, so the hub streams it
    only when asked to (a whole JSON answer stays whole even then)."""
    body = sse_of(2 * MB)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    await asyncio.sleep(30)


async def two_megabytes_of_json(writer: asyncio.StreamWriter) -> None:
    """A whole JSON answer twice a 1 MB cap, as a server that ignores ``stream`` sends."""
    body = b'{"choices": [{"message": {"content": "' + b"x" * (2 * MB) + b'"}}]}'
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    await asyncio.sleep(30)


async def endless_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
    blob = sse_of(MB)
    while True:
        writer.write(blob)
        await writer.drain()


@contextlib.asynccontextmanager
async def hostile(script: Script) -> AsyncIterator[HostileServer]:
    server = HostileServer(script)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


async def watch_memory(
    work: Awaitable[Any], upstream: HostileServer, within_s: float = 15.0
) -> tuple[Any, int]:
    """Run ``work`` while sampling RSS; returns its result and the peak growth. Past the
    bound or the time, the hostile server is cut and the test fails."""
    baseline = rss()
    task = asyncio.ensure_future(work)
    peak = 0
    deadline = time.monotonic() + within_s
    while not task.done():
        peak = max(peak, rss() - baseline)
        if peak > GROWTH_BOUND or time.monotonic() > deadline:
            upstream.stop_sending()
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            pytest.fail(f"hub memory grew by {peak // MB} MB "
                        f"in {within_s - (deadline - time.monotonic()):.1f} s; not cut")
        await asyncio.sleep(0.01)
    return task.result(), max(peak, rss() - baseline)


async def joined_room(api: Api, endpoint: str) -> str:
    room = await api.create_room()
    status, body = await api.join(room["code"], model="m", endpoint=endpoint)
    assert status == 201, body
    return str(room["code"])


async def chat(api: Api, code: str, **extra: Any) -> tuple[int, Any]:
    return await api.call("POST", f"/rooms/{code}/v1/chat/completions", {**CHAT, **extra})


@pytest.mark.parametrize(
    ("script", "reason"),
    [(endless_head, "upstream's response head is larger than 65536 bytes"),
     (one_endless_header, "upstream's response head is larger than 65536 bytes"),
     (four_gigabytes, "upstream answer is larger than the limit of 33554432 bytes "
                      "(Content-Length 4294967296)"),
     (endless_chunked, "upstream answer is larger than the limit of 33554432 bytes")],
)
async def test_a_hostile_answer_is_cut_with_502_and_bounded_memory(
    api: Api, script: Script, reason: str
) -> None:
    async with hostile(script) as upstream:
        code = await joined_room(api, upstream.url)
        started = time.monotonic()
        (status, body), growth = await watch_memory(chat(api, code), upstream)
        assert status == 502, body
        assert body == {"error": f"Failed to proxy request: {reason}"}
        assert growth < GROWTH_BOUND
        assert time.monotonic() - started < 10
        await eventually(upstream.dropped.is_set)  # The hub hung up on it.
        # The hub still serves: health answers while the hostile server is around.
        assert (await api.call("GET", "/health"))[0] == 200


async def test_more_than_100_headers_is_refused(api: Api) -> None:
    async with hostile(many_headers) as upstream:
        code = await joined_room(api, upstream.url)
        status, body = await chat(api, code)
        assert status == 502, body
        assert body == {"error": "Failed to proxy request: upstream sent more than 100 headers"}


async def test_the_body_cap_is_configurable_and_spares_streams(
    make_hub: HubFactory, http: aiohttp.ClientSession
) -> None:
    api = Api(http, await make_hub(HubConfig(max_upstream_body_bytes=MB)))
    async with hostile(two_megabytes) as upstream:
        code = await joined_room(api, upstream.url)
        status, body = await chat(api, code)
        assert status == 502, body
        assert body["error"].startswith(
            "Failed to proxy request: upstream answer is larger than the limit of 1048576 bytes")
        # A stream is forwarded as it arrives, never held whole: no cap applies.
        async with http.post(f"{api.hub.url}/rooms/{code}/v1/chat/completions",
                             json={**CHAT, "stream": True}) as response:
            assert response.status == 200
            streamed = await response.read()
        assert len(streamed) > 2 * MB
        assert streamed.endswith(b"data: [DONE]\n\n")


async def test_a_whole_json_answer_to_a_request_for_a_stream_is_capped_like_any_whole(
    make_hub: HubFactory, http: aiohttp.ClientSession
) -> None:
    """Relayed whole (as the JSON it is), it is held whole: the cap applies."""
    api = Api(http, await make_hub(HubConfig(max_upstream_body_bytes=MB)))
    async with hostile(two_megabytes_of_json) as upstream:
        code = await joined_room(api, upstream.url)
        async with http.post(f"{api.hub.url}/rooms/{code}/v1/chat/completions",
                             json={**CHAT, "stream": True}) as response:
            assert response.status == 502
            body = await response.json()
    assert body["error"].startswith(
        "Failed to proxy request: upstream answer is larger than the limit of 1048576 bytes")


async def test_a_tunnelled_stream_that_outruns_its_client_is_cancelled(
    api: Api, http: aiohttp.ClientSession
) -> None:
    """Through a tunnel nothing slows the participant down: the hub must give up on the
    request (and cancel it on the agent) rather than buffer for a client that reads nothing."""
    async with hostile(endless_stream) as upstream:
        room = await api.create_room()
        settings = ShareSettings(room_code=room["code"], model="m", endpoint=upstream.url,
                                 nickname="Tunnelled", health_interval_s=0.1,
                                 backoff_initial_s=0.05, backoff_max_s=0.2)
        agent = ShareAgent(api.hub.url, settings, lambda _status: None)
        await agent.start()
        try:
            await eventually(lambda: agent.status.state == "sharing")
            assert "through the tunnel" in agent.status.reason
            url = f"{api.hub.url}/rooms/{room['code']}/v1/chat/completions"
            async with http.post(url, json={**CHAT, "stream": True}) as response:
                assert response.status == 200
                # Read nothing: the hub must cancel, and its memory stay bounded meanwhile.
                _, growth = await watch_memory(upstream.dropped.wait(), upstream)
                assert growth < GROWTH_BOUND
                rest = await asyncio.wait_for(response.read(), 10)
            assert b"the participant sends faster than the client reads" in rest
        finally:
            await agent.stop()
