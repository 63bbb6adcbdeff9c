"""Rate limits in a real ``redis-server``: the same numbers as in memory, keys that expire
with their window, counts shared between limiters (and hub processes), and a Redis that
dies mid-run: requests still go through, counted in memory, and ``/health`` says so."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import redis.asyncio as redis

from gambiarra_desktop.accounting.rate_limits import LimitRule, make_rate_limiter
from gambiarra_desktop.accounting.redis_counters import RedisRateLimiter
from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from tests.gateway_testkit import ADMIN_PASSWORD
from tests.redis_server import RedisServer, running_redis
from tests.test_rate_limits import HOUR, MINUTE, TPM, FakeClock

T = TypeVar("T")
CHAT = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hello"}]}



@pytest.fixture
def redis_server() -> AsyncIterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture
async def limiter(redis_server: RedisServer) -> AsyncIterator[RedisRateLimiter]:
    made = make_rate_limiter(redis_server.unix_url, FakeClock(time.time()))
    assert isinstance(made, RedisRateLimiter)
    yield made
    await made.close()


async def test_counts_refuses_and_names_keys_by_window(redis_server: RedisServer) -> None:
    now = float(int(time.time()) // 60 * 60 + 12)  # A real time: keys expire for real.
    limiter = RedisRateLimiter(redis_server.unix_url, FakeClock(now))
    try:
        assert limiter.backend == "redis"
        reset = int(now) - 12 + 60
        for remaining in (2, 1, 0):
            verdict = await limiter.hit("addr:10.0.0.1", [MINUTE])
            assert verdict.headers() == {"X-RateLimit-Limit": "3",
                                         "X-RateLimit-Remaining": str(remaining),
                                         "X-RateLimit-Reset": str(reset)}
        refused = await limiter.hit("addr:10.0.0.1", [MINUTE])
        assert not refused.allowed and refused.retry_after_s == 48
        assert refused.details == "address-minute allows 3 per minute"
        async with redis.Redis.from_url(redis_server.unix_url, decode_responses=True) as direct:
            key = f"gambiarra:rl:addr:10.0.0.1:address-minute:{reset - 60}"
            assert await direct.get(key) == "3"  # The refusal counted nothing.
            expire_at = await direct.expiretime(key)
            assert reset < expire_at <= reset + 60  # Gone soon after its window.
            assert await direct.keys("gambiarra:rl:*") == [key]
        assert limiter.redis_answering()
        assert await limiter.healthy()
    finally:
        await limiter.close()


async def test_refusal_counts_nothing_and_token_rules(limiter: RedisRateLimiter) -> None:
    rpm = LimitRule("key-rpm", 1000, 60)
    for _ in range(5):
        assert (await limiter.hit("key:a", [rpm, HOUR], [TPM])).allowed
    assert not (await limiter.hit("key:a", [rpm, HOUR], [TPM])).allowed
    other = await limiter.hit("key:b", [rpm], [TPM])
    await limiter.add_tokens("key:b", TPM, 100)
    refused = await limiter.hit("key:b", [rpm], [TPM])
    assert other.allowed and not refused.allowed
    assert refused.details == "key-tpm allows 100 per minute"
    third = await limiter.hit("key:a", [rpm], [])
    assert third.remaining == 1000 - 6  # 5 counted, the refused one not, this one yes.


async def test_two_limiters_share_one_count_without_overshoot(
        redis_server: RedisServer) -> None:
    """Two hubs' limiters on one Redis: 300 concurrent hits against a limit of 100 let
    exactly 100 through, each remaining value once (one atomic script per hit)."""
    first = RedisRateLimiter(redis_server.unix_url)
    second = RedisRateLimiter(redis_server.unix_url)
    rule = LimitRule("address-minute", 100, 3600)  # An hour: no window edge mid-test.
    try:
        verdicts = await asyncio.gather(*(
            (first if i % 2 else second).hit("addr:10.9.9.9", [rule]) for i in range(300)))
    finally:
        await first.close()
        await second.close()
    assert sum(v.allowed for v in verdicts) == 100
    assert sorted(v.remaining for v in verdicts if v.allowed) == list(range(100))


async def test_redis_killed_mid_run_fails_open_in_memory(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisRateLimiter(redis_server.unix_url)
    rule = LimitRule("address-minute", 1000, 3600)
    try:
        for _ in range(5):
            assert (await limiter.hit("addr:1.2.3.4", [rule])).allowed
        assert await limiter.healthy() and limiter.redis_answering()
        redis_server.kill()
        caplog.set_level(logging.WARNING, "gambiarra_desktop.accounting.redis_counters")
        started = time.monotonic()
        verdicts = [await limiter.hit("addr:1.2.3.4", [rule]) for _ in range(50)]
        elapsed = time.monotonic() - started
        assert all(v.allowed for v in verdicts)
        assert verdicts[0].headers()["X-RateLimit-Limit"] == "1000"  # Counted in memory.
        assert elapsed < 2.0, elapsed  # No per-request wait on a dead Redis.
        assert not limiter.redis_answering()
        assert not await limiter.healthy()
        warnings = [r for r in caplog.records if "Redis does not answer" in r.getMessage()]
        assert len(warnings) == 1  # Once per outage, not once per request.
        # The limits still hold, per hub, while Redis is away.
        tight = LimitRule("key-rpm", 2, 60)
        assert [(await limiter.hit("key:x", [tight])).allowed for _ in range(3)] == [
            True, True, False]
    finally:
        await limiter.close()


async def test_an_unreachable_redis_at_start_is_not_fatal() -> None:
    limiter = make_rate_limiter("redis://127.0.0.1:9/0")  # discard port: nothing listens
    try:
        verdict = await limiter.hit("addr:1.2.3.4", [MINUTE])
        assert verdict.allowed and verdict.remaining == 2
        assert not await limiter.healthy() and not limiter.redis_answering()
    finally:
        await limiter.close()


async def test_count_tokens_from_synchronous_code_lands_in_redis(
        limiter: RedisRateLimiter) -> None:
    rpm = LimitRule("key-rpm", 1000, 60)
    limiter.count_tokens("key:t", TPM, 60)
    limiter.count_tokens("key:t", TPM, 40)
    deadline = time.monotonic() + 5
    while (await limiter.hit("key:t", [rpm], [TPM])).allowed:
        assert time.monotonic() < deadline, "the tokens never reached Redis"
        await asyncio.sleep(0.02)


class ServedHub:
    """``gambiarra serve`` in its own process, its output in a file (a pipe nobody reads
    could fill and stall it)."""

    def __init__(self, directory: Path, redis_url: str) -> None:
        directory.mkdir()
        self.output = directory / "output.txt"
        env = {**os.environ, "GAMBIARRA_ADMIN_PASSWORD": ADMIN_PASSWORD}
        with self.output.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gambiarra_desktop.cli", "serve", "--host", "127.0.0.1",
                 "--port", "0", "--data-dir", str(directory / "data"), "--redis-url",
                 redis_url], stdout=sink, stderr=subprocess.STDOUT, env=env)
        self.url = ""

    async def started(self) -> str:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"listening on 127\.0\.0\.1:(\d+)",
                                      self.output.read_text(errors="replace"))):
            assert self.process.poll() is None, self.output.read_text(errors="replace")
            assert time.monotonic() < deadline, "the hub did not start in 30 s"
            await asyncio.sleep(0.05)
        self.url = f"http://127.0.0.1:{match.group(1)}"
        return self.url

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


async def test_two_served_hubs_share_the_count_and_survive_redis_dying(
        tmp_path: Path, upstream: FakeOpenAIServer) -> None:
    """Two ``gambiarra serve`` processes on one redis-server (TCP): keyless requests to
    the gateway root alternate between them and the 101st is refused by either; then Redis
    is killed: keyed chats are still answered (counted in memory) and /health says so."""
    with running_redis(tcp=True) as server:
        hubs = [ServedHub(tmp_path / name, server.url) for name in ("a", "b")]
        try:
            first, second = [await hub.started() for hub in hubs]
            timeout = aiohttp.ClientTimeout(total=20)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async def health(url: str) -> dict[str, Any]:
                    async with http.get(f"{url}/health") as response:
                        body: dict[str, Any] = await response.json()
                        return body

                for url in (first, second):
                    await eventually_async(lambda u=url: health(u), lambda h: h["redis"])
                # A room with a model on hub a, and a key of hub a, for after Redis dies.
                async with http.post(f"{first}/rooms", json={"name": "Lab"}) as response:
                    code = (await response.json())["room"]["code"]
                async with http.post(f"{first}/rooms/{code}/join", json={
                        "id": "p1", "nickname": "Alice", "model": "llama3.2:3b",
                        "endpoint": upstream.url}) as response:
                    assert response.status == 201, await response.text()
                async with http.post(f"{first}/v1/auth/login", json={
                        "username": "admin", "password": ADMIN_PASSWORD}) as response:
                    admin = {"Authorization": f"Bearer {(await response.json())['token']}"}
                async with http.post(f"{first}/v1/keys", json={"name": "ci"},
                                     headers=admin) as response:
                    key = {"Authorization": f"Bearer {(await response.json())['key']}"}

                left = 60 - time.time() % 60
                if left < 15:  # 101 requests must fall in one minute.
                    await asyncio.sleep(left + 0.05)
                remaining = []
                for i in range(100):
                    async with http.post(f"{(first, second)[i % 2]}/v1/chat/completions",
                                         json=CHAT) as response:
                        assert response.status != 429, await response.text()
                        assert response.headers["X-RateLimit-Limit"] == "100"
                        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
                assert remaining == list(range(99, -1, -1))  # One count, not two.
                for url in (first, second):
                    async with http.post(f"{url}/v1/chat/completions", json=CHAT) as response:
                        assert response.status == 429
                        assert (await response.json())["details"] == (
                            "address-minute allows 100 per minute")

                server.kill()
                room_chat = f"{first}/rooms/{code}/v1/chat/completions"
                for _ in range(3):
                    async with http.post(room_chat, json=CHAT, headers=key) as response:
                        assert response.status == 200, await response.text()
                        assert (await response.json())["choices"][0]["message"]["content"]
                        assert response.headers["X-RateLimit-Limit"] == "1000"
                for url in (first, second):
                    await eventually_async(lambda u=url: health(u), lambda h: not h["redis"],
                                           within_s=15)
                assert "Redis does not answer" in hubs[0].output.read_text()
        finally:
            for hub in hubs:
                hub.stop()


async def eventually_async(fetch: Callable[[], Awaitable[T]], holds: Callable[[T], object],
                           within_s: float = 10.0) -> T:
    deadline = time.monotonic() + within_s
    while True:
        value = await fetch()
        if holds(value):
            return value
        assert time.monotonic() < deadline, f"not reached in {within_s} s: {value!r}"
        await asyncio.sleep(0.1)
