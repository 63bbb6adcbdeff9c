"""Rate-limit counters in Redis, so several hubs behind one address share them.

One Lua script per request reads every window's count, and counts the request only when no
rule is at its limit: Redis runs a script whole, so two hubs can never both take a window's
last place. Keys are ``gambiarra:rl:{subject}:{rule}:{window_start}`` and expire a while
after their window ends (the slack covers hubs whose clocks differ by a little).

When Redis does not answer, requests are not refused: refusing would stop every keyed
client whenever Redis blips. The hub logs a warning (at most once a minute) and counts in
its own memory until Redis answers again, so each hub still enforces the limits on its own
share of the traffic, and ``/health`` says ``"redis": false``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gambiarra_desktop.accounting.rate_limits import (
    UNLIMITED,
    Clock,
    LimitRule,
    MemoryRateLimiter,
    RateLimiter,
    Verdict,
    active,
    judge,
)

log = logging.getLogger(__name__)

KEY_PREFIX = "gambiarra:rl"
EXPIRY_SLACK_S = 60
"""Seconds a key outlives its window: a hub whose clock is a little behind still finds it."""
TIMEOUT_S = 1.0
"""Longest a request waits for Redis (connect or answer) before counting in memory."""
RETRY_AFTER_FAILURE_S = 2.0
"""After a failure, requests count in memory this long before Redis is tried again, so a
Redis that times out does not add a second to every request."""
PING_INTERVAL_S = 5.0
"""How often the background check PINGs Redis for ``/health``."""
WARN_INTERVAL_S = 60.0
MAX_CONNECTIONS = 64
"""Connections to Redis at once; a burst of requests waits for one (each holds it for one
round trip) instead of failing as an unbounded or non-blocking pool would: redis-py's
plain pool raises ``MaxConnectionsError`` past 100, which counted a burst in memory."""

_HIT = """
local refused = 0
local counts = {}
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or 0)
  counts[i] = count
  if count >= tonumber(ARGV[2 * i]) then refused = 1 end
end
if refused == 0 then
  local nrequests = tonumber(ARGV[1])
  for i = 1, nrequests do
    if redis.call('INCR', KEYS[i]) == 1 then
      redis.call('EXPIREAT', KEYS[i], ARGV[2 * i + 1])
    end
  end
  local estimate = tonumber(ARGV[2 * #KEYS + 2] or 0)
  if estimate > 0 then
    for i = nrequests + 1, #KEYS do
      redis.call('INCRBY', KEYS[i], estimate)
      redis.call('EXPIREAT', KEYS[i], ARGV[2 * i + 1])
    end
  end
end
counts[#KEYS + 1] = refused
return counts
"""
"""KEYS: the request rules' keys, then the token rules'. ARGV[1]: how many are request
rules; then per key its limit and its expiry (epoch seconds); last, the token estimate
counted under the token rules when allowed. Returns the counts before
this request, then 1 when refused (nothing counted) or 0."""


def counter_key(subject: str, rule: LimitRule, window_start: int) -> str:
    return f"{KEY_PREFIX}:{subject}:{rule.name}:{window_start}"


class RedisRateLimiter(RateLimiter):
    backend = "redis"

    def __init__(self, url: str, clock: Clock = time.time) -> None:
        self._clock = clock
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=TIMEOUT_S,
            socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S,
            retry=Retry(NoBackoff(), 0), decode_responses=True)
        self._client = redis.Redis.from_pool(pool)
        self._hit_script = self._client.register_script(_HIT)
        self._fallback = MemoryRateLimiter(clock)
        self._answering = False
        self._retry_at = 0.0
        """``time.monotonic()`` before which requests count in memory (after a failure)."""
        self._warned_at: float | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._counting: set[asyncio.Task[None]] = set()
        """:meth:`count_tokens` tasks still running (kept so they are not collected)."""
        self._closed = False

    def _failed(self, what: str, exc: BaseException) -> None:
        was_answering, self._answering = self._answering, False
        now = time.monotonic()
        self._retry_at = now + RETRY_AFTER_FAILURE_S
        if was_answering or self._warned_at is None or now - self._warned_at >= WARN_INTERVAL_S:
            self._warned_at = now
            log.warning("Redis does not answer (%s: %s); rate limits count in this hub's"
                        " memory until it does", what, type(exc).__name__)

    def _answered(self) -> None:
        if not self._answering and self._warned_at is not None:
            log.info("Redis answers again; rate limits are shared again")
        self._answering = True
        self._retry_at = 0.0

    def _start_pinger(self) -> None:
        if self._pinger is None and not self._closed:
            self._pinger = asyncio.get_running_loop().create_task(
                self._ping_forever(), name="gambiarra-redis-ping")

    async def _ping_forever(self) -> None:
        while True:
            await self._ping()
            await asyncio.sleep(PING_INTERVAL_S)

    async def _ping(self) -> bool:
        try:
            await self._client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("PING", exc)
            return False
        self._answered()
        return True

    async def hit(self, subject: str, requests: Sequence[LimitRule],
                  tokens: Sequence[LimitRule] = (), token_estimate: int = 0) -> Verdict:
        self._start_pinger()
        requests, tokens = active(requests), active(tokens)
        if not requests and not tokens:
            return UNLIMITED
        if time.monotonic() < self._retry_at:
            return self._fallback.hit_now(subject, requests, tokens, token_estimate)
        now = self._clock()
        rules = (*requests, *tokens)
        args: list[int] = [len(requests)]
        keys = []
        for rule in rules:
            start = rule.window_start(now)
            keys.append(counter_key(subject, rule, start))
            args += [rule.limit, start + rule.window_s + EXPIRY_SLACK_S]
        args.append(max(0, token_estimate))
        try:
            reply = await self._hit_script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("rate limit check", exc)
            return self._fallback.hit_now(subject, requests, tokens, token_estimate)
        self._answered()
        counts = [int(count) for count in reply[:-1]]
        return judge(now, requests, tokens, counts)

    async def add_tokens(self, subject: str, rule: LimitRule, tokens: int) -> None:
        if tokens == 0 or rule.limit <= 0:
            return
        if time.monotonic() < self._retry_at:
            self._fallback.add_tokens_now(subject, rule, tokens)
            return
        now = self._clock()
        start = rule.window_start(now)
        key = counter_key(subject, rule, start)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incrby(key, tokens)
                pipe.expireat(key, start + rule.window_s + EXPIRY_SLACK_S)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("token count", exc)
            self._fallback.add_tokens_now(subject, rule, tokens)
            return
        self._answered()

    def count_tokens(self, subject: str, rule: LimitRule, tokens: int) -> None:
        if tokens == 0 or rule.limit <= 0:
            return
        if self._closed or time.monotonic() < self._retry_at:
            self._fallback.add_tokens_now(subject, rule, tokens)
            return
        task = asyncio.get_running_loop().create_task(self.add_tokens(subject, rule, tokens))
        self._counting.add(task)
        task.add_done_callback(self._counting.discard)

    async def healthy(self) -> bool:
        self._start_pinger()
        return await self._ping()

    def redis_answering(self) -> bool:
        """The last PING or command answered (the background PING runs every 5 s), so
        ``/health`` costs no round trip."""
        with contextlib.suppress(RuntimeError):  # No running loop: nothing to start.
            self._start_pinger()
        return self._answering

    async def close(self) -> None:
        self._closed = True
        if self._counting:  # Each ends within TIMEOUT_S (it falls back to memory).
            await asyncio.gather(*self._counting, return_exceptions=True)
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        await self._client.aclose()
