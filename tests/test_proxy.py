"""Chat completions through the hub, driven by the official openai SDK against real servers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig, HubServer
from tests.conftest import Api, HubFactory
from tests.upstreams import StaleKeepAliveServer

EXPECTED_TEXT = "".join(f"tok{i} " for i in range(16))


@pytest.fixture
async def room_code(api: Api, upstream: FakeOpenAIServer) -> str:
    room = await api.create_room()
    status, _ = await api.join(room["code"], id="alice", endpoint=upstream.url)
    assert status == 201
    return str(room["code"])


@pytest.fixture
async def sdk(hub: HubServer, room_code: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(
        base_url=f"{hub.url}/rooms/{room_code}/v1", api_key="not-needed", max_retries=0,
        timeout=20,
    )
    yield client
    await client.close()


MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("model", ["alice", "*", "any", "model:llama3.2:3b", "llama3.2:3b"])
async def test_sdk_non_streaming_through_each_model_form(
    sdk: openai.AsyncOpenAI, upstream: FakeOpenAIServer, model: str
) -> None:
    completion = await sdk.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == EXPECTED_TEXT
    assert completion.usage is not None and completion.usage.completion_tokens == 16
    # The upstream gets the participant's real model name, whatever the client asked for.
    assert upstream.requests[-1]["model"] == "llama3.2:3b"
    assert upstream.requests[-1]["messages"] == MESSAGES


async def test_sdk_streaming(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(model="*", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    assert "".join(parts) == EXPECTED_TEXT


async def test_streaming_is_unbuffered(
    sdk: openai.AsyncOpenAI, upstream: FakeOpenAIServer
) -> None:
    upstream.behaviour.tokens = 6
    upstream.behaviour.token_delay_s = 0.2
    stream = await sdk.chat.completions.create(model="*", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    arrivals: list[float] = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter())
    sent = upstream.token_sent_at
    assert len(arrivals) == len(sent) == 6
    # The first token reached the client about a second before the last one was produced.
    assert arrivals[0] < sent[-1] - 0.6
    # And each token arrived before the upstream produced the one after it.
    for index in range(5):
        assert arrivals[index] < sent[index + 1], index


async def test_stream_headers(http: aiohttp.ClientSession, hub: HubServer, room_code: str) -> None:
    url = f"{hub.url}/rooms/{room_code}/v1/chat/completions"
    payload = {"model": "*", "messages": MESSAGES, "stream": True}
    async with http.post(url, json=payload) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["X-Accel-Buffering"] == "no"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        body = await response.text()
    assert body.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize("password", [None, "pw-for-the-task-path"])
async def test_a_whole_answer_to_a_request_for_a_stream_stays_whole_json(
        http: aiohttp.ClientSession, api: Api, hub: HubServer, upstream: FakeOpenAIServer,
        password: str | None) -> None:
    """A model that answers ``stream: true`` with one JSON object: relayed as the JSON it
    is, not relabelled as an event stream no client could read. Twice: the second goes
    over a kept-alive connection (the front end's no-task path, for a room with no
    password); a password room takes the task path."""
    upstream.behaviour.whole_when_streaming = True
    code = (await api.create_room(password=password))["code"]
    status, _ = await api.join(code, id="alice", endpoint=upstream.url,
                               **({"password": password} if password else {}))
    assert status == 201
    headers = {"Authorization": f"Bearer {password}"} if password else {}
    for _ in range(2):
        async with http.post(f"{hub.url}/rooms/{code}/v1/chat/completions", headers=headers,
                             json={"model": "*", "messages": MESSAGES, "stream": True}) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"].startswith("application/json")
            assert answer.headers["X-Gambiarra-Participant"] == "alice"
            reply = await answer.json()
        assert reply["choices"][0]["message"]["content"] == EXPECTED_TEXT


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_errors_pass_through_with_status_and_body(
    http: aiohttp.ClientSession, hub: HubServer, room_code: str, upstream: FakeOpenAIServer,
    stream: bool,
) -> None:
    upstream.behaviour.error_status = 429
    url = f"{hub.url}/rooms/{room_code}/v1/chat/completions"
    async with http.post(url, json={"model": "*", "messages": MESSAGES, "stream": stream}) as r:
        assert r.status == 429
        assert r.content_type == "application/json"  # Not labelled as an event stream.
        assert await r.json() == upstream.behaviour.error_body


async def test_sdk_sees_upstream_error_as_api_error(
    sdk: openai.AsyncOpenAI, upstream: FakeOpenAIServer
) -> None:
    upstream.behaviour.error_status = 500
    with pytest.raises(openai.InternalServerError) as caught:
        await sdk.chat.completions.create(model="*", messages=MESSAGES)  # type: ignore[arg-type]
    assert "model exploded" in str(caught.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_participant_gives_502(api: Api) -> None:
    room = await api.create_room()
    port = _closed_port()
    await api.join(room["code"], id="gone", endpoint=f"http://127.0.0.1:{port}")
    status, body = await api.call(
        "POST", f"/rooms/{room['code']}/v1/chat/completions", {"model": "gone", "messages": []}
    )
    assert status == 502
    assert body["error"] == (
        f"Failed to proxy request: cannot connect to 127.0.0.1:{port}: connection refused")


async def test_first_byte_timeout_gives_502(
    make_hub: HubFactory, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    hub = await make_hub(HubConfig(upstream_first_byte_timeout_s=0.3))
    api = Api(http, hub)
    room = await api.create_room()
    await api.join(room["code"], endpoint=upstream.url)
    upstream.behaviour.first_token_delay_s = 3
    started = time.monotonic()
    status, body = await api.call(
        "POST", f"/rooms/{room['code']}/v1/chat/completions", {"model": "*", "messages": []}
    )
    assert status == 502
    assert "within 0.3 s" in body["error"]
    assert time.monotonic() - started < 2.5


async def test_unknown_model_is_404_and_offline_participant_is_503(api: Api) -> None:
    from gambiarra_desktop.hub.keys import REGISTRY

    room = await api.create_room()
    code = room["code"]
    url = f"/rooms/{code}/v1/chat/completions"
    assert await api.call("POST", url, {"model": "*"}) == (
        404, {"error": "No available participant for the requested model"})
    await api.join(code, id="alice", model="m1")
    assert await api.call("POST", url, {"model": "model:other"}) == (
        404, {"error": "No available participant for the requested model"})
    assert await api.call("POST", url, {"model": "other"}) == (
        404, {"error": "No available participant for the requested model"})
    api.hub.app[REGISTRY].get(code).participants["alice"]["status"] = "offline"  # type: ignore[union-attr]
    assert await api.call("POST", url, {"model": "alice"}) == (
        503, {"error": "Participant is offline"})
    assert await api.call("POST", url, {"model": "m1"}) == (
        404, {"error": "No available participant for the requested model"})


async def test_chat_body_must_name_a_model(api: Api) -> None:
    room = await api.create_room()
    url = f"/rooms/{room['code']}/v1/chat/completions"
    assert await api.call("POST", url, {"messages": []}) == (
        400, {"error": "Missing required field: model"})
    assert await api.call("POST", url, {"model": 7}) == (
        400, {"error": "Invalid field: model must be a string"})
    assert (await api.call("POST", url, raw=b"{oops"))[0] == 400


async def test_endpoint_with_v1_suffix_works(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    await api.join(room["code"], endpoint=upstream.url + "/v1/")
    status, body = await api.call(
        "POST", f"/rooms/{room['code']}/v1/chat/completions", {"model": "*", "messages": []}
    )
    assert status == 200
    assert body["choices"][0]["message"]["content"] == EXPECTED_TEXT


async def test_client_disconnect_cancels_the_upstream_request(
    http: aiohttp.ClientSession, hub: HubServer, room_code: str, upstream: FakeOpenAIServer
) -> None:
    upstream.behaviour.tokens = 100
    upstream.behaviour.token_delay_s = 0.05
    url = f"{hub.url}/rooms/{room_code}/v1/chat/completions"
    response = await http.post(url, json={"model": "*", "messages": MESSAGES, "stream": True})
    await response.content.readany()
    response.close()  # The client walks away mid-stream.
    deadline = time.monotonic() + 3
    while upstream.aborted_streams == 0:
        assert time.monotonic() < deadline, "the upstream kept generating for a gone client"
        await asyncio.sleep(0.02)
    assert upstream.completed_streams == 0
    assert len(upstream.token_sent_at) < 100


async def test_stream_that_breaks_midway_ends_with_an_error_chunk(
    http: aiohttp.ClientSession, hub: HubServer, room_code: str, upstream: FakeOpenAIServer
) -> None:
    upstream.behaviour.break_stream_after = 3
    url = f"{hub.url}/rooms/{room_code}/v1/chat/completions"
    async with http.post(url, json={"model": "*", "messages": MESSAGES, "stream": True}) as r:
        assert r.status == 200
        text = await r.text()
    assert text.count("tok") == 3
    last_event = text.strip().split("\n\n")[-1]
    assert last_event.startswith('data: {"error": {"message": "Failed to proxy request: ')


async def test_stale_pooled_connection_is_retried_once(api: Api) -> None:
    stale = StaleKeepAliveServer()
    await stale.start()
    try:
        room = await api.create_room()
        await api.join(room["code"], endpoint=stale.url)
        url = f"/rooms/{room['code']}/v1/chat/completions"
        for _ in range(3):
            status, body = await api.call("POST", url, {"model": "*", "messages": []})
            assert status == 200, body
            assert body["choices"][0]["message"]["content"] == "fresh"
        assert stale.dropped_requests >= 1, "the test never hit a stale connection"
        assert stale.answered == 3
    finally:
        await stale.stop()


async def test_models_list_covers_online_participants_and_model_names(api: Api) -> None:
    from gambiarra_desktop.hub.keys import REGISTRY

    room = await api.create_room()
    code = room["code"]
    await api.join(code, id="a", nickname="Alice", model="llama3.2:3b")
    await api.join(code, id="b", nickname="Bob", model="llama3.2:3b")
    await api.join(code, id="c", nickname="Carol", model="qwen2.5:7b")
    await api.join(code, id="d", nickname="Dan", model="gone-model")
    api.hub.app[REGISTRY].get(code).participants["d"]["status"] = "offline"  # type: ignore[union-attr]
    status, body = await api.call("GET", f"/rooms/{code}/v1/models")
    assert status == 200
    assert body["object"] == "list"
    entries = {entry["id"]: entry for entry in body["data"]}
    assert set(entries) == {"a", "b", "c", "llama3.2:3b", "qwen2.5:7b"}
    assert all(entry["object"] == "model" for entry in body["data"])
    assert entries["a"]["owned_by"] == "Alice"
    assert entries["a"]["gambiarra"]["model"] == "llama3.2:3b"
    assert entries["llama3.2:3b"]["owned_by"] == "Alice, Bob"
    assert entries["qwen2.5:7b"]["owned_by"] == "Carol"


async def test_sdk_lists_models(sdk: openai.AsyncOpenAI) -> None:
    models = [model.id async for model in sdk.models.list()]
    assert models == ["alice", "llama3.2:3b"]
