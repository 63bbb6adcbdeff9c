"""The first chat to a participant with no open connection: dialed in a task that ends once
connected, then sent and answered from callbacks, as a chat over a pooled connection is
(issue 15: a held stream then keeps no task and no coroutine frames)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub.keys import PROXY, REGISTRY
from tests.conftest import Api, HubFactory, eventually
from tests.front_room import Room, count_no_task_starts, open_room
from tests.raw_http import RawConnection


def dial_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks()
            if "UpstreamPool.dial" in repr(task.get_coro())]


@pytest.fixture
def unanswering_port() -> Iterator[int]:
    """A loopback port whose connects hang: its listener never accepts, and one waiting
    connection fills its queue, so the kernel drops every later SYN."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.socket()
    filler.connect(("127.0.0.1", port))
    try:
        yield port
    finally:
        filler.close()
        listener.close()


async def join(room: Room, pid: str, endpoint: str) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        status, body = await Api(http, room.hub).join(room.code, id=pid, endpoint=endpoint)
    assert status == 201, body


async def in_flight(room: Room) -> dict[str, int]:
    return {pid: int(metrics["inFlight"]) for pid, metrics in (await metrics_of(room)).items()}


async def test_a_first_stream_is_dialed_and_pushed_with_no_task(
    make_hub: HubFactory, upstream: FakeOpenAIServer
) -> None:
    room = await open_room(make_hub, upstream)
    started = count_no_task_starts(room.hub)
    upstream.behaviour.tokens = 20
    connection = await RawConnection.open(room.hub.port)
    await connection.send(room.chat(stream=True))
    response = await connection.read_response()
    assert response.status == 200 and response.chunked
    events = [line[6:].decode() for line in response.body.split(b"\n\n")
              if line.startswith(b"data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                   for e in events[:-1])
    assert text == "".join(f"tok{i} " for i in range(20))
    assert started[0] == 1 and dial_tasks() == []
    await connection.close()


async def test_a_first_whole_answer_is_dialed_with_no_task_and_pools_its_connection(
    make_hub: HubFactory, upstream: FakeOpenAIServer
) -> None:
    room = await open_room(make_hub, upstream)
    started = count_no_task_starts(room.hub)
    for _ in range(3):
        connection = await RawConnection.open(room.hub.port)
        await connection.send(room.chat())
        response = await connection.read_response()
        assert response.status == 200
        assert response.json()["choices"][0]["message"]["content"]
        await connection.close()
    assert started[0] == 3
    idle = room.hub.app[PROXY].pool._idle
    assert sum(len(connections) for connections in idle.values()) == 1  # Dialed once.


def refusing_port() -> int:
    """A loopback port nothing listens on: connecting is refused."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = int(closed.getsockname()[1])
    closed.close()
    return port


def chat_for(room: Room, model: str) -> bytes:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    return (f"POST {room.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


async def metrics_of(room: Room) -> dict[str, dict[str, Any]]:
    connector = aiohttp.TCPConnector(force_close=True)
    async with (aiohttp.ClientSession(connector=connector) as http,
                http.get(f"{room.hub.url}/rooms/{room.code}/participants") as response):
        listing = await response.json()
    return {p["id"]: p["metrics"] for p in listing["participants"]}


async def test_a_failed_dial_fails_over_as_the_task_path_does(
    make_hub: HubFactory, upstream: FakeOpenAIServer
) -> None:
    room = await open_room(make_hub, upstream)  # p1: the model.
    await join(room, "dead", f"http://127.0.0.1:{refusing_port()}")
    started = count_no_task_starts(room.hub)
    answered_by = set()
    for _ in range(4):
        connection = await RawConnection.open(room.hub.port)
        await connection.send(room.chat())
        response = await connection.read_response()
        assert response.status == 200, response.body
        answered_by.add(response.header("X-Gambiarra-Participant"))
        await connection.close()
    assert answered_by == {"p1"}
    assert started[0] >= 1
    assert (await metrics_of(room))["dead"]["errors"] >= 1  # It was tried, and failed over.


async def test_a_failed_dial_with_nobody_else_says_why(
    make_hub: HubFactory, upstream: FakeOpenAIServer
) -> None:
    room = await open_room(make_hub, upstream)
    await join(room, "dead", f"http://127.0.0.1:{refusing_port()}")
    connection = await RawConnection.open(room.hub.port)
    await connection.send(chat_for(room, "dead"))
    response = await connection.read_response()
    assert response.status == 502
    assert "connection refused" in response.json()["error"]
    await connection.close()


async def test_a_client_that_leaves_while_the_hub_dials_frees_the_slot(
    make_hub: HubFactory, upstream: FakeOpenAIServer, unanswering_port: int
) -> None:
    room = await open_room(make_hub, upstream)
    await join(room, "slow", f"http://127.0.0.1:{unanswering_port}")
    started = count_no_task_starts(room.hub)
    connection = await RawConnection.open(room.hub.port)
    await connection.send(chat_for(room, "slow"))
    await eventually(lambda: len(dial_tasks()) == 1, 3.0)
    assert started[0] == 1
    assert (await in_flight(room))["slow"] == 1
    connection.abort()
    await eventually(lambda: dial_tasks() == [], 3.0)  # Cancelled, not left to time out.
    for _ in range(100):  # Bounded: 2 s.
        if (await in_flight(room))["slow"] == 0:
            break
        await asyncio.sleep(0.02)
    assert (await in_flight(room))["slow"] == 0


async def test_an_endpoint_no_request_can_go_to_gets_the_task_paths_reason(
    make_hub: HubFactory, upstream: FakeOpenAIServer
) -> None:
    """An endpoint stored before URLs were normalized (not plain ASCII): nothing is dialed
    for it, and the client hears why, as the aiohttp route says it."""
    room = await open_room(make_hub, upstream)
    participant = room.hub.app[REGISTRY].get(room.code).participants["p1"]
    participant["endpoint"] = upstream.url + "/\u00fc"
    connection = await RawConnection.open(room.hub.port)
    await connection.send(room.chat())
    response = await connection.read_response()
    assert response.status == 502
    assert response.json()["error"] == (
        "Failed to proxy request: the endpoint URL is not plain ASCII")
    assert dial_tasks() == [] and (await in_flight(room))["p1"] == 0
    await connection.close()
