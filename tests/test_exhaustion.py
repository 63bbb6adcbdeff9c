"""Exhaustion: event fan-out memory, stalled listeners, connection and listener caps,
slow request heads, the open-file limit, and what the log says while it happens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.events import Event, EventType
from gambiarra_desktop.hub import HubConfig, HubServer
from gambiarra_desktop.hub.api.connections import connection_budget
from gambiarra_desktop.hub.keys import BUS, STREAMS
from gambiarra_desktop.log_throttle import RepeatThrottle
from tests.conftest import Api, HubFactory
from tests.platforms import posix_only
from tests.sse_client import SseReader

SPECS_16_KB = {"gpu": "x" * (16 * 1024 - 20)}


async def wait_for(predicate: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def session_from(address: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A client whose connections come from ``address`` (any of 127/8 is this machine)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=0, force_close=True)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=10)
    ) as session:
        yield session


async def open_idle(hub: HubServer, count: int, address: str = "127.0.0.1") -> list[socket.socket]:
    """``count`` connected sockets that never send a byte."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.bind((address, 0))
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", hub.port))
        sockets.append(sock)
    return sockets


async def read_until_closed(sock: socket.socket, within_s: float) -> bytes:
    """Everything the hub sends until it closes the connection; fails after ``within_s``."""
    loop, received = asyncio.get_running_loop(), b""
    async with asyncio.timeout(within_s):
        while True:
            try:
                chunk = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


# -- event fan-out ---------------------------------------------------------------------


async def test_200_listeners_and_a_16_kb_specs_join_cost_little_memory_and_time(
    make_hub: HubFactory, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    hub = await make_hub(HubConfig(max_event_listeners_per_address=500))
    api = Api(http, hub)
    room = await api.create_room()
    listeners = 200
    async with session_from("127.0.0.1") as client:
        responses = []
        for _ in range(listeners):
            response = await client.get(f"{hub.url}/rooms/{room['code']}/events")
            assert response.status == 200
            responses.append(response)
        try:
            readers = [SseReader(r) for r in responses]
            await asyncio.gather(*(reader.next_event() for reader in readers))
            assert hub.app[STREAMS].listener_count == listeners
            process = psutil.Process()
            before = process.memory_info().rss
            started = time.monotonic()
            status, body = await api.join(room["code"], endpoint=upstream.url,
                                          specs=SPECS_16_KB)
            assert status == 201, body
            events = await asyncio.gather(*(reader.next_event(10) for reader in readers))
            elapsed = time.monotonic() - started
            growth = process.memory_info().rss - before
        finally:
            for response in responses:
                response.close()
    assert all(name == "participant:joined" for name, _ in events)
    assert all(data["specs"] == SPECS_16_KB for _, data in events)
    assert growth < 60 * 1024 * 1024, f"RSS grew {growth / 2**20:.1f} MB"
    assert elapsed < 10, f"fan-out took {elapsed:.1f} s"


async def test_a_stalled_listener_is_cut_when_its_bytes_exceed_the_bound(
    make_hub: HubFactory, http: aiohttp.ClientSession
) -> None:
    hub = await make_hub(HubConfig(sse_buffer_bytes=256 * 1024, sse_queue_size=100_000))
    api = Api(http, hub)
    room = await api.create_room()
    streams = hub.app[STREAMS]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # Reads nothing, tiny window.
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", hub.port))
    try:
        await asyncio.get_running_loop().sock_sendall(
            sock, f"GET /rooms/{room['code']}/events HTTP/1.1\r\nHost: hub\r\n\r\n".encode())
        await wait_for(lambda: streams.listener_count == 1)
        payload = {"participantId": "p", "specs": SPECS_16_KB}
        for _ in range(2000):  # At most ~32 MB; far fewer once buffers are full.
            hub.app[BUS].publish(Event(EventType.LLM_REQUEST, room["code"], payload))
            await asyncio.sleep(0.001)  # Let the listener's pump write what it can.
            if not streams.listener_count:
                break
        await wait_for(lambda: streams.listener_count == 0, 5)
        # The listener that reads normally is unaffected by the cut one.
        async with http.get(f"{hub.url}/rooms/{room['code']}/events") as response:
            assert (await SseReader(response).next_event())[0] == "connected"
    finally:
        sock.close()


async def test_event_listeners_are_capped_per_address_and_per_hub(
    make_hub: HubFactory, http: aiohttp.ClientSession
) -> None:
    hub = await make_hub(HubConfig(max_event_listeners=3, max_event_listeners_per_address=2))
    room = await Api(http, hub).create_room()
    url = f"{hub.url}/rooms/{room['code']}/events"
    open_responses: list[aiohttp.ClientResponse] = []
    async with session_from("127.0.0.1") as first, session_from("127.0.0.2") as second, \
            session_from("127.0.0.3") as third:
        try:
            for _ in range(2):
                open_responses.append(await first.get(url))
                assert open_responses[-1].status == 200
            async with first.get(url) as refused:
                assert refused.status == 429
                assert "Too many event streams" in (await refused.json())["error"]
                assert refused.headers["Retry-After"]
            open_responses.append(await second.get(url))
            assert open_responses[-1].status == 200
            async with third.get(url) as full:
                assert full.status == 503
                assert "limit of 3 event listeners" in (await full.json())["error"]
            assert hub.app[STREAMS].listener_count == 3
        finally:
            for response in open_responses:
                response.close()
        await wait_for(lambda: hub.app[STREAMS].listener_count == 0)
        async with third.get(url) as response:
            assert response.status == 200


async def test_head_on_the_event_stream_sends_no_body(make_hub: HubFactory) -> None:
    # Found by the fuzz test: the stream was written after HEAD's headers, and the next
    # response on the kept-alive connection read it as a garbled status line.
    hub = await make_hub()
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as one_connection:
        async with one_connection.post(hub.url + "/rooms", json={"name": "H"}) as response:
            code = (await response.json())["room"]["code"]
        async with one_connection.head(f"{hub.url}/rooms/{code}/events") as response:
            assert response.status == 200
            assert response.content_type == "text/event-stream"
        async with one_connection.get(hub.url + "/health") as response:
            assert response.status == 200
    assert hub.app[STREAMS].listener_count == 0


# -- connections -----------------------------------------------------------------------


async def test_idle_connections_from_one_address_do_not_lock_out_others(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub(HubConfig(max_connections_per_address=5))
    assert hub.gate is not None
    idle = await open_idle(hub, 5)
    try:
        await wait_for(lambda: hub.gate is not None and hub.gate.open_count == 5)
        async with session_from("127.0.0.1") as same, session_from("127.0.0.2") as other:
            async with same.get(hub.url + "/health") as refused:
                assert refused.status == 429
                assert refused.headers["Retry-After"]
                assert refused.headers["Access-Control-Allow-Origin"] == "*"
                assert "Too many open connections" in (await refused.json())["error"]
            async with other.get(hub.url + "/health") as served:
                assert served.status == 200
            idle.pop().close()
            await wait_for(lambda: hub.gate is not None and hub.gate.open_count == 4)
            async with same.get(hub.url + "/health") as served:
                assert served.status == 200
    finally:
        for sock in idle:
            sock.close()


async def test_a_full_hub_answers_503_quickly(make_hub: HubFactory) -> None:
    hub = await make_hub(HubConfig(max_connections=4))
    idle = await open_idle(hub, 2, "127.0.0.1") + await open_idle(hub, 2, "127.0.0.2")
    try:
        await wait_for(lambda: hub.gate is not None and hub.gate.open_count == 4)
        async with session_from("127.0.0.3") as late:
            started = time.monotonic()
            async with late.get(hub.url + "/health") as refused:
                assert refused.status == 503
                assert "hub is full" in (await refused.json())["error"]
            assert time.monotonic() - started < 2
    finally:
        for sock in idle:
            sock.close()


def test_the_automatic_connection_cap_leaves_descriptors_for_the_hub() -> None:
    assert connection_budget(0, 1024) == 448
    assert connection_budget(0, 1_048_576) == 4096
    assert connection_budget(0, 100) == 32
    assert connection_budget(0, None) == 4096
    assert connection_budget(10, 1024) == 10


async def test_a_slow_request_head_is_cut_but_an_idle_keep_alive_is_not(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub(HubConfig(header_timeout_s=0.5))
    loop = asyncio.get_running_loop()
    silent, dribbler = await open_idle(hub, 2)
    keeper = socket.socket()
    try:
        started = time.monotonic()
        await loop.sock_sendall(dribbler, b"GET /health HTTP/1.1\r\nHost: hub\r\n")

        async def dribble() -> None:
            with contextlib.suppress(OSError):
                for _ in range(50):
                    await loop.sock_sendall(dribbler, b"X")
                    await asyncio.sleep(0.1)

        dribbling = asyncio.create_task(dribble())
        assert await read_until_closed(silent, 3) == b""
        assert await read_until_closed(dribbler, 3) == b""
        assert time.monotonic() - started < 2.5
        dribbling.cancel()

        # A complete request, then silence: keep-alive is aiohttp's business (it stays open).
        keeper.close()
        (keeper,) = await open_idle(hub, 1)
        await loop.sock_sendall(keeper, b"GET /health HTTP/1.1\r\nHost: hub\r\n\r\n")
        first = await asyncio.wait_for(loop.sock_recv(keeper, 65536), 3)
        assert first.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(1.2)
        await loop.sock_sendall(keeper, b"GET /health HTTP/1.1\r\nHost: hub\r\n\r\n")
        second = await asyncio.wait_for(loop.sock_recv(keeper, 65536), 3)
        assert second.startswith(b"HTTP/1.1 200")
        # But its next head must come in time too, once it has started.
        await loop.sock_sendall(keeper, b"GET /health HTTP/1.1\r\n")
        assert await read_until_closed(keeper, 3) == b""
    finally:
        for sock in (silent, dribbler, keeper):
            sock.close()


def _open_file_limits(pid: int) -> tuple[int, int]:
    text = Path(f"/proc/{pid}/limits").read_text()
    match = re.search(r"Max open files\s+(\d+)\s+(\d+)", text)
    assert match, text
    return int(match.group(1)), int(match.group(2))


def _start_serve(tmp_path: Path, soft: int, hard: int) -> tuple[subprocess.Popen[str], int]:
    def lower_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    process = subprocess.Popen(
        [sys.executable, "-m", "gambiarra_desktop.cli", "serve", "--host", "127.0.0.1",
         "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lower_limit,  # noqa: PLW1509 - only sets a limit, no locks involved.
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not match:
        process.kill()
        raise AssertionError(line + process.stdout.read())
    return process, int(match.group(1))


@posix_only
@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="needs /proc (Linux)")
def test_serve_raises_its_soft_open_file_limit_to_the_hard_one(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard < 512:
        pytest.skip("needs a finite hard limit of at least 512")
    process, _ = _start_serve(tmp_path, 256, hard)
    try:
        assert _open_file_limits(process.pid) == (hard, hard)
    finally:
        process.kill()
        process.wait(timeout=10)


@posix_only
@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc (Linux)")
async def test_a_hub_at_a_1024_file_limit_still_serves_under_1100_idle_connections(
    tmp_path: Path,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1400:
        pytest.skip("this test process needs 1,400 descriptors for its own sockets")
    process, port = _start_serve(tmp_path, 1024, 1024)
    idle: list[socket.socket] = []
    loop = asyncio.get_running_loop()
    try:
        for index in range(1100):
            sock = socket.socket()
            sock.setblocking(False)
            sock.bind((f"127.0.{1 + index // 200}.{1 + index % 200}", 0))  # 6 addresses.
            with contextlib.suppress(OSError):
                await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 2)
            idle.append(sock)
        await asyncio.sleep(1.5)  # The refused ones are read and closed by now.
        held = len(os.listdir(f"/proc/{process.pid}/fd"))
        async with session_from("127.0.9.9") as legit:
            started = time.monotonic()
            async with legit.get(f"http://127.0.0.1:{port}/health") as response:
                status = response.status
                body: Any = await response.json()
            elapsed = time.monotonic() - started
        print(f"\n1024-fd hub: {held} descriptors open under 1,100 idle sockets;"
              f" a new client got {status} in {elapsed * 1000:.0f} ms: {body}")
        assert held < 1024
        assert status in (200, 503), body
        assert elapsed < 5
    finally:
        for sock in idle:
            sock.close()
        process.kill()
        process.wait(timeout=10)


# -- logs ------------------------------------------------------------------------------


async def test_bad_input_and_bad_http_log_no_errors(
    hub: HubServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = Api(http, hub)
    room = await api.create_room()
    await api.call("POST", f"/rooms/{room['code']}/join", raw=b"{nope")
    await api.call("POST", "/rooms", raw=b"[" * 2000 + b"]" * 2000)
    async with http.post(hub.url + "/rooms", data=b"x", headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip"}) as response:
        assert response.status == 415
    loop = asyncio.get_running_loop()
    for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
                    b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
                    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 20000 + b"\r\n\r\n",
                    b"POST /rooms HTTP/1.1\r\nContent-Length: zz\r\n\r\n"):
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", hub.port))
        try:
            await loop.sock_sendall(sock, garbage)
            reply = await read_until_closed(sock, 5)
        finally:
            sock.close()
        if reply:  # aiohttp answers most; when it does, the answer is a JSON error.
            assert re.match(rb"HTTP/1\.[01] 4\d\d ", reply), reply[:200]
            assert b'{"error":' in reply, reply[:400]
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == [], [(r.name, r.getMessage()[:200]) for r in errors]
    assert not any(r.exc_info for r in caplog.records)


def test_repeated_log_lines_are_throttled_and_counted() -> None:
    now = [0.0]
    throttle = RepeatThrottle(burst=3, interval_s=10, clock=lambda: now[0])
    logger = logging.getLogger("tests.exhaustion.throttle")
    logger.propagate = False
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger.addHandler(Collect())
    logger.addFilter(throttle)
    try:
        for index in range(100):
            logger.error("bad request from %s", f"10.0.0.{index}")
        logger.error("another template")
        assert lines == ["bad request from 10.0.0.0", "bad request from 10.0.0.1",
                         "bad request from 10.0.0.2", "another template"]
        now[0] = 11.0
        logger.error("bad request from %s", "10.0.0.200")
        assert lines[-1] == ("bad request from 10.0.0.200 (this message repeated 97 more"
                             " times in the last 10 s, not shown)")
    finally:
        logger.handlers.clear()
        logger.filters.clear()
