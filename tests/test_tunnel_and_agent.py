"""The participant agent and its outbound tunnel, against real hubs and model servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import openai
import pytest
from aiohttp import web

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.share.agent import AgentStatus, ShareAgent, ShareSettings
from tests.conftest import Api

TOKENS = "".join(f"tok{i} " for i in range(16))
MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "hi"}]


async def eventually(predicate: Callable[[], object], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def fast_settings(code: str, endpoint: str, **overrides: object) -> ShareSettings:
    settings = ShareSettings(
        room_code=code, model="llama3.2:3b", endpoint=endpoint, nickname="Tunnelled",
        health_interval_s=0.1, backoff_initial_s=0.05, backoff_max_s=0.2,
        config={"maxConcurrent": 4},  # The fake model server answers several at once.
    )
    for name, value in overrides.items():
        setattr(settings, name, value)
    return settings


@pytest.fixture
async def shared(
    api: Api, upstream: FakeOpenAIServer
) -> AsyncIterator[tuple[str, ShareAgent, list[AgentStatus]]]:
    room = await api.create_room()
    statuses: list[AgentStatus] = []
    agent = ShareAgent(api.hub.url, fast_settings(room["code"], upstream.url), statuses.append)
    await agent.start()
    await eventually(lambda: agent.status.state == "sharing")
    yield room["code"], agent, statuses
    await agent.stop()


def sdk_for(hub: HubServer, code: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{hub.url}/rooms/{code}/v1", api_key="x",
                              max_retries=0, timeout=20)


async def test_agent_shares_through_the_tunnel(
    api: Api, shared: tuple[str, ShareAgent, list[AgentStatus]], upstream: FakeOpenAIServer
) -> None:
    code, agent, statuses = shared
    assert [s.state for s in statuses][:2] == ["starting", "starting"]
    assert "through the tunnel" in agent.status.reason
    _, listing = await api.call("GET", f"/rooms/{code}/participants")
    (participant,) = listing["participants"]
    assert participant["transport"] == "tunnel"
    assert participant["endpoint"] == upstream.url  # Still the participant's local URL.
    assert "tunnelToken" not in str(listing)
    sdk = sdk_for(api.hub, code)
    reply = await sdk.chat.completions.create(model="*", messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == TOKENS
    stream = await sdk.chat.completions.create(model="llama3.2:3b", messages=MESSAGES,  # type: ignore[arg-type]
                                               stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == TOKENS
    assert upstream.requests[-1]["model"] == "llama3.2:3b"
    await sdk.close()


async def test_tunnel_streaming_is_unbuffered(
    api: Api, shared: tuple[str, ShareAgent, list[AgentStatus]], upstream: FakeOpenAIServer
) -> None:
    code, _, _ = shared
    upstream.behaviour.tokens = 6
    upstream.behaviour.token_delay_s = 0.2
    sdk = sdk_for(api.hub, code)
    stream = await sdk.chat.completions.create(model="*", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    arrivals = [
        time.perf_counter() async for c in stream if c.choices and c.choices[0].delta.content
    ]
    sent = upstream.token_sent_at
    assert len(arrivals) == len(sent) == 6
    assert arrivals[0] < sent[-1] - 0.6
    for index in range(5):
        assert arrivals[index] < sent[index + 1], index
    await sdk.close()


async def test_client_hang_up_cancels_the_local_request_through_the_tunnel(
    api: Api, http: aiohttp.ClientSession, shared: tuple[str, ShareAgent, list[AgentStatus]],
    upstream: FakeOpenAIServer,
) -> None:
    code, _, _ = shared
    upstream.behaviour.tokens = 100
    upstream.behaviour.token_delay_s = 0.05
    url = f"{api.hub.url}/rooms/{code}/v1/chat/completions"
    response = await http.post(url, json={"model": "*", "messages": MESSAGES, "stream": True})
    await response.content.readany()
    response.close()
    await eventually(lambda: upstream.aborted_streams == 1, within_s=3)
    assert upstream.completed_streams == 0


async def test_tunnel_refuses_wrong_tokens_and_strangers(
    api: Api, http: aiohttp.ClientSession
) -> None:
    room = await api.create_room()
    status, joined = await api.join(room["code"], id="t", transport="tunnel",
                                    endpoint="http://localhost:11434")
    assert status == 201 and len(joined["tunnelToken"]) >= 40
    url = f"{api.hub.url}/rooms/{room['code']}/tunnel"
    for headers, expected in (
        ({"X-Gambiarra-Participant": "t", "Authorization": "Bearer wrong"},
         (401, {"error": "Invalid tunnel token"})),
        ({"X-Gambiarra-Participant": "nobody", "Authorization": f"Bearer {joined['tunnelToken']}"},
         (404, {"error": "Participant not found"})),
        ({"X-Gambiarra-Participant": "t"}, (401, {"error": "Invalid tunnel token"})),
    ):
        async with http.get(url, headers=headers) as response:
            assert (response.status, await response.json()) == expected


async def test_unconnected_tunnel_participant_is_skipped_for_any(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    code = room["code"]
    await api.join(code, id="ghost", transport="tunnel", endpoint="http://localhost:1")
    url = f"/rooms/{code}/v1/chat/completions"
    assert await api.call("POST", url, {"model": "*"}) == (
        404, {"error": "No available participant for the requested model"})
    status, body = await api.call("POST", url, {"model": "ghost"})
    assert (status, body) == (
        502, {"error": "Failed to proxy request: the participant's tunnel is not connected"})
    await api.join(code, id="direct", endpoint=upstream.url)
    for _ in range(5):
        status, body = await api.call("POST", url, {"model": "*", "messages": []})
        assert status == 200, body


async def test_sharing_toggles_off_and_on(
    api: Api, shared: tuple[str, ShareAgent, list[AgentStatus]]
) -> None:
    code, agent, _ = shared
    await agent.stop()
    assert agent.status == AgentStatus("stopped", "sharing stopped")
    _, listing = await api.call("GET", f"/rooms/{code}/participants")
    assert listing["participants"] == []
    await agent.start()
    await eventually(lambda: agent.status.state == "sharing")
    status, body = await api.call("POST", f"/rooms/{code}/v1/chat/completions",
                                  {"model": "*", "messages": []})
    assert status == 200, body


async def test_agent_rejoins_when_the_hub_forgets_it(
    api: Api, shared: tuple[str, ShareAgent, list[AgentStatus]]
) -> None:
    code, agent, _ = shared
    assert agent.joins == 1
    await api.call("DELETE", f"/rooms/{code}/leave/{agent.settings.participant_id}")
    await eventually(lambda: agent.joins == 2 and agent.status.state == "sharing")
    _, listing = await api.call("GET", f"/rooms/{code}/participants")
    assert [p["id"] for p in listing["participants"]] == [agent.settings.participant_id]


async def test_agent_survives_a_hub_restart(
    tmp_path: Path, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    data_dir = tmp_path / "restart"
    first = HubServer(data_dir)
    await first.start()
    port = first.port
    room = await Api(http, first).create_room()
    agent = ShareAgent(first.url, fast_settings(room["code"], upstream.url))
    await agent.start()
    try:
        await eventually(lambda: agent.status.state == "sharing")
        await first.stop()
        await eventually(lambda: agent.status.state == "reconnecting")
        second = HubServer(data_dir, port=port)
        await second.start()
        try:
            await eventually(lambda: agent.status.state == "sharing", within_s=10)
            api = Api(http, second)
            await eventually(lambda: agent.tunnel_connections >= 2, within_s=10)
            status, body = await api.call("POST", f"/rooms/{room['code']}/v1/chat/completions",
                                          {"model": "*", "messages": []})
            assert status == 200, body
            _, listing = await api.call("GET", f"/rooms/{room['code']}/participants")
            assert listing["participants"][0]["status"] == "online"
        finally:
            await agent.stop()
            await second.stop()
    finally:
        await agent.stop()
        await first.stop()


async def test_agent_refuses_a_model_the_endpoint_does_not_serve(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    agent = ShareAgent(api.hub.url, fast_settings(room["code"], upstream.url, model="gpt-9"))
    await agent.start()
    await eventually(lambda: agent.status.state == "failed")
    assert agent.status.reason == (
        f"the model server at {upstream.url} does not serve 'gpt-9' (it serves: llama3.2:3b)")
    _, listing = await api.call("GET", f"/rooms/{room['code']}/participants")
    assert listing["participants"] == []


async def test_agent_with_wrong_password_fails_with_the_hubs_reason(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room(password="right")
    agent = ShareAgent(api.hub.url, fast_settings(room["code"], upstream.url, password="wrong"))
    await agent.start()
    await eventually(lambda: agent.status.state == "failed")
    assert agent.status.reason == "Invalid password"


async def test_direct_agent_shares_without_a_tunnel(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    agent = ShareAgent(api.hub.url, fast_settings(room["code"], upstream.url, transport="direct"))
    await agent.start()
    try:
        await eventually(lambda: agent.status.state == "sharing")
        _, listing = await api.call("GET", f"/rooms/{room['code']}/participants")
        assert listing["participants"][0]["transport"] == "direct"
        assert agent.tunnel_connections == 0
    finally:
        await agent.stop()


async def test_tunnel_multiplexes_concurrent_requests(
    api: Api, shared: tuple[str, ShareAgent, list[AgentStatus]], upstream: FakeOpenAIServer
) -> None:
    code, _, _ = shared
    upstream.behaviour.tokens = 8
    upstream.behaviour.token_delay_s = 0.02
    sdk = sdk_for(api.hub, code)

    async def one(stream: bool) -> str:
        if stream:
            chunks = await sdk.chat.completions.create(model="*", messages=MESSAGES,  # type: ignore[arg-type]
                                                       stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in chunks
                            if c.choices])
        reply = await sdk.chat.completions.create(model="*", messages=MESSAGES)  # type: ignore[arg-type]
        return reply.choices[0].message.content or ""

    answers = await asyncio.gather(*(one(i % 2 == 0) for i in range(10)))
    assert answers == ["".join(f"tok{i} " for i in range(8))] * 10
    assert upstream.max_in_flight >= 2, "requests went through the tunnel one at a time"
    await sdk.close()


async def test_the_agent_keeps_one_connection_to_its_model_server(
    api: Api, shared: tuple[str, ShareAgent, list[AgentStatus]], upstream: FakeOpenAIServer,
) -> None:
    """Requests through the tunnel reuse a kept-alive connection to the local server, and
    the body reaches it as sent (the hub's HTTP client calls it, not a fresh connection
    per request)."""
    code, _, _ = shared
    peers: set[object] = set()
    original = upstream._answer

    async def answer(request: web.Request) -> web.StreamResponse:
        peers.add(request.transport.get_extra_info("sockname") if request.transport else None)
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        return await original(request)

    upstream._answer = answer  # type: ignore[method-assign]
    sdk = sdk_for(api.hub, code)
    for i in range(4):
        reply = await sdk.chat.completions.create(
            model="*", messages=[{"role": "user", "content": f"hello {i}"}])
        assert reply.choices[0].message.content == TOKENS
    assert upstream.requests[-1]["messages"] == [{"role": "user", "content": "hello 3"}]
    assert len(peers) == 2, peers  # One local address, one agent-side port.
    await sdk.close()


class _OddlyTypedStreams(FakeOpenAIServer):
    """Streams whose Content-Type is not spelled ``text/event-stream``, a chunk every 50 ms,
    noting when each was sent."""

    def __init__(self, content_type: str) -> None:
        super().__init__(models=("llama3.2:3b",))
        self.content_type = content_type
        self.sent_at: list[float] = []

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            return await super()._answer(request)
        reply = web.StreamResponse(headers={"Content-Type": self.content_type})
        await reply.prepare(request)
        for i in range(8):
            if i:
                await asyncio.sleep(0.05)
            self.sent_at.append(time.monotonic())
            await reply.write(b'data: {"choices":[{"index":0,"delta":{"content":"t%d"}}]}\n\n' % i)
        await reply.write(b"data: [DONE]\n\n")
        await reply.write_eof()
        return reply


@pytest.mark.parametrize("content_type", ["Text/Event-Stream", "application/x-ndjson"])
async def test_a_stream_however_typed_crosses_the_tunnel_chunk_by_chunk(
    api: Api, http: aiohttp.ClientSession, content_type: str
) -> None:
    """The agent holds a whole answer's frames back to send them in one segment; a stream,
    whatever its Content-Type says, must not be held (Linux flushes a corked socket only
    every 200 ms)."""
    async with _OddlyTypedStreams(content_type) as model:
        room = await api.create_room()
        agent = ShareAgent(api.hub.url, fast_settings(room["code"], model.url), lambda _: None)
        await agent.start()
        try:
            await eventually(lambda: agent.status.state == "sharing")
            url = f"{api.hub.url}/rooms/{room['code']}/v1/chat/completions"
            arrived: list[float] = []
            async with http.post(url, json={"model": "*", "messages": MESSAGES,
                                            "stream": True}) as response:
                assert response.status == 200
                buffer = b""
                async for piece in response.content.iter_any():
                    buffer += piece
                    while b"\n\n" in buffer:
                        event, buffer = buffer.split(b"\n\n", 1)
                        if b'"content"' in event:
                            arrived.append(time.monotonic())
            assert len(arrived) == len(model.sent_at) == 8
            lags = [got - sent for got, sent in zip(arrived, model.sent_at, strict=True)]
            assert max(lags) < 0.15, lags
        finally:
            await agent.stop()
