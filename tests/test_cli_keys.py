"""``gambiarra keys`` and ``gambiarra usage`` as a user runs them: the real command in a
subprocess against a real hub on 127.0.0.1, with real requests through a room whose
participant is a real fake-OpenAI server."""

from __future__ import annotations

import json

import aiohttp

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubServer
from tests.test_cli_models import cli, environment, gateway_hub  # noqa: F401 - a fixture.

CHAT = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8}


async def room_with_participant(http: aiohttp.ClientSession, hub: HubServer,
                                upstream: FakeOpenAIServer) -> str:
    async with http.post(f"{hub.url}/rooms", json={"name": "CLI lab"}) as response:
        code = str((await response.json())["room"]["code"])
    async with http.post(f"{hub.url}/rooms/{code}/join", json={
            "id": "p1", "nickname": "Alice", "model": "llama3.2:3b",
            "endpoint": upstream.url}) as response:
        assert response.status == 201, await response.text()
    return code


async def chat(http: aiohttp.ClientSession, hub: HubServer, code: str, key: str) -> int:
    async with http.post(f"{hub.url}/rooms/{code}/v1/chat/completions", json=CHAT,
                         headers={"Authorization": f"Bearer {key}"}) as response:
        await response.read()
        return response.status


async def test_keys_create_list_usage_revoke(
        gateway_hub: HubServer, http: aiohttp.ClientSession,  # noqa: F811
        upstream: FakeOpenAIServer) -> None:
    url = gateway_hub.url
    code = await room_with_participant(http, gateway_hub, upstream)

    # create prints the key once (only the key with -q) and warns it will not be shown again
    status, out, err = await cli("keys", "create", "--name", "ci-bot", "--rpm", "60",
                                 "--budget", "2.5", "-q", "--hub", url)
    assert status == 0, err
    key = out.strip()
    assert key.startswith("gk-") and out.count("\n") == 1
    assert "shown only now" in err
    key_id = key[3:15]

    # list shows the key by name and prefix, with its limits, never its secret
    status, out, err = await cli("keys", "list", "--hub", url)
    assert status == 0, err
    assert "ci-bot" in out and f"gk-{key_id}" in out and "60 req/min" in out
    assert key not in out and key[16:] not in out

    # usage counts a real request made with the key, by the key's name
    assert await chat(http, gateway_hub, code, key) == 200
    status, out, err = await cli("usage", "--group-by", "key", "--hub", url)
    assert status == 0, err
    (line,) = [row for row in out.splitlines() if row.startswith("ci-bot")]
    assert line.split()[1] == "1"  # requests
    status, out, _ = await cli("usage", "--group-by", "model", "--json", "--hub", url)
    rows = {row["model"]: row for row in json.loads(out)["data"]}
    assert rows["llama3.2:3b"]["requests"] == 1

    # A key reads its own usage with GAMBIARRA_API_KEY and no admin password
    as_key = environment(GAMBIARRA_ADMIN_PASSWORD=None, GAMBIARRA_API_KEY=key)
    status, out, err = await cli("usage", "--hub", url, env=as_key)
    assert status == 0, err
    assert "ci-bot" in out

    # revoke ends it at once; list says so; an unknown id is the hub's words, exit 1
    status, out, err = await cli("keys", "revoke", key_id, "--hub", url)
    assert status == 0, err
    assert "revoked" in out
    assert await chat(http, gateway_hub, code, key) == 401
    status, out, _ = await cli("keys", "list", "--hub", url)
    assert "revoked" in out
    status, out, err = await cli("keys", "revoke", "0" * 12, "--hub", url)
    assert status == 1 and "API key not found" in err


async def test_create_refusals_name_the_field(gateway_hub: HubServer) -> None:  # noqa: F811
    status, _, err = await cli("keys", "create", "--name", "x", "--priority", "11",
                               "--hub", gateway_hub.url)
    assert status == 1
    assert "Invalid field: priority" in err
