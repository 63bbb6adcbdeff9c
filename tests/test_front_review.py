"""Review of the chat front end (``hub/front/``, issue 15): each test pins one bug a review
found (each failed before its fix): a chat body read as a request after bad HTTP, bytes for
aiohttp piling up behind a slow answer, pipelined bodies outside the body budget, a stream
to a client that does not read outliving the hub's stop, and the keep-alive timer cutting a
request already begun.

Every test runs a real hub on 127.0.0.1 with real fake model servers and speaks raw bytes
(``tests.raw_http``); every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig
from gambiarra_desktop.hub.api.body_budget import BODY_BUDGET
from gambiarra_desktop.hub.front.connection import FrontConnection
from tests.conftest import HubFactory, eventually
from tests.front_room import JSON_TYPE, Room, open_room
from tests.raw_http import RawConnection, RawResponse, request_bytes


@pytest.fixture
async def room(make_hub: HubFactory, upstream: FakeOpenAIServer) -> AsyncIterator[Room]:
    yield await open_room(make_hub, upstream)


async def read_all_responses(connection: RawConnection, limit: int = 5) -> list[RawResponse]:
    """Every response until the server closes (or ``limit`` of them), each read bounded."""
    responses: list[RawResponse] = []
    for _ in range(limit):
        try:
            responses.append(await connection.read_response(timeout_s=3.0))
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            break
    return responses


# -- 1. a parse error after a hand-over replays the whole TCP segment to aiohttp ------

BAD_CHUNKED = (b"POST /rooms/XXXX/join HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n")
"""A request the front end hands to aiohttp (not the chat route, chunked) whose chunk size
is garbage: llhttp fails on it after the hand-over began, in the same segment."""


async def test_a_chat_body_is_never_read_as_a_request(room: Room) -> None:
    # The chat's body is a request head whose own body covers the malformed request
    # after it: aiohttp, reading from the body's first byte, sees one valid GET.
    smuggled = (f"GET /rooms/{room.code}/participants HTTP/1.1\r\nHost: a\r\n"
                f"Content-Length: {len(BAD_CHUNKED)}\r\n\r\n").encode()
    chat = request_bytes("POST", room.path, smuggled, JSON_TYPE)
    head = chat[:-len(smuggled)]
    connection = await RawConnection.open(room.hub.port)
    await connection.send(head)
    await asyncio.sleep(0.2)  # The body arrives in a segment of its own...
    await connection.send(smuggled + BAD_CHUNKED)  # ...with a malformed request after it.
    responses = await read_all_responses(connection)
    await connection.close()
    statuses = [response.status for response in responses]
    # The chat's body is not JSON (400); the malformed request gets 400. Nothing else:
    # no answer to a request that was only ever a body's bytes.
    assert statuses == [400, 400], (statuses, [r.body[:120] for r in responses])


# -- 2. bytes for aiohttp held behind a chat answer: no bound, no backpressure --------


async def test_bytes_for_aiohttp_behind_a_slow_chat_are_not_buffered_without_bound(
    room: Room,
) -> None:
    room.model.behaviour.first_token_delay_s = 6.0
    connection = await RawConnection.open(room.hub.port)
    try:
        await connection.send(room.chat())
        await eventually(lambda: room.model.in_flight == 1, 3.0)
        huge = 1 << 30
        await connection.send(
            f"POST /rooms/{room.code}/join HTTP/1.1\r\nHost: a\r\n"
            f"Content-Type: application/json\r\nContent-Length: {huge}\r\n\r\n".encode())
        piece = b"x" * (1 << 20)
        sent = 0
        started = time.monotonic()
        try:
            while sent < 48 * len(piece) and time.monotonic() - started < 4.0:
                connection.writer.write(piece)
                await asyncio.wait_for(connection.writer.drain(), 1.5)
                sent += len(piece)
        except TimeoutError:
            pass  # The hub stopped reading: what it must do.
        # Kernel socket buffers on loopback hold a few MiB; the rest is in the hub.
        assert sent < 24 * len(piece), f"the hub read {sent >> 20} MiB it cannot serve yet"
    finally:
        connection.abort()


# -- 3. pipelined chat bodies leave the hub-wide body budget before they are used -----


async def test_pipelined_chat_bodies_stay_within_the_body_budget(
    make_hub: HubFactory, upstream: FakeOpenAIServer,
) -> None:
    limit = 1_000_000
    room = await open_room(make_hub, upstream, HubConfig(
        max_body_bytes=limit, body_read_budget_bytes=limit))
    room.model.behaviour.first_token_delay_s = 3.0
    budget = room.hub.app[BODY_BUDGET]
    big = room.chat(content="x" * 900_000)
    connection = await RawConnection.open(room.hub.port)
    try:
        connection.writer.write(big * 5)  # The first is answered slowly; four wait.
        await asyncio.wait_for(connection.writer.drain(), 5.0)

        def fronts() -> list[FrontConnection]:
            return list(room.server.fronts)

        def held() -> int:
            return sum(len(piece) for front in fronts() for request in front._waiting
                       for piece in request.body)

        # Sampled while the first is answered slowly (bounded: 2 s): what the hub holds in
        # request bodies waiting to be answered stays within the budget.
        most = 0
        for _ in range(100):
            most = max(most, held())
            assert held() <= max(budget.limit_bytes, budget.in_use), (held(), budget.in_use)
            await asyncio.sleep(0.02)
        assert most >= 0
    finally:
        connection.abort()


# -- 4. hub stop with a client that does not read ------------------------------------


async def test_stopping_the_hub_stops_a_stream_whose_client_does_not_read(
    make_hub: HubFactory,
) -> None:
    async with FakeOpenAIServer(models=("llama3.2:3b",)) as model:
        room = await open_room(make_hub, model)
        model.behaviour.tokens = 400_000  # Tens of MB: far more than socket buffers hold.
        gate = room.hub.gate
        assert gate is not None
        connection = await RawConnection.open(room.hub.port)
        try:
            await connection.send(room.chat(stream=True))
            await eventually(lambda: model.in_flight == 1, 3.0)
            await asyncio.sleep(1.0)  # Every buffer fills; the client reads nothing.
            await asyncio.wait_for(room.hub.stop(), 20.0)
            for _ in range(60):  # Bounded: 3 s for the model's call to be dropped.
                if not model.in_flight:
                    break
                await asyncio.sleep(0.05)
            assert model.in_flight == 0, "the model still streams to a stopped hub"
            assert gate.open_count == 0, "the stopped hub still counts the connection"
        finally:
            connection.abort()  # Lets a stuck hub task end before the model stops.
            await eventually(lambda: model.in_flight == 0, 5.0)


# -- 5. the keep-alive timer armed while the next request is being read ---------------


async def test_the_idle_timer_does_not_cut_a_request_already_begun(room: Room) -> None:
    room.server.keepalive_timeout_s = 0.5
    second = room.chat()
    cut = second.index(b"\r\n\r\n") + 4 + 10  # The head and 10 bytes of the body.
    connection = await RawConnection.open(room.hub.port)
    try:
        await connection.send(room.chat() + second[:cut])
        assert (await connection.read_response()).status == 200
        await asyncio.sleep(1.0)  # Longer than the idle timeout, far within the body's 30 s.
        await connection.send(second[cut:])
        assert (await connection.read_response()).status == 200
    finally:
        await connection.close()
