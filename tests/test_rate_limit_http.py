"""Rate limits from a client's side: exact ``X-RateLimit-*`` values on every admitted
response (JSON, streamed, errors), 429 with ``Retry-After`` at the limit per address at the
gateway root and per key on a room route, keyless room routes never limited, and
``/health``'s ``redis`` following a real ``redis-server``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig, HubServer
from tests.conftest import Api, HubFactory
from tests.gateway_testkit import ADMIN_PASSWORD, login
from tests.redis_server import RedisServer, running_redis

CHAT = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hello"}]}
HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


async def away_from_a_minute_edge(margin_s: float = 3.0) -> None:
    """Tests count within one fixed minute; start one where ``margin_s`` is not the end."""
    left = 60 - time.time() % 60
    if left < margin_s:
        await asyncio.sleep(left + 0.05)


def minute_end() -> int:
    return (int(time.time()) // 60 + 1) * 60


async def post(http: aiohttp.ClientSession, url: str, body: Any,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    async with http.post(url, json=body, headers=headers) as response:
        return response.status, dict(response.headers), await response.text()


def rate_headers(headers: dict[str, str]) -> tuple[str, str, str]:
    limit, remaining, reset = (headers.get(name, "") for name in HEADERS)
    return limit, remaining, reset


@pytest.fixture
async def gw_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return await make_hub(HubConfig(rate_limit_per_address_per_minute=5))


@pytest.fixture
async def room_code(http: aiohttp.ClientSession, gw_hub: HubServer,
                    upstream: FakeOpenAIServer) -> str:
    api = Api(http, gw_hub)
    room = await api.create_room()
    status, _ = await api.join(room["code"], id="alice", endpoint=upstream.url)
    assert status == 201
    return str(room["code"])


async def make_key(http: aiohttp.ClientSession, hub: HubServer, **fields: Any) -> str:
    async with http.post(f"{hub.url}/v1/keys", json={"name": "ci", **fields},
                         headers=await login(http, hub)) as response:
        assert response.status == 201, await response.text()
        key: str = (await response.json())["key"]
        return key


async def test_gateway_root_per_address_exact_headers_then_429(
        http: aiohttp.ClientSession, gw_hub: HubServer) -> None:
    """No model is configured, so each answer is an error: admitted errors carry the
    numbers too (the hook runs on every response of an admitted request)."""
    await away_from_a_minute_edge()
    reset = str(minute_end())
    url = f"{gw_hub.url}/v1/chat/completions"
    for remaining in (4, 3, 2, 1, 0):
        status, headers, text = await post(http, url, CHAT)
        assert status != 429, text
        assert rate_headers(headers) == ("5", str(remaining), reset)
        assert "X-RateLimit-Limit" in headers["Access-Control-Expose-Headers"]
    status, headers, text = await post(http, url, CHAT)
    assert status == 429
    assert json.loads(text) == {"error": "Rate limit exceeded",
                                "details": "address-minute allows 5 per minute"}
    assert rate_headers(headers) == ("5", "0", reset)
    assert 1 <= int(headers["Retry-After"]) <= int(reset) - int(time.time()) + 1


async def test_per_key_on_a_room_route_streamed_and_not(
        http: aiohttp.ClientSession, gw_hub: HubServer, room_code: str) -> None:
    key = await make_key(http, gw_hub, rpm=3)
    auth = {"Authorization": f"Bearer {key}"}
    url = f"{gw_hub.url}/rooms/{room_code}/v1/chat/completions"
    await away_from_a_minute_edge()
    reset = str(minute_end())
    for remaining, stream in ((2, False), (1, True), (0, False)):
        status, headers, text = await post(http, url, {**CHAT, "stream": stream}, auth)
        assert status == 200, text
        assert ("data: " in text) is stream
        assert rate_headers(headers) == ("3", str(remaining), reset)  # key-rpm is tightest
    status, headers, text = await post(http, url, CHAT, auth)
    assert status == 429
    assert json.loads(text)["details"] == "key-rpm allows 3 per minute"
    assert rate_headers(headers) == ("3", "0", reset)
    assert int(headers["Retry-After"]) >= 1
    # Without a key the room route is not limited (the Gambiarra contract): no headers.
    for _ in range(8):
        status, headers, text = await post(http, url, CHAT)
        assert status == 200, text
        assert not any(name in headers for name in HEADERS)


async def test_the_key_hour_limit_counts_room_routes(
        http: aiohttp.ClientSession, make_hub: HubFactory, upstream: FakeOpenAIServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    hub = await make_hub(HubConfig(rate_limit_per_key_per_hour=2))
    api = Api(http, hub)
    code = (await api.create_room())["code"]
    assert (await api.join(code, id="alice", endpoint=upstream.url))[0] == 201
    auth = {"Authorization": f"Bearer {await make_key(http, hub)}"}
    url = f"{hub.url}/rooms/{code}/v1/chat/completions"
    hour_end = str((int(time.time()) // 3600 + 1) * 3600)
    statuses = []
    for _ in range(3):
        status, headers, _ = await post(http, url, CHAT, auth)
        statuses.append((status, rate_headers(headers)))
    assert statuses == [(200, ("2", "1", hour_end)), (200, ("2", "0", hour_end)),
                        (429, ("2", "0", hour_end))]


@pytest.fixture
def redis_server() -> AsyncIterator[RedisServer]:
    with running_redis() as server:
        yield server


async def test_health_says_redis_while_it_answers(
        http: aiohttp.ClientSession, make_hub: HubFactory, redis_server: RedisServer) -> None:
    plain = await make_hub(HubConfig())
    with_redis = await make_hub(HubConfig(redis_url=redis_server.unix_url),
                                data_dir=plain.data_dir.parent / "second")

    async def redis_of(hub: HubServer) -> bool:
        async with http.get(f"{hub.url}/health") as response:
            return bool((await response.json())["redis"])

    state = {"redis": False}

    async def poll() -> None:
        while not state["redis"]:
            state["redis"] = await redis_of(with_redis)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), 10)
    assert not await redis_of(plain)
    redis_server.kill()
    deadline = time.monotonic() + 15  # The background PING runs every 5 s.
    while await redis_of(with_redis):
        assert time.monotonic() < deadline, "/health still says redis after it died"
        await asyncio.sleep(0.1)


async def test_a_key_over_its_tpm_is_refused_until_the_minute_ends(
        http: aiohttp.ClientSession, gw_hub: HubServer, room_code: str) -> None:
    """The tokens a call used (the ledger's row) count against the key's tpm: the call
    that crosses it finishes, the next one gets 429 until the minute ends."""
    auth = {"Authorization": f"Bearer {await make_key(http, gw_hub, tpm=10)}"}
    url = f"{gw_hub.url}/rooms/{room_code}/v1/chat/completions"
    await away_from_a_minute_edge(5)
    status, _, text = await post(http, url, {**CHAT, "stream": True}, auth)
    assert status == 200, text  # 16 tokens: over 10, but it was admitted with 0 used.
    deadline = time.monotonic() + 5
    while True:  # The row is recorded as the stream ends, just after the client has it.
        status, headers, text = await post(http, url, CHAT, auth)
        if status == 429:
            break
        assert time.monotonic() < deadline, "tokens never counted against the tpm"
        await asyncio.sleep(0.05)
    assert json.loads(text)["details"] == "key-tpm allows 10 per minute"
    assert rate_headers(headers) == ("10", "0", str(minute_end()))
    assert 1 <= int(headers["Retry-After"]) <= 60


async def test_concurrent_calls_cannot_all_pass_a_tpm_their_tokens_have_not_reached_yet(
        http: aiohttp.ClientSession, gw_hub: HubServer, room_code: str,
        upstream: FakeOpenAIServer) -> None:
    """20 slow calls at once on a 500-tpm key: admission counts each one's estimate (the
    prompt's 2 tokens + max_tokens 200), so 3 go in (0, 202, 404 < 500) and 17 are refused;
    before, none of their tokens had landed and all 20 went. The real counts (5 + 16 each)
    then replace the estimates, and a request that reached no model gives its back."""
    auth = {"Authorization": f"Bearer {await make_key(http, gw_hub, tpm=500)}"}
    url = f"{gw_hub.url}/rooms/{room_code}/v1/chat/completions"
    await away_from_a_minute_edge(10)
    upstream.behaviour.first_token_delay_s = 0.3
    results = await asyncio.gather(*(
        post(http, url, {**CHAT, "max_tokens": 200, "stream": i % 2 == 1}, auth)
        for i in range(20)))
    upstream.behaviour.first_token_delay_s = 0.0
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * 3 + [429] * 17, statuses
    assert len(upstream.requests) == 3
    # Now 3 x 21 real tokens: a call estimated at 2 + 400 fits (63 < 500), and so does the
    # next one, after a call for a model nobody serves (no row: its 1026 go back).
    status, _, text = await post(http, url, {**CHAT, "model": "nobody:1b"}, auth)
    assert status == 404, text
    for _ in range(2):
        status, _, text = await post(http, url, {**CHAT, "max_tokens": 400}, auth)
        assert status == 200, text


async def test_a_tpm_key_s_chat_parses_its_body_once(
        http: aiohttp.ClientSession, gw_hub: HubServer, room_code: str,
        upstream: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Admission reads the body for the tpm estimate and the route needs it again: the
    parsed body is kept on the request, so a keyed chat is decoded once (it was twice:
    a second depth scan and decode of the whole body on every keyed request)."""
    from gambiarra_desktop.hub.api import body_checks

    scanned: list[int] = []
    real_scan = body_checks.json_depth_exceeds

    def counting_scan(raw: bytes, limit: int = body_checks.MAX_JSON_DEPTH) -> bool:
        scanned.append(len(raw))
        return real_scan(raw, limit)

    auth = {"Authorization": f"Bearer {await make_key(http, gw_hub, tpm=10_000)}"}
    url = f"{gw_hub.url}/rooms/{room_code}/v1/chat/completions"
    monkeypatch.setattr(body_checks, "json_depth_exceeds", counting_scan)
    status, _, text = await post(http, url, {**CHAT, "max_tokens": 50}, auth)
    monkeypatch.undo()
    assert status == 200, text
    assert scanned == [len(json.dumps({**CHAT, "max_tokens": 50}).encode())]
    assert upstream.requests[-1]["max_tokens"] == 50  # The route used that same body.
