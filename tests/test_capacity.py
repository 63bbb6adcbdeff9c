"""How many requests a participant gets at once: declared, stated by its model server, or
learned by the hub (AIMD). Before, a participant that declared nothing got 1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub.proxy.capacity import (
    INITIAL_LIMIT,
    MAX_LIMIT,
    MIN_LIMIT,
    AimdLimit,
    Capacity,
)
from gambiarra_desktop.share.agent import ShareAgent, ShareSettings
from tests.conftest import Api, eventually
from tests.llama_server import llama_server

MESSAGES = [{"role": "user", "content": "hi"}]


# The AIMD rule, with no I/O.

def test_starts_at_four() -> None:
    assert AimdLimit().limit == INITIAL_LIMIT == 4
    assert Capacity().limit == 4 and Capacity().source == "adaptive"


def test_grows_under_good_latency_only_when_saturated() -> None:
    limit = AimdLimit()
    for _ in range(5):
        limit.on_success(100.0, in_flight=1)  # Not the constraint: no reason to grow.
    assert limit.limit == 4
    limit.on_success(110.0, in_flight=4)
    assert limit.limit == 5
    for in_flight in range(5, 12):
        limit.on_success(105.0, in_flight=in_flight)
    assert limit.limit == 12


def test_backs_off_on_overload_and_on_slow_answers() -> None:
    limit = AimdLimit(initial=20)
    limit.on_overload()
    assert limit.limit == 18  # floor(20 * 0.9)
    limit.on_success(100.0, in_flight=1)  # Sets the baseline.
    limit.on_success(180.0, in_flight=18)  # Within 2x the baseline: fine, and saturated.
    assert limit.limit == 19
    limit.on_success(450.0, in_flight=1)  # Queued inside the server: too slow.
    assert limit.limit == 17
    small = AimdLimit(initial=4)
    small.on_overload()
    assert small.limit == 3  # Always at least one less.


def test_small_latencies_get_an_absolute_slack() -> None:
    limit = AimdLimit()
    limit.on_success(2.0, in_flight=1)
    limit.on_success(60.0, in_flight=1)  # 30x a 2 ms baseline, but within 100 ms of it.
    assert limit.limit == 4


def test_whole_answers_are_judged_against_their_own_baseline() -> None:
    limit = AimdLimit()
    limit.on_success(50.0, in_flight=1, kind="first_token")
    limit.on_success(400.0, in_flight=1, kind="per_token")  # No per-token baseline yet.
    assert limit.limit == 4
    limit.on_success(1000.0, in_flight=1, kind="per_token")
    assert limit.limit == 3


def test_bounds() -> None:
    limit = AimdLimit()
    for _ in range(10):
        limit.on_overload()
    assert limit.limit == MIN_LIMIT == 1
    for _ in range(200):
        limit.on_success(10.0, in_flight=limit.limit)
    assert limit.limit == MAX_LIMIT == 64
    assert AimdLimit(initial=500).limit == 64 and AimdLimit(initial=0).limit == 1


def test_a_declared_limit_is_fixed_and_a_learned_one_survives_a_rejoin() -> None:
    capacity = Capacity()
    capacity.configure(2, "declared")
    capacity.on_overload()
    capacity.on_success(1.0, in_flight=2, kind="first_token")
    assert (capacity.limit, capacity.source) == (2, "declared")
    capacity.configure(None, "declared")
    assert (capacity.limit, capacity.source) == (4, "adaptive")
    capacity.on_success(1.0, in_flight=4, kind="first_token")
    capacity.configure(None, "declared")  # Joined again: keeps what it learned.
    assert capacity.limit == 5
    capacity.configure(3, "server")
    assert (capacity.limit, capacity.source) == (3, "server")


# Through the hub.

async def metrics_of(api: Api, code: str) -> dict[str, Any]:
    _, listing = await api.call("GET", f"/rooms/{code}/participants")
    metrics: dict[str, Any] = listing["participants"][0]["metrics"]
    return metrics


async def chat(api: Api, code: str) -> int:
    async with api.http.post(f"{api.hub.url}/rooms/{code}/v1/chat/completions",
                             json={"model": "*", "messages": MESSAGES}) as response:
        await response.read()
        return response.status


async def test_a_participant_that_declares_nothing_serves_four_at_once(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    code = (await api.create_room())["code"]
    status, _ = await api.join(code, id="original-client", endpoint=upstream.url)
    assert status == 201
    upstream.behaviour.first_token_delay_s = 0.6
    requests = [asyncio.ensure_future(chat(api, code)) for _ in range(6)]
    try:
        await eventually(lambda: upstream.in_flight == 4)
        _, listing = await api.call("GET", f"/rooms/{code}/participants")
        assert listing["queue"] == {"waiting": 2}  # The limit, not the model server, held them.
        metrics = listing["participants"][0]["metrics"]
        assert (metrics["maxConcurrent"], metrics["concurrencySource"]) == (4, "adaptive")
        assert metrics["inFlight"] == 4
    finally:
        assert await asyncio.gather(*requests) == [200] * 6
    # It was saturated and answered in good time: the limit grew.
    assert (await metrics_of(api, code))["maxConcurrent"] > 4


async def test_a_declared_limit_is_kept_and_shown(api: Api, upstream: FakeOpenAIServer) -> None:
    code = (await api.create_room())["code"]
    await api.join(code, id="careful", endpoint=upstream.url, config={"maxConcurrent": 2})
    upstream.behaviour.first_token_delay_s = 0.2
    assert await asyncio.gather(*(chat(api, code) for _ in range(5))) == [200] * 5
    assert upstream.max_in_flight == 2
    metrics = await metrics_of(api, code)
    assert (metrics["maxConcurrent"], metrics["concurrencySource"]) == (2, "declared")


async def test_overload_answers_lower_a_learned_limit(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    code = (await api.create_room())["code"]
    await api.join(code, id="busy", endpoint=upstream.url)
    upstream.behaviour.error_status = 429
    upstream.behaviour.error_body = {"error": {"message": "busy", "type": "rate_limit"}}
    assert await chat(api, code) == 429
    assert (await metrics_of(api, code))["maxConcurrent"] == 3


class SlotsServer(FakeOpenAIServer):
    """The fake model server plus llama.cpp's ``GET /props``."""

    total_slots: Any = 200

    def make_app(self) -> web.Application:
        app = super().make_app()

        async def props(request: web.Request) -> web.Response:
            return web.json_response({"total_slots": self.total_slots, "model_alias": "x"})

        app.router.add_get("/props", props)
        return app


@pytest.fixture
async def slots_server() -> AsyncIterator[SlotsServer]:
    async with SlotsServer(models=("llama3.2:3b",)) as server:
        yield server


async def share(api: Api, endpoint: str, model: str, **config: Any) -> tuple[str, ShareAgent]:
    code = (await api.create_room())["code"]
    agent = ShareAgent(api.hub.url, ShareSettings(
        room_code=code, model=model, endpoint=endpoint, nickname="Agent", config=config,
        health_interval_s=0.2, backoff_initial_s=0.05, backoff_max_s=0.2))
    await agent.start()
    await eventually(lambda: agent.status.state == "sharing", within_s=10)
    return code, agent


async def test_the_agent_sends_what_the_server_says_clamped(
    api: Api, slots_server: SlotsServer
) -> None:
    code, agent = await share(api, slots_server.url, "llama3.2:3b")
    try:
        metrics = await metrics_of(api, code)
        assert (metrics["maxConcurrent"], metrics["concurrencySource"]) == (64, "server")
    finally:
        await agent.stop()
    slots_server.total_slots = "many"  # Nonsense: the hub learns it instead.
    code, agent = await share(api, slots_server.url, "llama3.2:3b")
    try:
        metrics = await metrics_of(api, code)
        assert (metrics["maxConcurrent"], metrics["concurrencySource"]) == (4, "adaptive")
    finally:
        await agent.stop()


async def test_the_users_own_number_beats_the_server(
    api: Api, slots_server: SlotsServer
) -> None:
    code, agent = await share(api, slots_server.url, "llama3.2:3b", maxConcurrent=2)
    try:
        metrics = await metrics_of(api, code)
        assert (metrics["maxConcurrent"], metrics["concurrencySource"]) == (2, "declared")
    finally:
        await agent.stop()


# A real llama.cpp server, started with 3 parallel slots.

@pytest.fixture(scope="module")
def llama_three_slots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with llama_server(tmp_path_factory.mktemp("model"), n_parallel=3) as (url, model):
        yield url, str(model)


@pytest.mark.slow
async def test_the_agent_sends_llamacpp_total_slots(
    api: Api, llama_three_slots: tuple[str, str]
) -> None:
    url, model = llama_three_slots
    code, agent = await share(api, url, model)
    try:
        metrics = await metrics_of(api, code)
        assert (metrics["maxConcurrent"], metrics["concurrencySource"]) == (3, "server")
    finally:
        await agent.stop()
