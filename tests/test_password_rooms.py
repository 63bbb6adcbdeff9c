"""A password room is closed to people without its password: not only its join.

Extension to the seed (README, "Password rooms"): models, chat, participants and events
need ``Authorization: Bearer <password>``; wrong guesses are throttled per address.
"""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig
from tests.conftest import Api, HubFactory

USE_ROUTES = [
    ("GET", "/participants"),
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/events"),
]


async def _status(http: aiohttp.ClientSession, method: str, url: str,
                  password: str | None) -> tuple[int, dict[str, str] | None]:
    headers = {"Authorization": f"Bearer {password}"} if password is not None else {}
    payload = {"model": "*", "messages": [{"role": "user", "content": "hi"}]}
    async with http.request(method, url, headers=headers,
                            json=payload if method == "POST" else None) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, None


async def test_using_a_password_room_needs_the_password(
    api: Api, upstream: FakeOpenAIServer,
) -> None:
    room = await api.create_room("Secret", password="s3cret")
    code = room["code"]
    status, _ = await api.join(code, endpoint=upstream.url, password="s3cret")
    assert status == 201
    base = f"{api.hub.url}/rooms/{code}"
    for method, path in USE_ROUTES:
        for wrong in (None, "", "guess"):
            status, body = await _status(api.http, method, base + path, wrong)
            assert (status, body) == (401, {"error": "Invalid password"}), (path, wrong)
    for method, path in USE_ROUTES[:3]:
        status, _ = await _status(api.http, method, base + path, "s3cret")
        assert status == 200, path
    async with api.http.get(base + "/events",
                            headers={"Authorization": "Bearer s3cret"}) as response:
        assert response.status == 200
        assert (await response.content.readline()).startswith(b"event: connected")
    assert len(upstream.requests) == 1  # Only the chat with the password got through.


async def test_rooms_without_a_password_stay_open(api: Api, upstream: FakeOpenAIServer) -> None:
    code = (await api.create_room())["code"]
    await api.join(code, endpoint=upstream.url)
    for method, path in USE_ROUTES[:3]:
        status, _ = await _status(api.http, method, f"{api.hub.url}/rooms/{code}{path}", None)
        assert status == 200, path


async def test_the_openai_sdk_uses_the_password_as_its_api_key(
    api: Api, upstream: FakeOpenAIServer,
) -> None:
    code = (await api.create_room("Secret", password="s3cret"))["code"]
    await api.join(code, endpoint=upstream.url, password="s3cret")
    base_url = f"{api.hub.url}/rooms/{code}/v1"
    good = openai.AsyncOpenAI(base_url=base_url, api_key="s3cret", max_retries=0)
    reply = await good.chat.completions.create(
        model="*", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    bad = openai.AsyncOpenAI(base_url=base_url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await bad.models.list()
    await good.close()
    await bad.close()


async def test_wrong_password_flood_is_throttled_and_a_legit_join_stays_fast(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    hub = await make_hub(HubConfig(password_max_failures=5, password_failure_window_s=60))
    api = Api(http, hub)
    code = (await api.create_room("Secret", password="right"))["code"]
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), limit=0)
    async with aiohttp.ClientSession(connector=connector) as attacker:
        async def guess(i: int) -> int:
            payload = {"id": f"g{i}", "nickname": "M", "model": "m",
                       "endpoint": "http://127.0.0.1:9", "password": f"wrong{i}"}
            async with attacker.post(f"{hub.url}/rooms/{code}/join", json=payload) as response:
                return response.status

        flood = asyncio.gather(*(guess(i) for i in range(50)))
        await asyncio.sleep(0.05)
        status, _ = await api.join(code, password="right")
        statuses = await flood
    assert status == 201
    # At most max_failures argon2 checks were spent on the flood, so the legitimate join
    # waited behind a handful of them rather than fifty.
    assert statuses.count(401) <= 5
    assert statuses.count(429) >= 45
    assert set(statuses) <= {401, 429}


async def test_throttled_answers_say_when_to_retry(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    hub = await make_hub(HubConfig(password_max_failures=2, password_failure_window_s=30))
    api = Api(http, hub)
    code = (await api.create_room("Secret", password="right"))["code"]
    for _ in range(2):
        assert (await api.join(code, password="wrong"))[0] == 401
    async with http.post(f"{hub.url}/rooms/{code}/join",
                         json={"id": "p", "nickname": "N", "model": "m",
                               "endpoint": "http://127.0.0.1:9", "password": "right"}
                         ) as response:
        assert response.status == 429
        assert 1 <= int(response.headers["Retry-After"]) <= 30
        assert "Too many wrong passwords" in (await response.json())["error"]


async def test_a_throttled_address_learns_nothing_from_the_right_password(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    """A remembered password must not answer 200 while wrong guesses get 429: that would
    be a free oracle (2,501 guesses in 1.4 s found the password in review)."""
    hub = await make_hub(HubConfig(password_max_failures=3, password_failure_window_s=60))
    api = Api(http, hub)
    code = (await api.create_room("Secret", password="right"))["code"]
    url = f"{hub.url}/rooms/{code}/participants"
    assert (await _status(http, "GET", url, "right"))[0] == 200  # Now remembered.
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as guesser:
        statuses = [(await _status(guesser, "GET", url, f"guess{i}"))[0] for i in range(6)]
        assert statuses == [401, 401, 401, 429, 429, 429]
        status, body = await _status(guesser, "GET", url, "right")
        assert status == 429, body
    assert (await _status(http, "GET", url, "right"))[0] == 200  # Others are unaffected.


async def test_argon2_work_is_capped_across_addresses(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    """Every address has its own failure budget, so the hub caps argon2 work overall."""
    hub = await make_hub()
    api = Api(http, hub)
    code = (await api.create_room("Secret", password="right"))["code"]
    url = f"{hub.url}/rooms/{code}/v1/models"
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        local_addr=(f"127.0.1.{i}", 0))) for i in range(1, 61)]
    try:
        results = await asyncio.gather(*(_status(s, "GET", url, "wrong") for s in sessions))
    finally:
        for session in sessions:
            await session.close()
    statuses = [status for status, _ in results]
    assert set(statuses) == {401, 429}
    assert statuses.count(401) <= 20  # 4 running + 16 waiting at most.
    busy = [body for status, body in results if status == 429]
    assert busy and busy[0] == {"error": "The hub is busy checking passwords; retry in a moment"}


async def test_metrics_show_a_password_rooms_participants_only_in_totals(api: Api) -> None:
    secret_code = (await api.create_room("Secret", password="pw"))["code"]
    open_code = (await api.create_room("Open"))["code"]
    assert (await api.join(secret_code, id="hidden-id", nickname="Hidden",
                           model="secret-model", password="pw"))[0] == 201
    assert (await api.join(open_code, id="shown-id", nickname="Shown"))[0] == 201
    async with api.http.get(f"{api.hub.url}/metrics") as response:
        text = await response.text()
    assert 'gambiarra_participants{status="online"} 2' in text
    assert "shown-id" in text
    for private in ("hidden-id", "Hidden", "secret-model"):
        assert private not in text
