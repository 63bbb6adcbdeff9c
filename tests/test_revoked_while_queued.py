"""A key revoked while its request waits is refused before anything is forwarded: in a
room's queue (behind a busy maxConcurrent-1 participant) and between the gateway's
attempts (a cross-check's review). Before, a revoked key's queued requests went through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.keys import SCHEDULER
from tests.conftest import Api, HubFactory
from tests.gateway_testkit import ADMIN_PASSWORD, add_entry, login

MESSAGES = [{"role": "user", "content": "hi"}]
MODEL = "llama3.2:3b"


@pytest.fixture
async def gw_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return await make_hub()


@pytest.fixture
async def slow_server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(models=(MODEL,)) as server:
        server.behaviour.first_token_delay_s = 1.0
        yield server


async def one_slot_room(http: aiohttp.ClientSession, hub: HubServer, endpoint: str,
                        name: str = "Lab", participant: str = "p1") -> str:
    api = Api(http, hub)
    code: str = (await api.create_room(name))["code"]
    status, body = await api.join(code, id=participant, endpoint=endpoint,
                                  config={"maxConcurrent": 1})
    assert status == 201, body
    return code


async def new_key(http: aiohttp.ClientSession, hub: HubServer, admin: dict[str, str]) -> str:
    async with http.post(f"{hub.url}/v1/keys", json={"name": "soon revoked"},
                         headers=admin) as response:
        assert response.status == 201
        return str((await response.json())["key"])


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any],
               key: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with http.post(url, json=body, headers=headers) as response:
        return response.status, await response.json()


async def until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


@pytest.mark.parametrize("route", ["room", "gateway"])
async def test_a_key_revoked_while_its_request_is_queued_gets_401(
    http: aiohttp.ClientSession, gw_hub: HubServer, slow_server: FakeOpenAIServer,
    route: str,
) -> None:
    admin = await login(http, gw_hub)
    code = await one_slot_room(http, gw_hub, slow_server.url)
    if route == "room":
        url, body = f"{gw_hub.url}/rooms/{code}/v1/chat/completions", {"model": MODEL}
    else:
        await add_entry(http, gw_hub, {"id": "lab", "provider": "gambiarra",
                                       "apiModelName": MODEL, "layer": "L1", "room": code},
                        admin)
        url, body = f"{gw_hub.url}/v1/chat/completions", {"model": "lab"}
    body["messages"] = MESSAGES
    key = await new_key(http, gw_hub, admin)
    busy = asyncio.create_task(post(http, url, body))  # Keyless: takes the one slot.
    await until(lambda: slow_server.in_flight == 1)
    queued = asyncio.create_task(post(http, url, body, key))
    scheduler = gw_hub.app[SCHEDULER]
    await until(lambda: scheduler.waiting(code) == 1)
    key_id = key.split("_", 1)[0].removeprefix("gk-")
    async with http.delete(f"{gw_hub.url}/v1/keys/{key_id}", headers=admin) as response:
        assert response.status == 200
    assert (await asyncio.wait_for(busy, 10))[0] == 200
    status, reply = await asyncio.wait_for(queued, 10)
    assert (status, reply["error"]) == (401, "Invalid API key"), reply
    assert len(slow_server.requests) == 1  # The revoked key's request never went out.
    assert scheduler.waiting(code) == 0
    # The slot it held for a moment is free again.
    assert (await asyncio.wait_for(post(http, url, body), 10))[0] == 200


async def test_a_key_revoked_during_the_answer_gets_no_cross_check_review(
    http: aiohttp.ClientSession, gw_hub: HubServer, slow_server: FakeOpenAIServer,
) -> None:
    admin = await login(http, gw_hub)
    for entry in ("answerer", "reviewer"):
        code = await one_slot_room(http, gw_hub, slow_server.url, entry, f"p-{entry}")
        await add_entry(http, gw_hub, {"id": entry, "provider": "gambiarra",
                                       "apiModelName": MODEL, "layer": "L1", "room": code},
                        admin)
    key = await new_key(http, gw_hub, admin)
    asked = asyncio.create_task(post(http, f"{gw_hub.url}/v1/chat/completions",
                                     {"model": "answerer", "messages": MESSAGES,
                                      "crossCheck": True}, key))
    await until(lambda: slow_server.in_flight == 1)
    key_id = key.split("_", 1)[0].removeprefix("gk-")
    async with http.delete(f"{gw_hub.url}/v1/keys/{key_id}", headers=admin) as response:
        assert response.status == 200
    status, reply = await asyncio.wait_for(asked, 10)
    assert (status, reply["error"]) == (401, "Invalid API key"), reply
    assert len(slow_server.requests) == 1  # Answered once, never reviewed.
