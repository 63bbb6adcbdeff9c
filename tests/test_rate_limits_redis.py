"""Rate limits in a real ``redis-server``: the same numbers as in memory, keys that expire
with their window, counts shared between limiters (and hub processes), and a Redis that
dies mid-run: requests still go through, counted in memory, and ``/health`` says so."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from gambiarra_desktop.accounting.rate_limits import LimitRule, make_rate_limiter
from gambiarra_desktop.accounting.redis_counters import RedisRateLimiter
from tests.redis_server import RedisServer, running_redis

MINUTE = LimitRule("address-minute", 3, 60)
HOUR = LimitRule("key-hour", 5, 3600)
TPM = LimitRule("key-tpm", 100, 60)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


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
