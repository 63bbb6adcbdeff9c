"""The usage ledger as its readers see it: its token sums equal what a real load's answers
report (the openai SDK, streamed and not, with and without usage, concurrent, room routes
and the gateway root), ``GET /v1/usage`` grouped every way, a key reading only its own
rows, a participant's people visible to its secret and the admin only; and the writer
itself: batched bursts, the retention sweep, nothing lost at stop."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from gambiarra_desktop.accounting.ledger import DAY_MS, Ledger, UsageRow, now_ms, utc_day
from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.events import EventBus
from gambiarra_desktop.gateway.settings import GatewaySettings
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.rooms.store import SqliteStore
from tests.conftest import Api, HubFactory, eventually
from tests.gateway_testkit import ADMIN_PASSWORD, login, room_entry

QUESTION = "Count the tokens of this question, please."
MESSAGES = [{"role": "user", "content": QUESTION}]
ESTIMATED_PROMPT = math.ceil(len(QUESTION.encode()) / 4)


@pytest.fixture
async def gw_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return await make_hub()


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeOpenAIServer, FakeOpenAIServer]]:
    async with FakeOpenAIServer(models=("small",)) as small, \
            FakeOpenAIServer(models=("big",)) as big:
        small.behaviour.tokens = 7
        big.behaviour.tokens = 12
        yield small, big


async def make_key(http: aiohttp.ClientSession, hub: HubServer, name: str,
                   **fields: Any) -> dict[str, Any]:
    async with http.post(f"{hub.url}/v1/keys", json={"name": name, **fields},
                         headers=await login(http, hub)) as response:
        assert response.status == 201, await response.text()
        made: dict[str, Any] = await response.json()
        return made


async def usage(http: aiohttp.ClientSession, hub: HubServer, headers: dict[str, str],
                **query: str) -> tuple[int, Any]:
    async with http.get(f"{hub.url}/v1/usage", params=query, headers=headers) as response:
        return response.status, await response.json()


def client(base_url: str, key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=20)


async def one_call(sdk: openai.AsyncOpenAI, model: str, mode: str) -> tuple[int, int]:
    """(prompt, completion) tokens of one call as the client can know them: ``usage`` when
    the server reports it, else the content chunks and the ledger's documented estimate."""
    if mode == "whole":
        reply = await sdk.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
        assert reply.usage is not None
        return reply.usage.prompt_tokens, reply.usage.completion_tokens
    include = mode == "stream+usage"
    stream = await sdk.chat.completions.create(
        model=model, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True} if include else None)
    chunks = 0
    reported: tuple[int, int] | None = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            chunks += 1
        if chunk.usage is not None:
            reported = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
    if include:
        assert reported is not None
        return reported
    assert reported is None
    return ESTIMATED_PROMPT, chunks


async def test_ledger_sums_equal_the_usage_a_real_mixed_concurrent_load_reports(
    http: aiohttp.ClientSession, gw_hub: HubServer,
    fakes: tuple[FakeOpenAIServer, FakeOpenAIServer],
) -> None:
    small, big = fakes
    code = await room_entry(http, gw_hub, "small-entry", "L0", "small", small.url)
    status, _ = await Api(http, gw_hub).call("POST", f"/rooms/{code}/join", {
        "id": "p-big", "nickname": "big", "model": "big", "endpoint": big.url})
    assert status == 201
    room_sdk = client(f"{gw_hub.url}/rooms/{code}/v1")
    root_sdk = client(f"{gw_hub.url}/v1")
    modes = ("whole", "stream+usage", "stream")
    calls = [one_call(room_sdk, model, mode) for model in ("small", "big") for mode in modes
             for _ in range(4)]
    calls += [one_call(root_sdk, "small-entry", mode) for mode in modes for _ in range(3)]
    try:
        results = await asyncio.wait_for(asyncio.gather(*calls), 60)
    finally:
        await room_sdk.close()
        await root_sdk.close()

    status, report = await usage(http, gw_hub, await login(http, gw_hub), groupBy="model")
    assert status == 200 and report["groupBy"] == "model"
    assert sum(r["requests"] for r in report["data"]) == len(results) == 33
    assert sum(r["promptTokens"] for r in report["data"]) == sum(p for p, _ in results)
    assert sum(r["completionTokens"] for r in report["data"]) == sum(c for _, c in results)
    by_model = {r["model"]: r for r in report["data"]}
    assert set(by_model) == {"small", "big", "small-entry"}
    assert by_model["big"]["completionTokens"] == 12 * 12  # 12 calls, 12 tokens each.
    assert by_model["small"]["completionTokens"] == 12 * 7
    assert by_model["small-entry"]["completionTokens"] == 9 * 7
    # Streams without usage were counted: prompt estimated, completion from the chunks.
    assert by_model["big"]["promptTokens"] == 8 * 5 + 4 * ESTIMATED_PROMPT
    assert all(r["errors"] == 0 and r["cost"] == 0 for r in report["data"])
    assert all(r["totalTokens"] == r["promptTokens"] + r["completionTokens"]
               for r in report["data"])


async def test_group_by_each_field_and_bad_queries(
    http: aiohttp.ClientSession, gw_hub: HubServer, upstream: FakeOpenAIServer,
) -> None:
    api = Api(http, gw_hub)
    code = (await api.create_room())["code"]
    assert (await api.join(code, endpoint=upstream.url))[0] == 201
    alice = await make_key(http, gw_hub, "alice")
    chat = {"model": "llama3.2:3b", "messages": MESSAGES}
    for bearer in (alice["key"], alice["key"], None):
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        async with http.post(f"{gw_hub.url}/rooms/{code}/v1/chat/completions", json=chat,
                             headers=headers) as response:
            assert response.status == 200, await response.text()
    upstream.behaviour.error_status = 500  # An error row: counted in requests and errors.
    async with http.post(f"{gw_hub.url}/rooms/{code}/v1/chat/completions",
                         json=chat) as response:
        assert response.status == 500
    admin = await login(http, gw_hub)
    totals = {"requests": 4, "errors": 1, "promptTokens": 15, "completionTokens": 48,
              "totalTokens": 63, "cost": 0.0}

    status, body = await usage(http, gw_hub, admin, groupBy="key")
    assert status == 200
    assert sorted(body["data"], key=lambda r: r["key"] or "") == [
        {"key": None, "keyId": None, "address": "127.0.0.1", "requests": 2, "errors": 1,
         "promptTokens": 5, "completionTokens": 16, "totalTokens": 21, "cost": 0.0},
        {"key": "alice", "keyId": alice["id"], "address": None, "requests": 2, "errors": 0,
         "promptTokens": 10, "completionTokens": 32, "totalTokens": 42, "cost": 0.0}]
    status, body = await usage(http, gw_hub, admin, groupBy="room")
    assert body["data"] == [{"room": code, **totals}]
    status, body = await usage(http, gw_hub, admin, groupBy="participant")
    assert body["data"] == [{"room": code, "participant": "p1", **totals}]
    status, body = await usage(http, gw_hub, admin, groupBy="day")
    assert body["data"] == [{"day": utc_day(now_ms()), **totals}]
    status, body = await usage(http, gw_hub, admin)  # groupBy defaults to key.
    assert body["groupBy"] == "key" and body["to"] - body["from"] == 30 * DAY_MS
    # A window that ends before today holds nothing; ISO dates and epoch ms both read.
    status, body = await usage(http, gw_hub, admin, groupBy="model", **{
        "from": "2020-01-01", "to": "2020-01-31"})
    assert (status, body["data"]) == (200, [])
    assert body["to"] - body["from"] == 31 * DAY_MS - 1
    status, body = await usage(http, gw_hub, admin, groupBy="model",
                               **{"from": str(now_ms() - 60_000)})
    assert body["data"][0]["requests"] == 4
    for query, field in (({"groupBy": "nonsense"}, "groupBy"), ({"from": "yesterday"}, "from"),
                         ({"to": "2020-13-45"}, "to"),
                         ({"from": "2021-01-02", "to": "2021-01-01"}, "from")):
        status, body = await usage(http, gw_hub, admin, **query)
        assert (status, body["error"]) == (400, f"Invalid field: {field}"), query


async def test_a_key_reads_only_its_own_usage_and_nobody_else_reads_any(
    http: aiohttp.ClientSession, gw_hub: HubServer, upstream: FakeOpenAIServer,
) -> None:
    api = Api(http, gw_hub)
    code = (await api.create_room())["code"]
    assert (await api.join(code, endpoint=upstream.url))[0] == 201
    alice = await make_key(http, gw_hub, "alice")
    bob = await make_key(http, gw_hub, "bob")
    for key, times in ((alice, 1), (bob, 3)):
        for _ in range(times):
            async with http.post(f"{gw_hub.url}/rooms/{code}/v1/chat/completions",
                                 json={"model": "llama3.2:3b", "messages": MESSAGES},
                                 headers={"Authorization": f"Bearer {key['key']}"}) as r:
                assert r.status == 200
    for group_by in ("key", "model", "day"):
        status, body = await usage(http, gw_hub, {"Authorization": f"Bearer {alice['key']}"},
                                   groupBy=group_by)
        assert status == 200 and [r["requests"] for r in body["data"]] == [1], group_by
    status, body = await usage(http, gw_hub, {"Authorization": f"Bearer {bob['key']}"})
    assert [(r["key"], r["requests"]) for r in body["data"]] == [("bob", 3)]
    for headers in ({}, {"Authorization": "Bearer unused"},
                    {"Authorization": f"Bearer {alice['key'][:-2]}xx"}):
        status, body = await usage(http, gw_hub, headers)
        assert status == 401, headers
    async with http.delete(f"{gw_hub.url}/v1/keys/{alice['id']}",
                           headers=await login(http, gw_hub)) as response:
        assert response.status == 200
    status, _ = await usage(http, gw_hub, {"Authorization": f"Bearer {alice['key']}"})
    assert status == 401


async def test_a_participants_people_are_visible_to_its_secret_and_the_admin_only(
    http: aiohttp.ClientSession, gw_hub: HubServer, upstream: FakeOpenAIServer,
) -> None:
    api = Api(http, gw_hub)
    code = (await api.create_room())["code"]
    status, joined = await api.join(code, endpoint=upstream.url)
    status2, other = await api.join(code, id="p2", nickname="Bob", endpoint=upstream.url)
    assert (status, status2) == (201, 201)
    await api.call("DELETE", f"/rooms/{code}/leave/p2")  # Every chat goes to p1.
    carol = await make_key(http, gw_hub, "carol")
    for bearer in (carol["key"], carol["key"], "unused"):
        async with http.post(f"{gw_hub.url}/rooms/{code}/v1/chat/completions",
                             json={"model": "llama3.2:3b", "messages": MESSAGES},
                             headers={"Authorization": f"Bearer {bearer}"}) as response:
            assert response.status == 200
    path = f"{gw_hub.url}/rooms/{code}/participants/p1/usage"
    wanted = {"participantId": "p1", "people": [
        {"person": "carol", "keyId": carol["id"], "requests": 2, "promptTokens": 10,
         "completionTokens": 32},
        {"person": "127.0.0.1", "keyId": None, "requests": 1, "promptTokens": 5,
         "completionTokens": 16}]}
    secret = {"X-Gambiarra-Participant-Secret": joined["participantSecret"]}
    for headers in (secret, await login(http, gw_hub)):
        async with http.get(path, headers=headers) as response:
            assert (response.status, await response.json()) == (200, wanted)
    refusals = (({}, 401), ({"Authorization": "Bearer not-the-admin"}, 401),
                ({"Authorization": f"Bearer {carol['key']}"}, 401),
                ({"X-Gambiarra-Participant-Secret": "guess"}, 403),
                ({"X-Gambiarra-Participant-Secret": other["participantSecret"]}, 403))
    for headers, wanted_status in refusals:
        async with http.get(path, headers=headers) as response:
            assert response.status == wanted_status, headers
            assert "people" not in await response.json()
    async with http.get(f"{gw_hub.url}/rooms/NOROOM/participants/p1/usage",
                        headers=secret) as response:
        assert response.status == 404


async def test_every_failover_attempt_and_a_broken_stream_are_rows(
    http: aiohttp.ClientSession, gw_hub: HubServer,
    fakes: tuple[FakeOpenAIServer, FakeOpenAIServer],
) -> None:
    first, second = fakes
    api = Api(http, gw_hub)
    code = (await api.create_room())["code"]
    for participant, fake in (("p1", first), ("p2", second)):
        status, _ = await api.join(code, id=participant, model="m", endpoint=fake.url)
        assert status == 201
        fake.behaviour.error_status = 503
    chat = {"model": "m", "messages": MESSAGES}
    async with http.post(f"{gw_hub.url}/rooms/{code}/v1/chat/completions",
                         json=chat) as response:
        assert response.status == 503  # Both tried, the last answer passed on.
    admin = await login(http, gw_hub)
    status, body = await usage(http, gw_hub, admin, groupBy="participant")
    assert sorted((r["participant"], r["requests"], r["errors"]) for r in body["data"]) == [
        ("p1", 1, 1), ("p2", 1, 1)]
    await api.call("DELETE", f"/rooms/{code}/leave/p2")
    first.behaviour.error_status = None
    first.behaviour.break_stream_after = 3
    async with http.post(f"{gw_hub.url}/rooms/{code}/v1/chat/completions",
                         json={**chat, "stream": True}) as response:
        text = await response.text()
        assert response.status == 200 and '"upstream_error"' in text
    status, body = await usage(http, gw_hub, admin, groupBy="participant")
    by_participant = {r["participant"]: r for r in body["data"]}
    assert by_participant["p1"] | {"room": code} == {
        "room": code, "participant": "p1", "requests": 2, "errors": 2,
        "promptTokens": ESTIMATED_PROMPT, "completionTokens": 3,
        "totalTokens": ESTIMATED_PROMPT + 3, "cost": 0.0}


# --- the writer --------------------------------------------------------------------------

def row(ts_ms: int | None = None, **fields: Any) -> UsageRow:
    values: dict[str, Any] = {
        "ts_ms": now_ms() if ts_ms is None else ts_ms, "key_id": None,
        "address": "127.0.0.1", "room": "ABC123", "participant": "p1",
        "provider": "gambiarra", "model": "m", "layer": None, "prompt_tokens": 3,
        "completion_tokens": 4, "cost": 0.0, "latency_ms": 1.0, "ttft_ms": 0.5,
        "status": 200, "person": "addr:127.0.0.1"}
    return UsageRow(**{**values, **fields})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    sqlite = SqliteStore(tmp_path / "ledger.db")
    await sqlite.open()
    yield sqlite
    await sqlite.close()


async def count_rows(store: SqliteStore) -> int:
    ((count,),) = await store.run(lambda c: c.execute("SELECT COUNT(*) FROM usage").fetchall())
    return int(count)


async def test_a_2000_row_burst_is_written_in_a_few_batches(store: SqliteStore) -> None:
    ledger = Ledger(store, EventBus(), GatewaySettings)
    await ledger.open()
    try:
        started = time.perf_counter()
        for _ in range(2000):
            ledger.record(row())
        recording_s = time.perf_counter() - started
        await eventually(lambda: ledger.store.batches_written >= 1, within_s=5)
        await asyncio.sleep(0.05)
        assert await count_rows(store) == 2000  # Without any flush() from here.
        assert 1 <= ledger.store.batches_written <= 4  # Not 2000 single inserts.
        assert recording_s < 1.0
    finally:
        await ledger.close()


async def test_nothing_recorded_is_lost_at_stop(store: SqliteStore) -> None:
    ledger = Ledger(store, EventBus(), GatewaySettings)
    await ledger.open()
    for index in range(7):
        ledger.record(row(prompt_tokens=index))
    await ledger.close()  # Well within the writer's 0.5 s: only close() writes them.
    assert await count_rows(store) == 7


async def test_the_retention_sweep_deletes_rows_older_than_the_setting(
    store: SqliteStore,
) -> None:
    settings = GatewaySettings(usageRetentionDays=2)
    ledger = Ledger(store, EventBus(), lambda: settings)
    await ledger.open()
    try:
        now = now_ms()
        for age_days in (0, 1.1, 1.9, 2.1, 30, 400):
            ledger.record(row(ts_ms=int(now - age_days * DAY_MS)))
        await ledger.flush()
        assert await ledger.sweep() == 3
        assert await count_rows(store) == 3
        settings = GatewaySettings(usageRetentionDays=1)
        assert await ledger.sweep() == 2
        assert await count_rows(store) == 1
    finally:
        await ledger.close()


async def test_spend_totals_survive_a_restart(store: SqliteStore) -> None:
    ledger = Ledger(store, EventBus(), GatewaySettings)
    await ledger.open()
    ledger.record(row(key_id="k1", cost=0.25, person="key:k1"))
    ledger.record(row(key_id="k1", cost=0.5, person="key:k1"))
    ledger.record(row(key_id="k1", cost=9.0, person="key:k1", ts_ms=now_ms() - 40 * DAY_MS))
    await ledger.close()
    again = Ledger(store, EventBus(), GatewaySettings)
    await again.open()
    try:
        assert again.spent("k1", "day") == 0.75
        assert again.key_totals("k1").requests == 3
        assert again.spent("other", "month") == 0.0
    finally:
        await again.close()
