"""API keys at the door of every chat, from the client's side (the official openai SDK
where a client is natural): a ``gk-`` value that is no live key is a 401 and other bearer
values are ignored on room routes; a room key works only in its rooms and opens its
password room, a hub-wide key never opens one; the gateway root asks for a key exactly
while a priced model is enabled; and the key text never shows in a response or a log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubServer
from tests.conftest import Api, HubFactory
from tests.gateway_testkit import ADMIN_PASSWORD, add_entry, login, room_entry

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT = {"model": "auto", "messages": MESSAGES}
ROOM_CHAT = {"model": "llama3.2:3b", "messages": MESSAGES}


@pytest.fixture
async def gw_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return await make_hub()


@pytest.fixture
async def model_server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(models=("llama3.2:3b",)) as server:
        yield server


async def new_key(http: aiohttp.ClientSession, hub: HubServer, **fields: Any) -> str:
    async with http.post(f"{hub.url}/v1/keys", json={"name": "test key", **fields},
                         headers=await login(http, hub)) as response:
        assert response.status == 201, await response.text()
        key: str = (await response.json())["key"]
        return key


async def room_with_model(http: aiohttp.ClientSession, hub: HubServer, endpoint: str,
                          password: str | None = None) -> str:
    api = Api(http, hub)
    code: str = (await api.create_room(password=password))["code"]
    status, body = await api.join(code, endpoint=endpoint,
                                  **({"password": password} if password else {}))
    assert status == 201, body
    return code


async def post(http: aiohttp.ClientSession, url: str, body: Any,
               bearer: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    async with http.post(url, json=body, headers=headers) as response:
        return response.status, await response.json()


def sdk(base_url: str, api_key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=20)


async def test_a_gk_value_that_is_no_live_key_is_refused_and_other_bearers_ignored(
    http: aiohttp.ClientSession, gw_hub: HubServer, model_server: FakeOpenAIServer,
) -> None:
    code = await room_with_model(http, gw_hub, model_server.url)
    real = await new_key(http, gw_hub)
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    for bad in ("gk-garbage", "gk-", forged, real.replace("gk-", "gk-0", 1)):
        for url, body in ((f"{gw_hub.url}/rooms/{code}/v1/chat/completions", ROOM_CHAT),
                          (f"{gw_hub.url}/v1/chat/completions", CHAT)):
            status, reply = await post(http, url, body, bad)
            assert (status, reply["error"]) == (401, "Invalid API key"), (bad, url, reply)
    # The openai SDK always sends some key; a room without a password ignores it.
    client = sdk(f"{gw_hub.url}/rooms/{code}/v1", "unused")
    try:
        answer = await client.chat.completions.create(
            model="llama3.2:3b", messages=MESSAGES)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
    finally:
        await client.close()


async def test_a_room_key_works_only_in_its_rooms(
    http: aiohttp.ClientSession, gw_hub: HubServer, model_server: FakeOpenAIServer,
) -> None:
    mine = await room_with_model(http, gw_hub, model_server.url)
    other = await room_with_model(http, gw_hub, model_server.url)
    await room_entry(http, gw_hub, "small", "L0", "llama3.2:3b", model_server.url)
    key = await new_key(http, gw_hub, rooms=[mine])

    client = sdk(f"{gw_hub.url}/rooms/{mine}/v1", key)
    try:
        answer = await client.chat.completions.create(
            model="llama3.2:3b", messages=MESSAGES)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
    finally:
        await client.close()
    for url, body in ((f"{gw_hub.url}/rooms/{other}/v1/chat/completions", ROOM_CHAT),
                      (f"{gw_hub.url}/v1/chat/completions", CHAT)):
        status, reply = await post(http, url, body, key)
        assert (status, reply["error"]) == (403, "API key not valid here"), (url, reply)
    async with http.get(f"{gw_hub.url}/rooms/{other}/v1/models",
                        headers={"Authorization": f"Bearer {key}"}) as response:
        assert response.status == 403
    hub_wide = await new_key(http, gw_hub)
    for url, body in ((f"{gw_hub.url}/rooms/{other}/v1/chat/completions", ROOM_CHAT),
                      (f"{gw_hub.url}/v1/chat/completions", CHAT)):
        status, reply = await post(http, url, body, hub_wide)
        assert status == 200, (url, reply)


async def test_a_key_listing_a_password_room_opens_it_and_a_hub_wide_key_does_not(
    http: aiohttp.ClientSession, gw_hub: HubServer, model_server: FakeOpenAIServer,
) -> None:
    code = await room_with_model(http, gw_hub, model_server.url, password="s3cret-room")
    room_key = await new_key(http, gw_hub, rooms=[code])
    hub_wide = await new_key(http, gw_hub)
    base = f"{gw_hub.url}/rooms/{code}/v1"

    client = sdk(base, room_key)
    try:
        assert "llama3.2:3b" in [m.id async for m in client.models.list()]
        answer = await client.chat.completions.create(
            model="llama3.2:3b", messages=MESSAGES)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
    finally:
        await client.close()
    async with http.get(f"{gw_hub.url}/rooms/{code}/participants",
                        headers={"Authorization": f"Bearer {room_key}"}) as response:
        assert response.status == 200

    for bearer in (hub_wide, None, "wrong password"):
        status, reply = await post(http, f"{base}/chat/completions", ROOM_CHAT, bearer)
        assert (status, reply["error"]) == (401, "Invalid password"), (bearer, reply)
    status, _ = await post(http, f"{base}/chat/completions", ROOM_CHAT, "s3cret-room")
    assert status == 200  # The password keeps working as before.


async def test_a_room_password_that_reads_as_an_api_key_is_refused_at_creation(
    http: aiohttp.ClientSession, gw_hub: HubServer, model_server: FakeOpenAIServer,
) -> None:
    # A gk- bearer is always an API key, so such a room could never be opened with its
    # password: refused up front, in the seed's form, naming the field.
    for password in ("gk-", "gk-my-room", "gk-0123456789ab_" + "A" * 43):
        async with http.post(f"{gw_hub.url}/rooms",
                             json={"name": "Lab", "password": password}) as response:
            assert response.status == 400
            reply = await response.json()
        assert reply["error"].startswith("Invalid field: password"), reply
        assert password == "gk-" or password not in reply["error"]  # Never echoed.
    async with http.get(f"{gw_hub.url}/rooms") as response:
        assert (await response.json())["rooms"] == []
    # Nor can a join slip a gk- password past a password room: it is just a wrong one.
    code = await room_with_model(http, gw_hub, model_server.url, password="s3cret-room")
    status, reply = await Api(http, gw_hub).join(
        code, id="p2", endpoint=model_server.url, password="gk-s3cret-room")
    assert (status, reply["error"]) == (401, "Invalid password")
    # Passwords that merely contain the prefix stay fine.
    await Api(http, gw_hub).create_room(password="my-gk-room")


async def test_the_gateway_root_needs_a_key_only_while_a_priced_model_is_enabled(
    http: aiohttp.ClientSession, gw_hub: HubServer, model_server: FakeOpenAIServer,
) -> None:
    url = f"{gw_hub.url}/v1/chat/completions"
    await room_entry(http, gw_hub, "free", "L0", "llama3.2:3b", model_server.url)
    assert (await post(http, url, CHAT))[0] == 200

    code = await room_with_model(http, gw_hub, model_server.url)
    auth = await login(http, gw_hub)
    await add_entry(http, gw_hub, {"id": "priced", "provider": "gambiarra", "room": code,
                                   "apiModelName": "llama3.2:3b", "layer": "L1",
                                   "outputPricePer1k": 0.002}, auth)
    for bearer in (None, "not-a-key"):
        status, reply = await post(http, url, CHAT, bearer)
        assert (status, reply["error"]) == (401, "API key required"), reply
        assert "gk-" in reply["details"]
    key = await new_key(http, gw_hub)
    client = sdk(f"{gw_hub.url}/v1", key)
    try:
        answer = await client.chat.completions.create(
            model="auto", messages=MESSAGES)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
    finally:
        await client.close()

    async with http.put(f"{gw_hub.url}/v1/models/priced", json={"enabled": False},
                        headers=auth) as response:
        assert response.status == 200
    assert (await post(http, url, CHAT))[0] == 200  # Keys are optional again.


async def test_the_key_text_never_shows_in_a_response_or_a_log_line(
    http: aiohttp.ClientSession, gw_hub: HubServer, model_server: FakeOpenAIServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    code = await room_with_model(http, gw_hub, model_server.url)
    await room_entry(http, gw_hub, "free", "L0", "llama3.2:3b", model_server.url)
    auth = await login(http, gw_hub)
    async with http.post(f"{gw_hub.url}/v1/keys", json={"name": "k"},
                         headers=auth) as response:
        made = await response.json()
    key, key_id = made["key"], made["id"]
    secret = key.split("_", 1)[1]
    bearer = {"Authorization": f"Bearer {key}"}
    seen: list[str] = []
    requests: list[tuple[str, str, Any, dict[str, str]]] = [
        ("GET", "/v1/keys", None, auth),
        ("POST", f"/rooms/{code}/v1/chat/completions", {**ROOM_CHAT, "stream": True}, bearer),
        ("POST", f"/rooms/{code}/v1/chat/completions", ROOM_CHAT, bearer),
        ("POST", "/v1/chat/completions", CHAT, bearer),
        ("GET", f"/rooms/{code}/v1/models", None, bearer),
        ("GET", "/v1/keys", None, bearer),  # A key is no admin token: 401.
        ("DELETE", f"/v1/keys/{key_id}", None, auth),
        ("POST", "/v1/chat/completions", CHAT, bearer),  # Revoked: 401.
        ("GET", "/v1/keys", None, auth),
    ]
    for method, path, body, headers in requests:
        async with http.request(method, gw_hub.url + path, json=body,
                                headers=headers) as response:
            seen.append(f"{response.status} {dict(response.headers)} {await response.text()}")
    assert seen[-2].startswith("401")
    everything = "\n".join(seen) + "\n" + caplog.text
    assert caplog.records  # DEBUG logging really was captured.
    assert secret not in everything
    assert key not in everything


async def test_a_keys_tpm_counts_the_tokens_its_calls_used(
    http: aiohttp.ClientSession, gw_hub: HubServer, model_server: FakeOpenAIServer,
) -> None:
    code = await room_with_model(http, gw_hub, model_server.url)
    key = await new_key(http, gw_hub, tpm=20)  # One answer of 16 tokens plus its prompt.
    url = f"{gw_hub.url}/rooms/{code}/v1/chat/completions"
    status, _ = await post(http, url, ROOM_CHAT, key)
    assert status == 200
    status, reply = await post(http, url, ROOM_CHAT, key)
    assert (status, reply) == (429, {"error": "Rate limit exceeded",
                                     "details": "key-tpm allows 20 per minute"})
    other = await new_key(http, gw_hub, tpm=20)  # Counted per key, not per address.
    assert (await post(http, url, ROOM_CHAT, other))[0] == 200
