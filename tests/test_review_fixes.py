"""Correctness fixes found in code review (issue 9): tunnel replacement, a hub that answers
non-JSON, tokens/s of whole answers, ``inFlight`` in ``llm:complete``, the room's model list.
Each test failed on the code before its fix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub_client import HubApiError, HubClient
from gambiarra_desktop.share.agent import AgentStatus, ShareAgent, ShareSettings
from gambiarra_desktop.share.tunnel_client import TunnelClient
from tests.conftest import Api
from tests.sse_client import SseReader

MESSAGES = [{"role": "user", "content": "hi"}]


async def eventually(predicate: Callable[[], object], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


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
            assert "not JSON" in caught.value.message
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
    assert "not JSON" in agent.status.reason and "captive portal" in agent.status.reason
    assert agent.running  # It keeps trying: the portal goes away once the user logs in.
    await agent.stop()  # Never raises.
    assert agent.status == AgentStatus("stopped", "sharing stopped")
