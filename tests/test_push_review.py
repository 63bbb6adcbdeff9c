"""Review of the pushed streams (``NowChat`` as a ``Pusher``, commit bc1246d): each test pins
a place where the no-task path differed from the task path (``relay_to``) it must match
(each failed before its fix): the idle timer counting while the hub holds the model back,
a connection pooled still paused, and silence before the first chunk failing over with
another reason."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiohttp import web

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig
from gambiarra_desktop.hub.keys import PROXY
from tests.conftest import HubFactory, eventually
from tests.front_room import Room, open_room
from tests.raw_http import RawConnection

LAST_CHUNK = b"\r\n0\r\n\r\n"
DONE_END = b"data: [DONE]\n\n" + LAST_CHUNK


async def warm(room: Room) -> RawConnection:
    """A client connection after one plain chat, which left a pooled model connection."""
    connection = await RawConnection.open(room.hub.port)
    await connection.send(room.chat())
    assert (await connection.read_response()).status == 200
    return connection


async def slow_reader(room: Room, hub_send_buffer: int | None = None) -> socket.socket:
    """A client socket with a small receive buffer that sent a stream and reads nothing.
    ``hub_send_buffer``: the hub's side of it gets that kernel send buffer (a slow link
    that stays slow: Linux would otherwise grow it by megabytes)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    fronts = room.server.fronts
    before = set(fronts)
    await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", room.hub.port)), 5)
    if hub_send_buffer is not None:
        await eventually(lambda: len(set(fronts) - before) == 1, 3.0)
        (front,) = set(fronts) - before
        assert front.transport is not None
        hub_side = front.transport.get_extra_info("socket")
        hub_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, hub_send_buffer)
    await asyncio.wait_for(loop.sock_sendall(sock, room.chat(stream=True)), 5)
    return sock


async def read_to_end(sock: socket.socket, piece: int = 1 << 20) -> bytes:
    """Read until the chunked body's last chunk (bounded in count and time); the tail."""
    loop = asyncio.get_running_loop()
    tail = b""
    for _ in range(200_000):
        data = await asyncio.wait_for(loop.sock_recv(sock, piece), 5)
        if not data:
            break
        tail = (tail + data)[-256:]
        if tail.endswith(LAST_CHUNK):
            break
    return tail


async def test_a_client_slower_than_the_idle_timeout_does_not_cut_a_pushed_stream(
    make_hub: HubFactory, upstream: FakeOpenAIServer
) -> None:
    room = await open_room(make_hub, upstream, HubConfig(upstream_idle_timeout_s=0.5))
    await (await warm(room)).close()
    upstream.behaviour.tokens = 200_000
    sent = upstream.token_sent_at
    with await slow_reader(room) as sock:
        await eventually(lambda: len(sent) > 100, 5.0)
        await asyncio.sleep(1.5)  # Held back by the hub, three idle timeouts long.
        tail = await read_to_end(sock)
    assert b"Failed to proxy request" not in tail
    assert tail.endswith(DONE_END)
    assert len(sent) == 200_000


class _HeldModel(FakeOpenAIServer):
    """Streams filler while ``hold`` is clear, then one large last event and the end, which
    then arrive at the hub together (it is not reading while the client is behind)."""

    def __init__(self) -> None:
        super().__init__()
        self.held = False
        self.hold = asyncio.Event()

    async def _stream(self, request: web.Request, body: dict[str, Any],
                      model: str) -> web.StreamResponse:
        if not self.held:
            return await super()._stream(request, body, model)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(2000):  # Bounded: 2000 * 10 ms.
            if self.hold.is_set():
                break
            await response.write(b": " + b"x" * 8000 + b"\n\n")
            await asyncio.sleep(0.01)
        await response.write(b": " + b"y" * 100_000 + b"\n\n" + b"data: [DONE]\n\n")
        await response.write_eof()
        self.completed_streams += 1
        return response


def idle_connections(room: Room) -> list[Any]:
    return [c for idle in room.hub.app[PROXY].pool._idle.values() for c in idle]


async def test_a_stream_that_ends_while_the_client_is_behind_pools_a_reading_connection(
    make_hub: HubFactory,
) -> None:
    model = _HeldModel()
    async with model:
        room = await open_room(make_hub, model, HubConfig(upstream_first_byte_timeout_s=2.0))
        await (await warm(room)).close()
        fronts = room.server.fronts
        model.held = True
        with await slow_reader(room, 16 * 1024) as sock:
            await eventually(lambda: any(f.write_paused for f in fronts), 5.0)
            model.hold.set()
            await asyncio.sleep(0.3)  # The last event and the end wait at the hub.
            loop = asyncio.get_running_loop()
            for _ in range(1000):  # Read only until the hub resumes the model: bounded.
                if not any(f.write_paused for f in fronts):
                    break
                await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
            await asyncio.sleep(0.3)  # The last event and the end arrive while it is behind.
            tail = await read_to_end(sock)
            assert tail.endswith(DONE_END)
        await eventually(lambda: len(idle_connections(room)) == 1, 3.0)
        pooled = idle_connections(room)[0]
        assert pooled.transport.is_reading(), "pooled with reading paused"
        model.held = False
        connection = await RawConnection.open(room.hub.port)
        await connection.send(room.chat())
        response = await connection.read_response()
        assert response.status == 200, response.body
        await connection.close()


class _SilentModel(FakeOpenAIServer):
    """Sends a stream's head, then nothing for a while."""

    async def _stream(self, request: web.Request, body: dict[str, Any],
                      model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await asyncio.sleep(2.0)
        return response


async def test_a_pushed_stream_silent_before_its_first_chunk_fails_as_the_task_path_does(
    make_hub: HubFactory,
) -> None:
    model = _SilentModel()
    async with model:
        room = await open_room(make_hub, model, HubConfig(upstream_idle_timeout_s=0.3))
        connection = await RawConnection.open(room.hub.port)
        await connection.send(room.chat(stream=True))  # No pooled connection: a task.
        by_task = await connection.read_response()
        assert by_task.status == 502
        await connection.close()
        connection = await warm(room)
        await connection.send(room.chat(stream=True))  # Pushed, with no task.
        pushed = await connection.read_response()
        await connection.close()
    assert (pushed.status, pushed.body) == (502, by_task.body)
