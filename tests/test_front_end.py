"""The hub's chat front end (``hub/front/``) keeps the connection rules aiohttp's protocol
kept: connection caps, the request-head deadline, the access log, a clean stop; and it makes
no aiohttp protocol object for a connection that only chats (what it is there to save).

The wire behaviour of the chat route itself is pinned in ``test_http_front_edges.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig
from gambiarra_desktop.hub.front.connection import FrontConnection
from tests.conftest import HubFactory, eventually
from tests.front_room import Room, count_no_task_starts, join_second, open_room, server_of
from tests.raw_http import RawConnection, request_bytes


@pytest.fixture
async def room(make_hub: HubFactory, upstream: FakeOpenAIServer) -> AsyncIterator[Room]:
    yield await open_room(make_hub, upstream, HubConfig(header_timeout_s=0.5))


async def test_a_chat_only_connection_gets_no_aiohttp_protocol(room: Room) -> None:
    connection = await RawConnection.open(room.hub.port)
    for _ in range(3):
        await connection.send(room.chat())
        assert (await connection.read_response()).status == 200
    server = server_of(room.hub)
    assert len(server.fronts) == 1
    assert not server._connections  # aiohttp's own tracking: nothing made for it.
    # A connection that starts with another route is aiohttp's, from its first byte.
    other = await RawConnection.open(room.hub.port)
    await other.send(request_bytes("GET", f"/rooms/{room.code}/participants"))
    assert (await other.read_response()).status == 200
    assert len(server._connections) == 1 and len(server.fronts) == 1
    await connection.close()
    await other.close()


async def test_a_slow_next_head_on_a_chat_connection_is_closed(room: Room) -> None:
    connection = await RawConnection.open(room.hub.port)
    await connection.send(room.chat())
    assert (await connection.read_response()).status == 200
    await connection.send(room.chat()[:20])  # The next head, never finished.
    assert await connection.closed_by_server(timeout_s=3.0)
    assert room.model.requests and len(room.model.requests) == 1


async def test_an_idle_first_connection_is_closed_after_the_head_deadline(room: Room) -> None:
    connection = await RawConnection.open(room.hub.port)
    await connection.send(b"POST /rooms/")  # Not yet decided which server reads it.
    assert await connection.closed_by_server(timeout_s=3.0)


async def test_chat_connections_count_against_the_connection_cap(
    make_hub: HubFactory, upstream: FakeOpenAIServer
) -> None:
    room = await open_room(make_hub, upstream,
                           HubConfig(max_connections=40, max_connections_per_address=3))
    held = []
    for _ in range(3):
        connection = await RawConnection.open(room.hub.port)
        await connection.send(room.chat())
        assert (await connection.read_response()).status == 200
        held.append(connection)
    refused = await RawConnection.open(room.hub.port)
    await refused.send(room.chat())
    response = await refused.read_response()
    assert response.status == 429
    assert "Too many open connections from your address" in response.json()["error"]
    await held.pop().close()  # One leaves: its slot is free again.
    await eventually(lambda: server_of(room.hub).gate.open_count == 2, 3.0)
    again = await RawConnection.open(room.hub.port)
    await again.send(room.chat())
    assert (await again.read_response()).status == 200
    for connection in [*held, again]:
        await connection.close()
    await eventually(lambda: server_of(room.hub).gate.open_count == 0, 3.0)


async def test_the_access_log_has_a_line_per_chat(
    tmp_path: object, room: Room, caplog: pytest.LogCaptureFixture
) -> None:
    server_of(room.hub).access_log = logging.getLogger("gambiarra.test.access")
    connection = await RawConnection.open(room.hub.port)
    with caplog.at_level(logging.INFO, logger="gambiarra.test.access"):
        await connection.send(room.chat())
        assert (await connection.read_response()).status == 200
        await connection.send(room.chat(stream=True))
        assert (await connection.read_response()).status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "gambiarra.test.access"]
    assert lines == [f'127.0.0.1 "POST /rooms/{room.code}/v1/chat/completions HTTP/1.1" 200'] * 2
    await connection.close()


async def test_stopping_the_hub_lets_an_answer_in_progress_finish(
    make_hub: HubFactory, upstream: FakeOpenAIServer
) -> None:
    room = await open_room(make_hub, upstream)
    upstream.behaviour.first_token_delay_s = 0.5
    connection = await RawConnection.open(room.hub.port)
    await connection.send(room.chat())
    await eventually(lambda: upstream.in_flight == 1, 3.0)
    stopping = asyncio.ensure_future(room.hub.stop())
    response = await connection.read_response()
    assert response.status == 200 and b"tok15" in response.body
    await asyncio.wait_for(stopping, 10)
    assert await connection.closed_by_server()


# -- chats served with no task (ChatProxy.serve_now) ---------------------------------


async def test_a_5xx_on_a_chat_begun_with_no_task_fails_over(
    make_hub: HubFactory, upstream: FakeOpenAIServer
) -> None:
    async with FakeOpenAIServer() as other:
        room = await open_room(make_hub, upstream)
        await join_second(room, other)
        other.behaviour.first_token_delay_s = 0.05  # p1 answers sooner: it is picked first.
        started = count_no_task_starts(room.hub)
        connection = await RawConnection.open(room.hub.port)
        for _ in range(4):  # A pooled connection to each participant.
            await connection.send(room.chat())
            assert (await connection.read_response()).status == 200
        upstream.behaviour.error_status = 500
        before = len(upstream.requests)
        answered_by = set()
        for _ in range(4):
            await connection.send(room.chat())
            response = await connection.read_response()
            assert response.status == 200, response.body
            answered_by.add(response.header("X-Gambiarra-Participant"))
        assert answered_by == {"p2"}
        assert len(upstream.requests) > before  # p1 was tried, answered 500, and was left.
        assert started[0] >= 5
        await connection.close()


async def test_a_client_that_leaves_a_chat_begun_with_no_task_stops_the_model(
    room: Room, http: aiohttp.ClientSession
) -> None:
    started = count_no_task_starts(room.hub)
    connection = await RawConnection.open(room.hub.port)
    await connection.send(room.chat())
    assert (await connection.read_response()).status == 200  # Pools a connection to it.
    room.model.behaviour.first_token_delay_s = 5.0
    await connection.send(room.chat())
    await eventually(lambda: room.model.in_flight == 1, 3.0)
    connection.abort()
    await eventually(lambda: room.model.in_flight == 0, 3.0)  # Not the 5 s answer.
    assert started[0] == 2  # Both: the first dialed its connection with no task too.

    async def in_flight() -> int:
        async with http.get(f"{room.hub.url}/rooms/{room.code}/participants") as response:
            listing = await response.json()
        return int(listing["participants"][0]["metrics"]["inFlight"])

    for _ in range(100):  # Bounded: 2 s.
        if await in_flight() == 0:
            break
        await asyncio.sleep(0.02)
    assert await in_flight() == 0


async def test_a_large_answer_begun_with_no_task_is_read_whole(room: Room) -> None:
    connection = await RawConnection.open(room.hub.port)
    await connection.send(room.chat())
    assert (await connection.read_response()).status == 200
    room.model.behaviour.tokens = 40_000  # About 300 KB: it arrives in many segments.
    await connection.send(room.chat())
    response = await connection.read_response()
    assert response.status == 200
    content = response.json()["choices"][0]["message"]["content"]
    assert content.endswith("tok39999 ") and len(response.body) > 200_000
    await connection.close()


# -- streams relayed with no task (NowChat as a Pusher) ------------------------------


async def warm(room: Room) -> RawConnection:
    """A client connection, after one chat that left a pooled connection to the model."""
    connection = await RawConnection.open(room.hub.port)
    await connection.send(room.chat())
    assert (await connection.read_response()).status == 200
    return connection


def events_of(body: bytes) -> list[str]:
    return [line[len(b"data: "):].decode() for line in body.split(b"\n\n")
            if line.startswith(b"data: ")]


async def test_a_stream_begun_with_no_task_is_relayed_whole_and_in_order(room: Room) -> None:
    started = count_no_task_starts(room.hub)
    connection = await warm(room)
    room.model.behaviour.tokens = 50
    for _ in range(2):  # Twice on one connection: the second reuses it, as clients do.
        await connection.send(room.chat(stream=True))
        response = await connection.read_response()
        assert response.status == 200 and response.chunked
        assert response.header("Content-Type") == "text/event-stream"
        assert response.header("X-Gambiarra-Participant") == "p1"
        events = events_of(response.body)
        assert events[-1] == "[DONE]"
        text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                       for e in events[:-1])
        assert text == "".join(f"tok{i} " for i in range(50))
    assert started[0] == 3  # The warm-up chat (it dialed with no task) and both streams.
    await connection.close()


async def test_a_pushed_stream_holds_the_model_back_while_the_client_does_not_read(
    room: Room,
) -> None:
    await (await warm(room)).close()  # A pooled connection to the model.
    room.model.behaviour.tokens = 200_000  # About 35 MB: far more than socket buffers hold.
    sent = room.model.token_sent_at
    loop = asyncio.get_running_loop()
    # A plain socket with a small receive buffer, read by nobody (an asyncio reader would
    # keep reading into its own buffer).
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", room.hub.port)), 5)
        await asyncio.wait_for(loop.sock_sendall(sock, room.chat(stream=True)), 5)
        await eventually(lambda: len(sent) > 100, 5.0)
        await asyncio.sleep(1.0)  # The buffers fill.
        stalled = len(sent)
        await asyncio.sleep(0.5)
        assert len(sent) - stalled < 200, "the model kept streaming into the hub's memory"
        assert stalled < 200_000
        tail = b""
        for _ in range(100_000):  # Now it reads: everything arrives (bounded in count).
            data = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 5)
            if not data:
                break
            tail = (tail + data)[-64:]
            if tail.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"):
                break
        assert tail.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
    assert len(sent) == 200_000


async def test_a_pushed_stream_that_breaks_ends_with_an_error_event(room: Room) -> None:
    connection = await warm(room)
    room.model.behaviour.break_stream_after = 5
    await connection.send(room.chat(stream=True))
    response = await connection.read_response()
    events = events_of(response.body)
    assert len(events) == 6  # Five tokens, then the error event.
    error = json.loads(events[-1])["error"]
    assert error["message"].startswith("Failed to proxy request: ")
    room.model.behaviour.break_stream_after = None
    await connection.send(room.chat(stream=True))  # The connection is still good.
    assert events_of((await connection.read_response()).body)[-1] == "[DONE]"
    await connection.close()


async def test_a_pushed_stream_that_fails_before_its_first_chunk_fails_over(
    make_hub: HubFactory, upstream: FakeOpenAIServer
) -> None:
    async with FakeOpenAIServer() as other:
        room = await open_room(make_hub, upstream)
        await join_second(room, other)
        other.behaviour.first_token_delay_s = 0.05  # p1 answers sooner: picked first.
        connection = await warm(room)
        await connection.send(room.chat())  # p2's turn (no timing yet): both are timed now.
        assert (await connection.read_response()).status == 200
        upstream.behaviour.break_stream_after = 0  # Its head, then the connection drops.
        await connection.send(room.chat(stream=True))
        response = await connection.read_response()
        assert response.status == 200
        assert response.header("X-Gambiarra-Participant") == "p2"
        assert events_of(response.body)[-1] == "[DONE]"
        assert upstream.aborted_streams == 1
        await connection.close()


async def test_a_silent_pushed_stream_ends_after_the_idle_timeout(
    make_hub: HubFactory, upstream: FakeOpenAIServer
) -> None:
    room = await open_room(make_hub, upstream, HubConfig(upstream_idle_timeout_s=0.3))
    connection = await warm(room)
    upstream.behaviour.tokens = 3
    upstream.behaviour.token_delay_s = 2.0
    await connection.send(room.chat(stream=True))
    response = await connection.read_response()
    events = events_of(response.body)
    assert "tok0" in events[0]
    assert json.loads(events[-1])["error"]["message"] == (
        "Failed to proxy request: upstream sent nothing for 0.3 s")
    await connection.close()


async def test_a_client_that_leaves_a_pushed_stream_stops_the_model(room: Room) -> None:
    connection = await warm(room)
    room.model.behaviour.tokens = 200
    room.model.behaviour.token_delay_s = 0.02
    await connection.send(room.chat(stream=True))
    await asyncio.wait_for(connection.reader.readuntil(b"\n\n"), 5)  # A first event.
    connection.abort()
    await eventually(lambda: room.model.aborted_streams == 1, 3.0)
    assert room.model.completed_streams == 0


async def test_a_connection_handed_to_aiohttp_is_freed_when_it_closes(room: Room) -> None:
    """Once aiohttp has the transport, the front end never hears that the connection ended,
    so nothing of the front end's (such as an armed deadline timer) may keep it alive."""
    for _ in range(10):
        other = await RawConnection.open(room.hub.port)
        await other.send(request_bytes("GET", f"/rooms/{room.code}/participants"))
        assert (await other.read_response()).status == 200
        await other.close()
    await eventually(lambda: server_of(room.hub).gate.open_count == 0, 3.0)
    await asyncio.sleep(0.1)
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, FrontConnection)] == []
