"""Correctness fixes found in code review (issue 9): tunnel replacement, a hub that answers
non-JSON, tokens/s of whole answers, ``inFlight`` in ``llm:complete``, the room's model list.
Each test failed on the code before its fix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
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
