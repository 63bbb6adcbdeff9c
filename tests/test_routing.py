"""Load-aware routing, per-participant concurrency, the fair queue, failover and metrics."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig, HubServer
from tests.conftest import Api, HubFactory
from tests.sse_client import SseReader

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def second_upstream() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(models=("llama3.2:3b",)) as server:
        yield server


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tokens(text: str) -> int:
    """The fake model's tokens in an answer, streamed or not."""
    return len(re.findall(r"tok\d+ ", text))


async def chat(api: Api, code: str, model: str = "*", stream: bool = False
               ) -> tuple[int, str, dict[str, str]]:
    url = f"{api.hub.url}/rooms/{code}/v1/chat/completions"
    payload = {"model": model, "messages": MESSAGES, "stream": stream}
    async with api.http.post(url, json=payload) as response:
        return response.status, await response.text(), dict(response.headers)


async def test_load_spreads_and_concurrency_is_respected(
    api: Api, upstream: FakeOpenAIServer, second_upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    code = room["code"]
    await api.join(code, id="a", endpoint=upstream.url, config={"maxConcurrent": 1})
    await api.join(code, id="b", endpoint=second_upstream.url, config={"maxConcurrent": 1})
    for server in (upstream, second_upstream):
        server.behaviour.tokens = 4
        server.behaviour.token_delay_s = 0.05
    results = await asyncio.gather(*(chat(api, code, stream=True) for _ in range(6)))
    assert [status for status, _, _ in results] == [200] * 6
    assert all(tokens(text) == 4 for _, text, _ in results)
    served = {"a": len(upstream.requests), "b": len(second_upstream.requests)}
    assert served == {"a": 3, "b": 3}, served
    # A declared maxConcurrent of 1: neither model server ever ran two requests at once.
    assert upstream.max_in_flight == second_upstream.max_in_flight == 1
    by_header = sorted(headers["X-Gambiarra-Participant"] for _, _, headers in results)
    assert by_header == ["a", "a", "a", "b", "b", "b"]


async def test_the_least_loaded_participant_gets_the_request(
    api: Api, upstream: FakeOpenAIServer, second_upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    code = room["code"]
    for pid, server in (("a", upstream), ("b", second_upstream)):
        await api.join(code, id=pid, endpoint=server.url, config={"maxConcurrent": 4})
        server.behaviour.token_delay_s = 0.05
    await asyncio.gather(*(chat(api, code) for _ in range(4)))
    assert (len(upstream.requests), len(second_upstream.requests)) == (2, 2)


async def test_queue_waits_fairly_then_answers_429(
    make_hub: HubFactory, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    hub = await make_hub(HubConfig(queue_max_per_room=1, queue_max_wait_s=0.5))
    api = Api(http, hub)
    room = await api.create_room()
    code = room["code"]
    await api.join(code, id="solo", endpoint=upstream.url, config={"maxConcurrent": 1})
    upstream.behaviour.tokens = 5
    upstream.behaviour.token_delay_s = 0.3  # 1.2 s per answer.
    async with http.get(f"{hub.url}/rooms/{code}/events") as events_response:
        events = SseReader(events_response)
        await events.next_event()
        first = asyncio.ensure_future(chat(api, code, stream=True))
        await asyncio.sleep(0.2)
        second = asyncio.ensure_future(chat(api, code))
        queued = await events.events_until("llm:queued")
        assert queued[-1][1] == {"position": 1}
        status, text, headers = await chat(api, code)
        assert status == 429
        assert "queue is full" in text
        assert headers["Retry-After"] == "1"
        status, text, headers = await second
        assert status == 429 and "within 0.5 s" in text and headers["Retry-After"] == "1"
        assert (await first)[0] == 200
    status, _, headers = await chat(api, code)
    assert status == 200
    assert headers["X-Gambiarra-Queue-Ms"] == "0"


async def test_a_queued_request_is_served_when_a_slot_frees(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    code = room["code"]
    await api.join(code, id="solo", endpoint=upstream.url, config={"maxConcurrent": 1})
    upstream.behaviour.tokens = 4
    upstream.behaviour.token_delay_s = 0.15
    first = asyncio.ensure_future(chat(api, code, stream=True))
    await asyncio.sleep(0.1)
    status, _, headers = await chat(api, code)
    assert status == 200
    assert int(headers["X-Gambiarra-Queue-Ms"]) >= 200  # It waited for the first answer.
    assert (await first)[0] == 200


async def test_failover_before_the_first_byte(
    api: Api, upstream: FakeOpenAIServer, second_upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    code = room["code"]
    await api.join(code, id="dead", endpoint=f"http://127.0.0.1:{_closed_port()}",
                   model="llama3.2:3b")
    await api.join(code, id="broken", endpoint=second_upstream.url)
    await api.join(code, id="good", endpoint=upstream.url)
    second_upstream.behaviour.error_status = 500
    for stream in (False, True, False, True, False, True):
        status, text, headers = await chat(api, code, stream=stream)
        assert status == 200, text
        assert headers["X-Gambiarra-Participant"] == "good"
        assert tokens(text) == 16
    _, listing = await api.call("GET", f"/rooms/{code}/participants")
    metrics = {p["id"]: p["metrics"] for p in listing["participants"]}
    for pid in ("dead", "broken"):
        assert metrics[pid]["degraded"] is True, metrics
        assert metrics[pid]["errors"] == 2  # Degraded after two: then skipped.
    assert metrics["good"]["requests"] == 6 and metrics["good"]["errors"] == 0


async def test_a_named_participant_gets_no_failover(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    code = room["code"]
    await api.join(code, id="dead", endpoint=f"http://127.0.0.1:{_closed_port()}")
    await api.join(code, id="good", endpoint=upstream.url)
    status, text, _ = await chat(api, code, model="dead")
    assert status == 502 and "connection refused" in text
    assert upstream.requests == []


async def test_the_only_participants_own_error_passes_through(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    await api.join(room["code"], id="only", endpoint=upstream.url)
    upstream.behaviour.error_status = 503
    status, text, headers = await chat(api, room["code"])
    assert status == 503 and "model exploded" in text
    assert headers["X-Gambiarra-Participant"] == "only"


@pytest.fixture
def victim() -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A model server in its own process, so a test can really kill it."""
    port = _closed_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gambiarra_desktop.devtools.fake_openai", "--port", str(port),
         "--model", "llama3.2:3b", "--token-delay", "0.01"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None and "Fake OpenAI" in process.stdout.readline()
    yield process, port
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


async def test_killing_a_model_server_under_load_loses_no_unstarted_request(
    api: Api, upstream: FakeOpenAIServer, victim: tuple[subprocess.Popen[str], int]
) -> None:
    """A real crash: the victim is a separate process, killed with SIGKILL mid-load."""
    process, port = victim
    room = await api.create_room()
    code = room["code"]
    await api.join(code, id="victim", endpoint=f"http://127.0.0.1:{port}",
                   config={"maxConcurrent": 4})
    await api.join(code, id="survivor", endpoint=upstream.url, config={"maxConcurrent": 4})
    upstream.behaviour.token_delay_s = 0.01

    async def one(index: int) -> tuple[int, str]:
        status, text, _ = await chat(api, code, stream=index % 2 == 0)
        return status, text

    async def kill_soon() -> None:
        await asyncio.sleep(0.3)
        process.send_signal(signal.SIGKILL)

    async with asyncio.timeout(60):
        killer = asyncio.ensure_future(kill_soon())
        results = []
        for batch in range(8):
            results += await asyncio.gather(*(one(batch * 8 + i) for i in range(8)))
        await killer
    complete = [r for r in results if r[0] == 200 and tokens(r[1]) == 16
                and "Failed to proxy" not in r[1]]
    broken_mid_stream = [r for r in results if r not in complete]
    for status, text in broken_mid_stream:
        # Only streams that had already started may fail, and they end with an error chunk.
        assert status == 200 and "tok0" in text and '"error"' in text, text[:300]
    assert len(complete) >= len(results) - 4, (len(complete), len(results))
    assert len(results) == 64
    # The kill really happened mid-load: the victim served some, then failed some.
    _, listing = await api.call("GET", f"/rooms/{code}/participants")
    metrics = {p["id"]: p["metrics"] for p in listing["participants"]}
    assert metrics["victim"]["requests"] - metrics["victim"]["errors"] >= 1, metrics
    assert metrics["victim"]["errors"] >= 1, metrics
    assert metrics["victim"]["degraded"] is True


async def test_a_dropped_tunnel_is_offline_at_once(
    api: Api, http: aiohttp.ClientSession
) -> None:
    room = await api.create_room()
    code = room["code"]
    _, joined = await api.join(code, id="t", transport="tunnel",
                               endpoint="http://localhost:11434")
    headers = {"Authorization": f"Bearer {joined['tunnelToken']}",
               "X-Gambiarra-Participant": "t"}
    ws = await http.ws_connect(f"{api.hub.url}/rooms/{code}/tunnel", headers=headers)
    await ws.close()
    deadline = time.monotonic() + 2
    while True:
        _, listing = await api.call("GET", f"/rooms/{code}/participants")
        if listing["participants"][0]["status"] == "offline":
            break
        assert time.monotonic() < deadline, "the hub waited for the 30 s timeout"
        await asyncio.sleep(0.02)


async def test_a_loading_participant_gets_grace_and_no_requests(
    make_hub: HubFactory, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    hub = await make_hub(HubConfig(health_check_interval_s=0.05, participant_timeout_s=0.2,
                                   loading_grace_factor=10))
    api = Api(http, hub)
    room = await api.create_room()
    code = room["code"]
    await api.join(code, id="warming", endpoint=upstream.url)
    await api.call("POST", f"/rooms/{code}/health", {"id": "warming", "loading": True})
    status, text, _ = await chat(api, code)
    assert (status, text) == (
        404, '{"error":"No available participant for the requested model"}')
    await asyncio.sleep(0.5)  # Past the normal timeout, within the loading grace.
    _, listing = await api.call("GET", f"/rooms/{code}/participants")
    assert listing["participants"][0]["status"] == "online"
    assert listing["participants"][0]["loading"] is True
    await api.call("POST", f"/rooms/{code}/health", {"id": "warming"})
    assert (await chat(api, code))[0] == 200


async def test_metrics_in_participants_events_and_prometheus(
    api: Api, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room("Metered")
    code = room["code"]
    await api.join(code, id="m1", nickname='Ana "the GPU"', endpoint=upstream.url)
    async with http.get(f"{api.hub.url}/rooms/{code}/events") as events_response:
        events = SseReader(events_response)
        await events.next_event()
        assert (await chat(api, code))[0] == 200
        assert (await chat(api, code, stream=True))[0] == 200
        completes = [e for e in await events.events_until("llm:complete")]
        complete = completes[-1][1]
        assert complete["participant"]["requests"] >= 1
        assert complete["metrics"]["queueMs"] == 0
    _, listing = await api.call("GET", f"/rooms/{code}/participants")
    metrics: dict[str, Any] = listing["participants"][0]["metrics"]
    assert metrics["requests"] == 2 and metrics["errors"] == 0
    assert metrics["tokensOut"] == 32 and metrics["tokensIn"] == 5  # Usage: non-stream only.
    assert metrics["avgTtftMs"] is not None and metrics["inFlight"] == 0
    # No maxConcurrent declared: the hub learns it, from 4.
    assert metrics["maxConcurrent"] == 4 and metrics["concurrencySource"] == "adaptive"
    assert metrics["degraded"] is False
    assert listing["queue"] == {"waiting": 0}
    async with http.get(f"{api.hub.url}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    assert "# TYPE gambiarra_participant_requests_total counter" in text
    line = next(line for line in text.splitlines()
                if line.startswith("gambiarra_participant_requests_total{"))
    assert line.endswith(" 2")
    assert f'room="{code}"' in line and 'nickname="Ana \\"the GPU\\""' in line
    assert re.search(r'^gambiarra_rooms \d+$', text, re.M)
    assert 'gambiarra_participants{status="online"} 1' in text


async def test_bad_max_concurrent_is_refused(api: Api) -> None:
    room = await api.create_room()
    for value in (0, -1, 65, "4", 2.5, True):
        status, body = await api.join(room["code"], config={"maxConcurrent": value})
        assert status == 400, value
        assert "maxConcurrent" in body["error"]


async def test_hub_without_participants_stays_quick(hub: HubServer, api: Api) -> None:
    room = await api.create_room()
    started = time.monotonic()
    status, _, _ = await chat(api, room["code"])
    assert status == 404 and time.monotonic() - started < 2
