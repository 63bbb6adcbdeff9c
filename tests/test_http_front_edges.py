"""What any HTTP front end of the hub's chat route must get right, pinned at the socket level.

Issue 15 serves ``POST /rooms/CODE/v1/chat/completions`` from a hand-written front end on the
hub's port. Clients that are not aiohttp pipeline, dribble bytes, send ``Expect``, chunk
their bodies, hang up half way and send garbage; each expectation here is what the
aiohttp-served hub answered before that change (status, exact error text, whether the
connection stays open), so the new front end must match it byte for byte where clients can
tell. Requests are written by hand with :mod:`tests.raw_http`; every read is bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig, HubServer
from tests.conftest import Api, HubFactory, eventually
from tests.raw_http import RawConnection, RawResponse, chunked, request_bytes

BODY_LIMIT = 4096
TOO_LARGE = f"Request body too large (limit is {BODY_LIMIT} bytes)"
EXPECTED_TEXT = "".join(f"tok{i} " for i in range(16))
JSON_TYPE = [("Content-Type", "application/json")]


@dataclass
class Edge:
    """A hub with two participants on two real fake model servers: ``alice`` and ``bob``,
    so that which one answered (``X-Gambiarra-Participant``) tells pipelined answers apart."""

    hub: HubServer
    code: str
    alice: FakeOpenAIServer
    bob: FakeOpenAIServer
    http: aiohttp.ClientSession

    @property
    def chat(self) -> str:
        return f"/rooms/{self.code}/v1/chat/completions"

    async def connect(self) -> RawConnection:
        return await RawConnection.open(self.hub.port)

    async def metrics(self, participant: str) -> dict[str, Any]:
        async with self.http.get(f"{self.hub.url}/rooms/{self.code}/participants") as r:
            listing = await r.json()
        return next(p["metrics"] for p in listing["participants"] if p["id"] == participant)


@pytest.fixture
async def edge(
    make_hub: HubFactory, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> AsyncIterator[Edge]:
    hub = await make_hub(HubConfig(max_body_bytes=BODY_LIMIT))
    api = Api(http, hub)
    code = str((await api.create_room())["code"])
    async with FakeOpenAIServer(models=("qwen2.5:0.5b",)) as other:
        status, _ = await api.join(code, id="alice", endpoint=upstream.url)
        assert status == 201
        status, _ = await api.join(code, id="bob", nickname="Bob", model="qwen2.5:0.5b",
                                   endpoint=other.url)
        assert status == 201
        yield Edge(hub, code, upstream, other, http)


def chat_body(model: str = "alice", stream: bool = False, content: str = "hello") -> bytes:
    payload: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if stream:
        payload["stream"] = True
    return json.dumps(payload).encode()


def chat_request(edge: Edge, model: str = "alice", stream: bool = False,
                 headers: list[tuple[str, str]] | None = None, version: str = "HTTP/1.1",
                 suffix: str = "") -> bytes:
    return request_bytes("POST", edge.chat + suffix, chat_body(model, stream),
                         JSON_TYPE + (headers or []), version)


def assert_chat_answer(response: RawResponse, participant: str) -> None:
    """A whole non-streamed answer from ``participant``, with the hub's headers."""
    assert response.status == 200, (response.status, response.body[:300])
    assert response.header("X-Gambiarra-Participant") == participant
    assert (response.header("Content-Type") or "").startswith("application/json")
    answer = response.json()
    assert answer["choices"][0]["message"]["content"] == EXPECTED_TEXT
    assert answer["usage"]["completion_tokens"] == 16


def stream_text(body: bytes) -> str:
    """The content deltas of an SSE answer, which must end with ``data: [DONE]``."""
    assert body.endswith(b"data: [DONE]\n\n"), body[-200:]
    parts: list[str] = []
    for line in body.decode().split("\n"):
        if line.startswith("data: ") and line != "data: [DONE]":
            chunk = json.loads(line[len("data: "):])
            if chunk["choices"]:
                parts.append(chunk["choices"][0]["delta"].get("content") or "")
    return "".join(parts)


def assert_stream_answer(response: RawResponse, participant: str) -> None:
    assert response.status == 200, (response.status, response.body[:300])
    assert response.header("X-Gambiarra-Participant") == participant
    assert response.header("Content-Type") == "text/event-stream"
    assert stream_text(response.body) == EXPECTED_TEXT


def assert_json_error(response: RawResponse, status: int, message: str) -> None:
    assert response.status == status, (response.status, response.body[:300])
    assert (response.header("Content-Type") or "").startswith("application/json")
    assert response.json() == {"error": message}


async def assert_hub_serves(edge: Edge) -> None:
    """A fresh connection still gets a whole chat answer: the hub is healthy."""
    connection = await edge.connect()
    try:
        await connection.send(chat_request(edge))
        assert_chat_answer(await connection.read_response(), "alice")
    finally:
        await connection.close()


# -- 1. pipelining -------------------------------------------------------------------


async def test_two_pipelined_chats_are_answered_in_order_even_when_the_first_is_slower(
    edge: Edge,
) -> None:
    # Alice's model is slower, so a front end that wrote answers as they finish would
    # put Bob's first.
    edge.alice.behaviour.first_token_delay_s = 0.3
    connection = await edge.connect()
    await connection.send(chat_request(edge, "alice") + chat_request(edge, "bob"))
    assert_chat_answer(await connection.read_response(), "alice")
    assert_chat_answer(await connection.read_response(), "bob")
    # Still open and usable for a third request.
    await connection.send(chat_request(edge, "bob"))
    assert_chat_answer(await connection.read_response(), "bob")
    await connection.close()
    assert len(edge.alice.requests) == 1 and len(edge.bob.requests) == 2


async def test_chat_then_models_then_chat_in_one_send(edge: Edge) -> None:
    edge.alice.behaviour.first_token_delay_s = 0.2
    connection = await edge.connect()
    await connection.send(chat_request(edge, "alice")
                          + request_bytes("GET", f"/rooms/{edge.code}/v1/models")
                          + chat_request(edge, "bob"))
    assert_chat_answer(await connection.read_response(), "alice")
    models = await connection.read_response()
    assert models.status == 200
    assert {m["id"] for m in models.json()["data"]} >= {"llama3.2:3b", "qwen2.5:0.5b"}
    assert_chat_answer(await connection.read_response(), "bob")
    await connection.close()


async def test_models_then_chat_in_one_send(edge: Edge) -> None:
    connection = await edge.connect()
    await connection.send(request_bytes("GET", f"/rooms/{edge.code}/v1/models")
                          + chat_request(edge, "alice"))
    models = await connection.read_response()
    assert models.status == 200 and models.json()["object"] == "list"
    assert_chat_answer(await connection.read_response(), "alice")
    await connection.close()


async def test_a_streamed_chat_then_a_plain_one_in_one_send(edge: Edge) -> None:
    edge.alice.behaviour.token_delay_s = 0.01
    connection = await edge.connect()
    await connection.send(chat_request(edge, "alice", stream=True) + chat_request(edge, "bob"))
    streamed = await connection.read_response()
    assert_stream_answer(streamed, "alice")
    assert streamed.chunked  # HTTP/1.1 keep-alive: the stream is framed, not ended by a close.
    assert_chat_answer(await connection.read_response(), "bob")
    await connection.close()


# -- 2. a request split across many TCP segments -------------------------------------


@pytest.mark.parametrize("sizes", [[1], [1, 3, 7, 2, 5, 4, 6]])
async def test_a_chat_written_a_few_bytes_at_a_time(edge: Edge, sizes: list[int]) -> None:
    request = chat_request(edge, "bob")
    connection = await edge.connect()
    pieces = await connection.send_in_pieces(request, sizes)
    assert pieces >= len(request) // 7
    assert_chat_answer(await connection.read_response(), "bob")
    await connection.close()


async def test_a_chat_split_inside_the_blank_line_and_the_body(edge: Edge) -> None:
    request = chat_request(edge, "alice")
    head_end = request.index(b"\r\n\r\n")
    cuts = [head_end + 1, head_end + 2, head_end + 3, head_end + 4, head_end + 10]
    connection = await edge.connect()
    start = 0
    for cut in cuts:
        await connection.send(request[start:cut])
        assert await connection.read_available(0.03) == b""  # Nothing answered early.
        start = cut
    await connection.send(request[start:])
    assert_chat_answer(await connection.read_response(), "alice")
    await connection.close()


async def test_a_get_to_another_route_written_a_few_bytes_at_a_time(edge: Edge) -> None:
    connection = await edge.connect()
    await connection.send_in_pieces(
        request_bytes("GET", f"/rooms/{edge.code}/participants"), [2, 5, 1, 7])
    listing = await connection.read_response()
    assert listing.status == 200
    assert {p["id"] for p in listing.json()["participants"]} == {"alice", "bob"}
    # Then a chat, dribbled too, on the same connection.
    await connection.send_in_pieces(chat_request(edge, "alice"), [3, 1, 6])
    assert_chat_answer(await connection.read_response(), "alice")
    await connection.close()


# -- 3. Expect: 100-continue ---------------------------------------------------------


async def test_expect_100_continue_is_answered_before_the_body_is_sent(edge: Edge) -> None:
    body = chat_body("bob")
    head = request_bytes("POST", edge.chat, b"", [*JSON_TYPE, ("Expect", "100-continue"),
                                                  ("Content-Length", str(len(body)))],
                         length=False)
    connection = await edge.connect()
    await connection.send(head)
    interim = await connection.read_response()
    assert (interim.status, interim.body) == (100, b"")
    assert await connection.read_available(0.1) == b""  # Nothing more until the body.
    await connection.send(body)
    assert_chat_answer(await connection.read_response(), "bob")
    await connection.close()


async def test_expect_with_a_too_large_length_gets_413_without_the_body(edge: Edge) -> None:
    head = request_bytes("POST", edge.chat, b"", [*JSON_TYPE, ("Expect", "100-continue"),
                                                  ("Content-Length", str(BODY_LIMIT * 10))],
                         length=False)
    connection = await edge.connect()
    await connection.send(head)
    response = await connection.read_response()
    if response.status == 100:
        # Today's hub (aiohttp) sends 100 Continue even for a body it then refuses; a front
        # end that refuses straight away is better. Either way the 413 comes unasked.
        response = await connection.read_response()
    assert_json_error(response, 413, TOO_LARGE)
    assert response.header("Access-Control-Allow-Origin") == "*"
    await connection.close()
    assert edge.alice.requests == [] and edge.bob.requests == []


# -- 4. chunked request bodies -------------------------------------------------------


async def test_a_chunked_body_in_odd_chunks_written_oddly(edge: Edge) -> None:
    body = chunked(chat_body("alice"), [1, 7, 30, 2])
    body = body.replace(b"\r\n", b";note=x\r\n", 1)  # A chunk extension, which must be ignored.
    request = request_bytes("POST", edge.chat, body,
                            [*JSON_TYPE, ("Transfer-Encoding", "chunked")], length=False)
    connection = await edge.connect()
    await connection.send_in_pieces(request, [5, 1, 9, 3])
    assert_chat_answer(await connection.read_response(), "alice")
    assert edge.alice.requests[-1]["messages"] == [{"role": "user", "content": "hello"}]
    # The connection is ready for the next request right after the last chunk.
    await connection.send(chat_request(edge, "bob"))
    assert_chat_answer(await connection.read_response(), "bob")
    await connection.close()


async def assert_served_after_refusal(connection: RawConnection) -> None:
    """After a 413 whose body was sent, the connection either closes or answers the
    pipelined chat that followed the refused body (today's hub drains the body and
    answers it); it never reads the refused body as a request."""
    try:
        following = await connection.read_response()
    except (asyncio.IncompleteReadError, ConnectionError):
        return  # Closed after the refusal.
    assert_chat_answer(following, "bob")


async def test_a_chunked_body_over_the_limit_gets_413(edge: Edge) -> None:
    big = chat_body("alice", content="x" * (BODY_LIMIT + 100))
    request = request_bytes("POST", edge.chat, chunked(big, [1000]),
                            [*JSON_TYPE, ("Transfer-Encoding", "chunked")], length=False)
    connection = await edge.connect()
    await connection.send(request + chat_request(edge, "bob"))
    response = await connection.read_response()
    assert_json_error(response, 413, TOO_LARGE)
    await assert_served_after_refusal(connection)
    await connection.close()
    assert edge.alice.requests == []


# -- 7. oversized body by Content-Length ---------------------------------------------


async def test_a_body_over_the_limit_by_content_length_gets_413(edge: Edge) -> None:
    big = chat_body("alice", content="x" * (BODY_LIMIT + 100))
    connection = await edge.connect()
    await connection.send(request_bytes("POST", edge.chat, big, JSON_TYPE)
                          + chat_request(edge, "bob"))
    response = await connection.read_response()
    assert_json_error(response, 413, TOO_LARGE)
    assert response.header("Access-Control-Allow-Origin") == "*"
    await assert_served_after_refusal(connection)
    await connection.close()
    assert edge.alice.requests == []


async def test_a_declared_length_over_the_default_limit_is_refused_before_its_body(
    make_hub: HubFactory, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    hub = await make_hub()
    api = Api(http, hub)
    code = (await api.create_room())["code"]
    assert (await api.join(code, id="alice", endpoint=upstream.url))[0] == 201
    limit = HubConfig().max_body_bytes
    connection = await RawConnection.open(hub.port)
    # Only the head is sent: the answer must not wait for 10 MB that never come.
    await connection.send(request_bytes(
        "POST", f"/rooms/{code}/v1/chat/completions", b"",
        [*JSON_TYPE, ("Content-Length", str(limit + 1))], length=False))
    response = await connection.read_response()
    assert_json_error(response, 413, f"Request body too large (limit is {limit} bytes)")
    await connection.close()
    assert upstream.requests == []


# -- 5. a client that closes mid-request ---------------------------------------------


@pytest.mark.parametrize("where", ["half a head", "half a body", "head without body"])
async def test_a_client_that_leaves_mid_request_costs_nothing(edge: Edge, where: str) -> None:
    request = chat_request(edge, "alice")
    head_end = request.index(b"\r\n\r\n") + 4
    cut = {"half a head": head_end // 2, "half a body": head_end + (len(request) - head_end) // 2,
           "head without body": head_end}[where]
    connection = await edge.connect()
    await connection.send(request[:cut])
    await asyncio.sleep(0.05)
    await connection.close()
    await asyncio.sleep(0.05)
    await assert_hub_serves(edge)
    assert len(edge.alice.requests) == 1  # Only the healthy request reached the model.
    metrics = await edge.metrics("alice")
    assert metrics["inFlight"] == 0 and metrics["requests"] == 1 and metrics["errors"] == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_a_client_that_leaves_while_the_model_is_slow_cancels_the_upstream_call(
    edge: Edge, stream: bool
) -> None:
    edge.alice.behaviour.first_token_delay_s = 5.0
    connection = await edge.connect()
    await connection.send(chat_request(edge, "alice", stream=stream))
    await eventually(lambda: edge.alice.in_flight == 1, 3.0)
    connection.abort()
    started = time.monotonic()
    # The model would answer after 5 s; the hub drops its call as soon as the client left.
    await eventually(lambda: edge.alice.in_flight == 0, 3.0)
    assert time.monotonic() - started < 3.0
    edge.alice.behaviour.first_token_delay_s = 0.0

    async def in_flight() -> int:
        return int((await edge.metrics("alice"))["inFlight"])

    deadline = time.monotonic() + 3.0
    while await in_flight() != 0:
        assert time.monotonic() < deadline, "participant's in-flight count stuck"
        await asyncio.sleep(0.02)
    await assert_hub_serves(edge)


async def test_a_client_that_leaves_mid_stream_cancels_the_upstream_stream(
    edge: Edge,
) -> None:
    edge.alice.behaviour.tokens = 40
    edge.alice.behaviour.token_delay_s = 0.05
    connection = await edge.connect()
    await connection.send(chat_request(edge, "alice", stream=True))
    head = await asyncio.wait_for(connection.reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert await asyncio.wait_for(connection.reader.readuntil(b"\n\n"), 5)  # A first event.
    connection.abort()
    await eventually(lambda: edge.alice.aborted_streams == 1, 3.0)
    assert edge.alice.completed_streams == 0
    edge.alice.behaviour.tokens = 16
    edge.alice.behaviour.token_delay_s = 0.0
    await assert_hub_serves(edge)


# -- 6. oversized headers ------------------------------------------------------------

HEADERS_TOO_LARGE = {400: "Bad request", 431: "Request header fields too large"}
"""Today aiohttp answers 400 "Bad request" (with an HTTP/1.0 status line); 431 is the
precise status. Either, in JSON with its exact text from ``STATUS_MESSAGES``, then a close."""


@pytest.mark.parametrize("headers", [
    pytest.param([("X-Long", "y" * 9000)], id="one header line over 8 KiB"),
    pytest.param([(f"X-H{i}", "v") for i in range(200)], id="200 headers"),
])
async def test_oversized_headers_get_a_json_error_and_a_close(
    edge: Edge, headers: list[tuple[str, str]]
) -> None:
    connection = await edge.connect()
    await connection.send(chat_request(edge, headers=headers))
    response = await connection.read_response()
    assert response.status in HEADERS_TOO_LARGE, response.status
    assert_json_error(response, response.status, HEADERS_TOO_LARGE[response.status])
    assert await connection.closed_by_server()
    assert edge.alice.requests == []
    await assert_hub_serves(edge)


@pytest.mark.parametrize("headers", [
    pytest.param([("X-Long", "y" * 8000)], id="a header line of 8000 bytes"),
    pytest.param([(f"X-H{i}", "v") for i in range(100)], id="100 headers"),
])
async def test_large_but_allowed_headers_are_served(
    edge: Edge, headers: list[tuple[str, str]]
) -> None:
    connection = await edge.connect()
    await connection.send(chat_request(edge, headers=headers))
    assert_chat_answer(await connection.read_response(), "alice")
    await connection.close()


# -- 8. connection handling and the query string -------------------------------------


async def test_http_1_0_without_keep_alive_is_answered_then_closed(edge: Edge) -> None:
    connection = await edge.connect()
    await connection.send(chat_request(edge, "alice", version="HTTP/1.0"))
    response = await connection.read_response()
    assert_chat_answer(response, "alice")
    assert await connection.closed_by_server()


async def test_a_stream_to_http_1_0_is_not_chunked_and_ends_with_the_close(edge: Edge) -> None:
    connection = await edge.connect()
    await connection.send(chat_request(edge, "alice", stream=True, version="HTTP/1.0"))
    response = await connection.read_response()
    assert not response.chunked and response.header("Content-Length") is None
    assert_stream_answer(response, "alice")  # Read until the close: the body is whole.


async def test_connection_close_on_1_1_is_answered_then_closed(edge: Edge) -> None:
    connection = await edge.connect()
    await connection.send(chat_request(edge, "bob", headers=[("Connection", "close")]))
    assert_chat_answer(await connection.read_response(), "bob")
    assert await connection.closed_by_server()


async def test_a_query_string_on_the_chat_path_is_ignored(edge: Edge) -> None:
    connection = await edge.connect()
    await connection.send(chat_request(edge, "alice", suffix="?x=1&model=bob"))
    assert_chat_answer(await connection.read_response(), "alice")
    assert not await connection.closed_by_server(0.2)  # Kept alive.
    await connection.close()


# -- 9. CORS and the hub's headers ---------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_fast_answers_carry_cors_and_the_hub_headers(edge: Edge, stream: bool) -> None:
    connection = await edge.connect()
    await connection.send(chat_request(edge, "bob", stream=stream,
                                       headers=[("Origin", "http://example.com")]))
    response = await connection.read_response()
    assert response.header("Access-Control-Allow-Origin") == "*"
    assert response.header("X-Gambiarra-Participant") == "bob"
    assert int(response.header("X-Gambiarra-Queue-Ms") or "-1") >= 0
    if stream:
        assert_stream_answer(response, "bob")
        assert response.header("X-Accel-Buffering") == "no"
        assert response.header("Cache-Control") == "no-cache"
    else:
        assert_chat_answer(response, "bob")
    await connection.close()


async def test_options_preflight_on_the_chat_path(edge: Edge) -> None:
    connection = await edge.connect()
    preflight = [("Origin", "http://example.com"), ("Access-Control-Request-Method", "POST"),
                 ("Access-Control-Request-Headers", "content-type, authorization")]
    await connection.send(request_bytes("OPTIONS", edge.chat, b"", preflight))
    response = await connection.read_response()
    assert (response.status, response.body) == (204, b"")
    assert response.header("Access-Control-Allow-Origin") == "*"
    assert response.header("Access-Control-Allow-Methods") == "GET, POST, DELETE, OPTIONS"
    assert response.header("Access-Control-Allow-Headers") == "Content-Type, Authorization"
    assert response.header("Access-Control-Allow-Private-Network") is None
    # Chrome's Private Network Access opt-in, for a page on a private network only.
    await connection.send(request_bytes("OPTIONS", edge.chat, b"", [
        ("Origin", "http://192.168.1.20:8080"), ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Private-Network", "true")]))
    response = await connection.read_response()
    assert response.status == 204
    assert response.header("Access-Control-Allow-Private-Network") == "true"
    await connection.close()
    assert edge.alice.requests == [] and edge.bob.requests == []


# -- 10. malformed HTTP --------------------------------------------------------------

MALFORMED = {
    "garbage request line": b"GARBAGE\r\n\r\n",
    "control byte in a header name": b"Bad\x01Header: v\r\nContent-Length: 2\r\n\r\n{}",
    "NUL in a header value": b"X: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
    "header line without a colon": b"Bad Header Line\r\n\r\n",
    "non-numeric Content-Length": b"Content-Length: zz\r\n\r\n",
    "negative Content-Length": b"Content-Length: -1\r\n\r\n",
    "two Content-Lengths": b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    "Content-Length and chunked": (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"0\r\n\r\n"),
    "bad chunk size": b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    "bare LF line ends": b"\n",
}


@pytest.mark.parametrize("tail", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_malformed_http_on_the_chat_path_gets_400_json_and_a_close(
    edge: Edge, tail: bytes
) -> None:
    if tail == b"GARBAGE\r\n\r\n":
        data = tail
    elif tail == b"\n":
        data = (f"POST {edge.chat} HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                "Content-Length: 2\n\n{}").encode()
    else:
        data = f"POST {edge.chat} HTTP/1.1\r\nHost: x\r\n".encode() + tail
    connection = await edge.connect()
    await connection.send(data)
    response = await connection.read_response()
    assert_json_error(response, 400, "Bad request")
    assert await connection.closed_by_server()
    assert edge.alice.requests == [] and edge.bob.requests == []


async def test_a_1_1_request_without_host_gets_400(edge: Edge) -> None:
    connection = await edge.connect()
    body = chat_body()
    await connection.send(f"POST {edge.chat} HTTP/1.1\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert_json_error(await connection.read_response(), 400, "Bad request")
    assert await connection.closed_by_server()


async def test_an_over_long_request_line_gets_400_and_a_close(edge: Edge) -> None:
    connection = await edge.connect()
    await connection.send(chat_request(edge, suffix="?q=" + "a" * 9000))
    assert_json_error(await connection.read_response(), 400, "Bad request")
    assert await connection.closed_by_server()


# -- route edges the front end must route exactly as aiohttp does ---------------------


async def test_route_edges_answer_as_before_and_keep_the_connection(edge: Edge) -> None:
    body = chat_body("alice")
    lower = edge.chat.replace(edge.code, edge.code.lower())
    cases: list[tuple[bytes, int, str | None]] = [
        (request_bytes("POST", lower, body, JSON_TYPE), 200, None),
        (request_bytes("POST", "/rooms/ZZZZZZ/v1/chat/completions", body, JSON_TYPE), 404,
         "Room not found"),
        (request_bytes("POST", edge.chat + "/", body, JSON_TYPE), 404, "Not found"),
        (request_bytes("GET", edge.chat), 405, "Method not allowed"),
        (request_bytes("POST", edge.chat, body), 415, "Content-Type must be application/json"),
        (request_bytes("POST", edge.chat, body, [("Content-Type", "text/plain")]), 415,
         "Content-Type must be application/json"),
        (request_bytes("POST", edge.chat, body, [*JSON_TYPE, ("Content-Encoding", "gzip")]),
         415, "Content-Encoding is not supported; send an uncompressed JSON body"),
        (request_bytes("POST", edge.chat, b"", JSON_TYPE), 400, "Invalid JSON body"),
        (request_bytes("POST", edge.chat, b"[1]", JSON_TYPE), 400,
         "Request body must be a JSON object"),
    ]
    connection = await edge.connect()
    for request, status, message in cases:
        await connection.send(request)
        response = await connection.read_response()
        if message is None:
            assert_chat_answer(response, "alice")
        else:
            assert_json_error(response, status, message)
            assert response.header("Access-Control-Allow-Origin") == "*"
        if status == 405:
            assert response.header("Allow") == "POST"
    # HEAD: 405 with no body; then the same connection still serves a chat.
    await connection.send(request_bytes("HEAD", edge.chat))
    head = await connection.read_response(head_only=True)
    assert head.status == 405 and head.header("Allow") == "POST"
    await connection.send(chat_request(edge, "bob"))
    assert_chat_answer(await connection.read_response(), "bob")
    await connection.close()
    assert len(edge.alice.requests) == 1
