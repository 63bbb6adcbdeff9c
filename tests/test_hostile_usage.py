"""A participant's server reports whatever ``usage`` it likes: the ledger caps each call's
claim, the answer still reaches the client, other people's rows are kept, and the sums
stay readable (a 400-digit count once made a 500, and two 5e18 rows overflowed SQLite's
sums and stopped the hub from starting again)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.proxy.metrics import MAX_REPORTED_TOKENS
from tests.conftest import Api, HubFactory
from tests.gateway_testkit import ADMIN_PASSWORD, ScriptedModel, login

CLAIMS = ("9" * 400, "5000000000000000000", "5000000000000000000", "7")


@pytest.fixture
async def liar() -> AsyncIterator[str]:
    """An OpenAI-style server whose ``usage`` claims the next count of :data:`CLAIMS`."""
    claims = iter(CLAIMS)

    async def chat(_request: web.Request) -> web.Response:
        count = next(claims)
        body = ('{"id":"x","object":"chat.completion","created":1,"model":"m","choices":'
                '[{"index":0,"message":{"role":"assistant","content":"hi"},'
                '"finish_reason":"stop"}],"usage":{"prompt_tokens":' + count
                + ',"completion_tokens":' + count + ',"total_tokens":' + count + '}}')
        return web.Response(text=body, content_type="application/json")

    async with ScriptedModel(chat=chat) as server:
        yield server.url


@pytest.fixture
async def gw_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return await make_hub()


async def test_huge_usage_claims_are_capped_and_nothing_is_lost(
        gw_hub: HubServer, http: aiohttp.ClientSession, liar: str) -> None:
    api = Api(http, gw_hub)
    code = (await api.create_room())["code"]
    status, body = await api.join(code, endpoint=liar, model="m")
    assert status == 201, body
    # Four answers, each claiming more tokens than any model makes (the last is honest).
    for _ in CLAIMS:
        async with http.post(f"{gw_hub.url}/rooms/{code}/v1/chat/completions",
                             json={"model": "m", "messages": [
                                 {"role": "user", "content": "hi"}]}) as response:
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = await response.json()
            assert answer["choices"][0]["message"]["content"] == "hi"

    admin = await login(http, gw_hub)
    for group in ("key", "day", "room", "model", "participant"):
        async with http.get(f"{gw_hub.url}/v1/usage", params={"groupBy": group},
                            headers=admin) as response:
            assert response.status == 200, await response.text()
            rows = (await response.json())["data"]
        assert sum(row["requests"] for row in rows) == 4  # Every row kept.
        assert sum(row["completionTokens"] for row in rows) == 3 * MAX_REPORTED_TOKENS + 7
    assert gw_hub.app  # The hub answered throughout; and it starts again on the same data:
    await gw_hub.stop()
    again = HubServer(gw_hub.data_dir)
    await again.start()
    try:
        async with http.get(f"{again.url}/v1/usage", params={"groupBy": "room"},
                            headers=await login(http, again)) as response:
            assert response.status == 200
            rows = (await response.json())["data"]
            assert [row["promptTokens"] for row in rows] == [3 * MAX_REPORTED_TOKENS + 7]
    finally:
        await again.stop()
