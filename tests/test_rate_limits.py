"""The memory rate limiter with a fake clock: exact header values, refusals that count
nothing, token rules, windows aligned to the epoch, expiry and the subject cap."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gambiarra_desktop.accounting.rate_limits import (
    LimitRule,
    MemoryRateLimiter,
    make_rate_limiter,
)

MINUTE = LimitRule("address-minute", 3, 60)
HOUR = LimitRule("key-hour", 5, 3600)
TPM = LimitRule("key-tpm", 100, 60)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_010.25)  # 30.25 s into the minute that ends at 1_700_000_040


def window_end(now: float, window_s: int) -> int:
    return (int(now) // window_s + 1) * window_s


async def test_counts_down_to_the_limit_then_refuses_with_retry_after(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    reset = window_end(clock.now, 60)
    for remaining in (2, 1, 0):
        verdict = await limiter.hit("addr:10.0.0.1", [MINUTE])
        assert verdict.allowed
        assert verdict.headers() == {"X-RateLimit-Limit": "3",
                                     "X-RateLimit-Remaining": str(remaining),
                                     "X-RateLimit-Reset": str(reset)}
        assert verdict.retry_after_s == 0
    refused = await limiter.hit("addr:10.0.0.1", [MINUTE])
    assert not refused.allowed
    assert refused.headers() == {"X-RateLimit-Limit": "3", "X-RateLimit-Remaining": "0",
                                 "X-RateLimit-Reset": str(reset)}
    assert refused.retry_after_s == 30  # ceil(29.75)
    assert refused.details == "address-minute allows 3 per minute"
    # Another subject has its own count.
    assert (await limiter.hit("addr:10.0.0.2", [MINUTE])).remaining == 2


async def test_the_window_is_aligned_to_the_epoch_and_a_new_one_starts_fresh(
        clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    for _ in range(3):
        assert (await limiter.hit("s", [MINUTE])).allowed
    clock.now = window_end(clock.now, 60) - 0.001
    assert not (await limiter.hit("s", [MINUTE])).allowed
    clock.now = window_end(clock.now, 60)  # The next minute, on the second.
    verdict = await limiter.hit("s", [MINUTE])
    assert verdict.allowed and verdict.remaining == 2
    assert verdict.reset_epoch_s == int(clock.now) + 60


async def test_a_refusal_counts_nothing_under_any_rule(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    for _ in range(3):
        await limiter.hit("k", [MINUTE, HOUR])
    for _ in range(10):
        assert not (await limiter.hit("k", [MINUTE, HOUR])).allowed
    clock.now += 60  # The minute has passed; the hour saw 3 of 5, not 13.
    first = await limiter.hit("k", [MINUTE, HOUR])
    second = await limiter.hit("k", [MINUTE, HOUR])
    assert first.allowed and second.allowed
    # The hour is now the tightest (0 left against the minute's 1): its numbers are shown.
    assert second.headers()["X-RateLimit-Limit"] == "5"
    assert second.remaining == 0
    refused = await limiter.hit("k", [MINUTE, HOUR])
    assert not refused.allowed and refused.limit == 5
    assert refused.reset_epoch_s == window_end(clock.now, 3600)
    assert refused.retry_after_s == window_end(clock.now, 3600) - int(clock.now)
    assert refused.details == "key-hour allows 5 per hour"


async def test_the_tightest_rule_is_shown(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    wide = LimitRule("key-hour", 1000, 3600)
    verdict = await limiter.hit("k", [wide, MINUTE])
    assert (verdict.limit, verdict.remaining) == (3, 2)
    assert verdict.reset_epoch_s == window_end(clock.now, 60)


async def test_token_rule_refuses_once_the_window_holds_the_limit(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    rpm = LimitRule("key-rpm", 1000, 60)
    assert (await limiter.hit("k", [rpm], [TPM])).allowed
    await limiter.add_tokens("k", TPM, 99)
    assert (await limiter.hit("k", [rpm], [TPM])).allowed  # 99 < 100: one more may go
    await limiter.add_tokens("k", TPM, 1)
    refused = await limiter.hit("k", [rpm], [TPM])
    assert not refused.allowed
    assert refused.details == "key-tpm allows 100 per minute"
    assert refused.headers()["X-RateLimit-Limit"] == "100"
    assert refused.retry_after_s == window_end(clock.now, 60) - int(clock.now)
    clock.now += 60
    assert (await limiter.hit("k", [rpm], [TPM])).allowed
    # Requests refused by tokens were not counted: 3 of 1000 this far (2 + the new minute's 1).
    assert (await limiter.hit("k", [rpm], [TPM])).remaining == 1000 - 2


async def test_a_rule_set_to_zero_is_off_and_no_rules_means_no_headers(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    off = LimitRule("address-minute", 0, 60)
    for _ in range(5):
        verdict = await limiter.hit("s", [off])
        assert verdict.allowed and verdict.headers() == {}


async def test_expired_windows_are_swept_and_subjects_are_capped(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock, max_subjects=1000)
    for i in range(1500):
        await limiter.hit(f"addr:{i}", [MINUTE])
    assert limiter.subjects == 1000  # The windows that end first went first.
    assert limiter.counters == 1000
    clock.now += 60
    await limiter.hit("addr:new", [MINUTE])
    assert (limiter.subjects, limiter.counters) == (1, 1)  # The old minute's are gone.


async def test_concurrent_hits_never_go_over_the_limit(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    rule = LimitRule("address-minute", 100, 60)
    verdicts = await asyncio.gather(*(limiter.hit("s", [rule]) for _ in range(300)))
    assert sum(v.allowed for v in verdicts) == 100
    assert sorted(v.remaining for v in verdicts if v.allowed) == list(range(100))


async def test_memory_is_the_default_backend_and_hits_are_cheap() -> None:
    limiter = make_rate_limiter(None)
    assert limiter.backend == "memory"
    assert await limiter.healthy() and not limiter.redis_answering()
    assert isinstance(limiter, MemoryRateLimiter)
    rules = [LimitRule("key-hour", 10**9, 3600), LimitRule("key-rpm", 10**9, 60)]
    count = 20_000
    started = time.perf_counter()
    for i in range(count):
        limiter.hit_now(f"key:{i % 500}", rules)
    per_hit_ms = (time.perf_counter() - started) * 1000 / count
    assert per_hit_ms < 0.05, per_hit_ms  # The budget for ledger + limits at p50.
    await limiter.close()


async def test_count_tokens_is_synchronous_for_the_ledger(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(clock)
    rpm = LimitRule("key-rpm", 1000, 60)
    limiter.count_tokens("k", TPM, 100)  # No await: it is counted when this returns.
    assert not (await limiter.hit("k", [rpm], [TPM])).allowed


def test_the_hosted_hub_takes_the_apps_redis_setting(tmp_path: Path) -> None:
    """The desktop app's Host button passes its ``host/redis_url`` setting on."""
    from gambiarra_desktop.discovery.hosting import HostedHub
    from gambiarra_desktop.hub.keys import CONFIG

    shared = HostedHub(tmp_path / "a", 0, "127.0.0.1", redis_url="redis://127.0.0.1:9/0")
    plain = HostedHub(tmp_path / "b", 0, "127.0.0.1")
    assert shared.server.app[CONFIG].redis_url == "redis://127.0.0.1:9/0"
    assert plain.server.app[CONFIG].redis_url is None
