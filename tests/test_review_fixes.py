"""Correctness fixes found in code review (issue 9): tunnel replacement, a hub that answers
non-JSON, tokens/s of whole answers, ``inFlight`` in ``llm:complete``, the room's model list.
Each test failed on the code before its fix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub_client import HubApiError, HubClient
from gambiarra_desktop.share.agent import AgentStatus, ShareAgent, ShareSettings
from gambiarra_desktop.share.tunnel_client import TunnelClient
from tests.conftest import Api, eventually
from tests.sse_client import SseReader

MESSAGES = [{"role": "user", "content": "hi"}]


async def events_until(reader: SseReader, last: str, limit: int = 50) -> list[str]:
    names = []
    for _ in range(limit):
        name, _ = await reader.next_event()
        names.append(name)
        if name == last:
            return names
    raise AssertionError(f"no {last} within {limit} events: {names}")


# 1. A replaced tunnel must not mark its participant offline.

async def test_a_replaced_tunnel_keeps_the_participant_online(
    api: Api, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    code = room["code"]
    status, joined = await api.join(code, id="t", transport="tunnel", endpoint=upstream.url)
    assert status == 201
    url = f"{api.hub.url}/rooms/{code}/tunnel".replace("http://", "ws://")
    token = joined["tunnelToken"]
    async with http.get(f"{api.hub.url}/rooms/{code}/events") as events_response:
        events = SseReader(events_response)
        await events.next_event()
        first, second = TunnelClient(http, upstream.url), TunnelClient(http, upstream.url)
        connected: list[int] = []
        one = asyncio.ensure_future(first.serve(url, "t", token, lambda: connected.append(1)))
        await eventually(lambda: connected == [1])
        two = asyncio.ensure_future(second.serve(url, "t", token, lambda: connected.append(2)))
        try:
            await eventually(lambda: connected == [1, 2])
            await asyncio.wait_for(one, 5)  # The hub closed the replaced tunnel.
            await asyncio.sleep(0.2)  # Room for a wrongly reported loss to land.
            _, listing = await api.call("GET", f"/rooms/{code}/participants")
            assert [p["status"] for p in listing["participants"]] == ["online"]
            for _ in range(3):
                status, body = await api.call("POST", f"/rooms/{code}/v1/chat/completions",
                                              {"model": "*", "messages": MESSAGES})
                assert status == 200, body
            assert (first.served, second.served) == (0, 3)
            names = await events_until(events, "llm:complete")
            assert "participant:offline" not in names, names
        finally:
            two.cancel()
            await asyncio.gather(two, return_exceptions=True)


# 2. A hub address that answers 200 with a captive portal's page.

PORTAL_PAGE = "<html><body><form>Log in to the guest Wi-Fi</form></body></html>"


@pytest.fixture
async def portal() -> AsyncIterator[tuple[str, list[Any]]]:
    """A real server that answers every request 200 with ``answer[0]`` (HTML at first)."""
    answer: list[Any] = [PORTAL_PAGE]

    async def page(request: web.Request) -> web.Response:
        if isinstance(answer[0], str):
            return web.Response(text=answer[0], content_type="text/html")
        return web.json_response(answer[0])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", answer
    await runner.cleanup()


async def test_hub_client_refuses_a_portal_page_and_foreign_json(
    portal: tuple[str, list[Any]]
) -> None:
    url, answer = portal
    async with HubClient(url) as hub:
        for call in (hub.join("ABC123", {}), hub.health(), hub.create_room("x"),
                     hub.participants("ABC123")):
            with pytest.raises(HubApiError) as caught:
                await call
            assert caught.value.status == 502
            assert "not as a Gambiarra hub does" in caught.value.message
        for foreign, call in (({"participant": "p1"}, hub.join("ABC123", {})),
                              (["a"], hub.join("ABC123", {})),
                              ({"participant": {}, "tunnelToken": 7}, hub.join("ABC123", {})),
                              ({"room": None}, hub.create_room("x")),
                              ({"participants": "x"}, hub.participants("ABC123"))):
            answer[0] = foreign
            with pytest.raises(HubApiError) as caught:
                await call
            assert caught.value.status == 502, foreign


async def test_agent_behind_a_captive_portal_says_so_and_stops_cleanly(
    portal: tuple[str, list[Any]], upstream: FakeOpenAIServer
) -> None:
    url, _ = portal
    statuses: list[AgentStatus] = []
    agent = ShareAgent(url, ShareSettings(
        room_code="ABC123", model="llama3.2:3b", endpoint=upstream.url, nickname="Cafe",
        backoff_initial_s=0.05, backoff_max_s=0.1), statuses.append)
    await agent.start()
    await eventually(lambda: agent.status.state == "reconnecting")
    assert "not as a Gambiarra hub does" in agent.status.reason
    assert "Wi-Fi login page" in agent.status.reason
    assert agent.running  # It keeps trying: the portal goes away once the user logs in.
    await agent.stop()  # Never raises.
    assert agent.status == AgentStatus("stopped", "sharing stopped")


# 3 and 4. The numbers of llm:complete.

async def completions(
    api: Api, code: str, upstream: FakeOpenAIServer, streams: tuple[bool, ...]
) -> list[dict[str, Any]]:
    """One lone request per entry of ``streams``; their llm:complete events."""
    completes = []
    async with api.http.get(f"{api.hub.url}/rooms/{code}/events") as events_response:
        events = SseReader(events_response)
        await events.next_event()
        for stream in streams:
            payload = {"model": "*", "messages": MESSAGES, "stream": stream}
            async with api.http.post(f"{api.hub.url}/rooms/{code}/v1/chat/completions",
                                     json=payload) as response:
                assert response.status == 200
                await response.read()
            _, complete = (await events.events_until("llm:complete"))[-1]
            completes.append(complete)
    return completes


async def test_tokens_per_second_of_a_whole_answer_use_the_whole_call(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    await api.join(room["code"], id="a", endpoint=upstream.url)
    upstream.behaviour.tokens = 16
    upstream.behaviour.first_token_delay_s = 0.2  # The model "generates" for 0.2 s.
    upstream.behaviour.token_delay_s = 0.01
    whole, streamed = await completions(api, room["code"], upstream, (False, True))
    metrics = whole["metrics"]
    assert metrics["tokens"] == 16
    assert metrics["durationMs"] >= 200
    # Was 16 tokens over the microseconds between the body's arrival and the report.
    assert 0 < metrics["tokensPerSecond"] <= 16 / (metrics["durationMs"] / 1000) * 1.01
    assert metrics["tokensPerSecond"] <= 16 / 0.2 * 1.01
    # A stream still counts from its first token: faster than over the whole call.
    metrics = streamed["metrics"]
    assert metrics["tokens"] == 16
    generating_s = (metrics["durationMs"] - metrics["latencyFirstTokenMs"]) / 1000
    assert metrics["tokensPerSecond"] > 16 / (metrics["durationMs"] / 1000)
    assert metrics["tokensPerSecond"] <= 16 / generating_s * 1.01


async def test_llm_complete_does_not_count_the_finished_request_in_flight(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    await api.join(room["code"], id="a", endpoint=upstream.url)
    for complete in await completions(api, room["code"], upstream, (False, True)):
        assert complete["participant"]["inFlight"] == 0, complete
        assert complete["participant"]["requests"] >= 1


# 6. The room's model list.

async def models_of(api: Api, code: str) -> list[dict[str, Any]]:
    status, body = await api.call("GET", f"/rooms/{code}/v1/models")
    assert status == 200 and body["object"] == "list"
    data: list[dict[str, Any]] = body["data"]
    return data


def entry(entry_id: str, created: int, owned_by: str, nickname: str, model: str,
          endpoint: str) -> dict[str, Any]:
    return {"id": entry_id, "object": "model", "created": created, "owned_by": owned_by,
            "gambiarra": {"nickname": nickname, "model": model, "endpoint": endpoint}}


async def test_models_list_two_participants_one_model(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    code = (await api.create_room())["code"]
    await api.join(code, id="a", nickname="Alice", endpoint=upstream.url)
    await asyncio.sleep(0.01)
    await api.join(code, id="b", nickname="Bob", endpoint=upstream.url)
    _, listing = await api.call("GET", f"/rooms/{code}/participants")
    created = {p["id"]: p["joinedAt"] // 1000 for p in listing["participants"]}
    model = "llama3.2:3b"
    assert await models_of(api, code) == [
        entry("a", created["a"], "Alice", "Alice", model, upstream.url),
        entry("b", created["b"], "Bob", "Bob", model, upstream.url),
        # The model's own entry: fields of its first participant, never an empty endpoint.
        entry(model, created["a"], "Alice, Bob", "Alice", model, upstream.url),
    ]
    sdk = openai.AsyncOpenAI(base_url=f"{api.hub.url}/rooms/{code}/v1", api_key="x",
                             max_retries=0, timeout=20)
    assert [m.id async for m in sdk.models.list()] == ["a", "b", model]
    reply = await sdk.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.choices[0].message.content
    await sdk.close()


async def test_models_list_two_participants_two_models(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    code = (await api.create_room())["code"]
    await api.join(code, id="a", nickname="Alice", model="llama3.2:3b", endpoint=upstream.url)
    await api.join(code, id="b", nickname="Bob", model="qwen2.5:7b",
                   endpoint="http://127.0.0.1:9")
    _, listing = await api.call("GET", f"/rooms/{code}/participants")
    created = {p["id"]: p["joinedAt"] // 1000 for p in listing["participants"]}
    assert await models_of(api, code) == [
        entry("a", created["a"], "Alice", "Alice", "llama3.2:3b", upstream.url),
        entry("b", created["b"], "Bob", "Bob", "qwen2.5:7b", "http://127.0.0.1:9"),
        entry("llama3.2:3b", created["a"], "Alice", "Alice", "llama3.2:3b", upstream.url),
        entry("qwen2.5:7b", created["b"], "Bob", "Bob", "qwen2.5:7b", "http://127.0.0.1:9"),
    ]
