"""Rate limits: requests (and tokens) per subject in fixed windows aligned to epoch seconds.

Fixed windows, not sliding ones: one counter per (subject, rule, window) is one integer in
memory or one Redis key, both hubs of a pair compute the same window from the clock alone,
and ``X-RateLimit-Reset`` is simply the window's end. The price is the classic burst of up
to twice the limit across a window boundary, which the seed's per-minute and per-hour
limits tolerate.

A check and its count happen together: :meth:`RateLimiter.hit` refuses (counting nothing)
or counts one request under every request rule, with no ``await`` between the two in the
memory backend and one Lua script in Redis, so two requests can never both take the last
place in a window.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_SUBJECTS = 100_000
"""Subjects the memory backend keeps counters for; beyond it, the windows that end first
are dropped first (a flood of fresh addresses cannot grow the hub's memory without end)."""
REDIS_SCHEMES = ("redis", "rediss", "unix")
Clock = Callable[[], float]
"""Epoch seconds; tests pass a fake one."""


@dataclass(frozen=True, slots=True)
class LimitRule:
    name: str
    """"address-minute", "key-hour", "key-rpm", "key-tpm": it names the counter and is
    shown to the client when the rule refuses."""
    limit: int
    window_s: int

    def window_start(self, now: float) -> int:
        return int(now // self.window_s) * self.window_s

    @property
    def window_words(self) -> str:
        return {60: "minute", 3600: "hour", 86400: "day"}.get(self.window_s,
                                                              f"{self.window_s} s")

    def describe(self) -> str:
        """The 429's details: "<rule> allows <n> per <window>"."""
        return f"{self.name} allows {self.limit} per {self.window_words}"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    """Of the tightest rule (the refusing one when refused); 0 when no rule applied."""
    remaining: int
    reset_epoch_s: int
    retry_after_s: int
    """0 when allowed; else whole seconds (at least 1) until every refusing window ends."""
    rule: LimitRule | None = None
    """The rule the numbers are about, for the 429's details."""

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*``; none when no rule applied (nothing honest to say)."""
        if self.rule is None:
            return {}
        return {"X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset_epoch_s)}

    @property
    def details(self) -> str:
        return self.rule.describe() if self.rule is not None else ""


UNLIMITED = Verdict(True, 0, 0, 0, 0)


def active(rules: Sequence[LimitRule]) -> tuple[LimitRule, ...]:
    """A limit of 0 (or less) is a rule switched off, as 0 is in ``HubConfig``."""
    for rule in rules:
        if rule.limit <= 0:
            return tuple(rule for rule in rules if rule.limit > 0)
    return tuple(rules)  # The same tuple when given one: admission's rules are all on.


def judge(now: float, requests: Sequence[LimitRule], tokens: Sequence[LimitRule],
          used: Sequence[int]) -> Verdict:
    """The verdict for counts ``used`` (requests' then tokens', before this request) read in
    the windows of ``now``. Shared by both backends so they answer alike to the header.

    Refused when a request rule is at its limit or a token rule's window already holds at
    least its limit; the refusing rule named is the one whose window ends last (the one to
    wait for). Allowed verdicts describe the request rule with the fewest places left after
    counting this request (the longer window on a tie). Plain loops: this runs on every
    limited request."""
    refused: LimitRule | None = None
    refused_end = 0
    for rule, count in zip((*requests, *tokens), used, strict=True):
        if count >= rule.limit:
            end = rule.window_start(now) + rule.window_s
            if refused is None or end > refused_end:
                refused, refused_end = rule, end
    if refused is not None:
        return Verdict(False, refused.limit, 0, refused_end,
                       max(1, math.ceil(refused_end - now)), refused)
    tightest: LimitRule | None = None
    fewest = 0
    for rule, count in zip(requests, used, strict=False):
        left = rule.limit - count - 1
        if (tightest is None or left < fewest
                or (left == fewest and rule.window_s > tightest.window_s)):
            tightest, fewest = rule, left
    if tightest is None:
        return UNLIMITED
    return Verdict(True, tightest.limit, fewest, tightest.window_start(now) + tightest.window_s,
                   0, tightest)


class RateLimiter:
    """The interface admission codes against; :func:`make_rate_limiter` picks a backend."""

    backend: str = "none"

    async def hit(self, subject: str, requests: Sequence[LimitRule],
                  tokens: Sequence[LimitRule] = (), token_estimate: int = 0) -> Verdict:
        """``token_estimate``: tokens the request is expected to use, counted under every
        token rule in the same step as the check when allowed (the caller reconciles them
        with the real count later, through :meth:`count_tokens`, which may be negative)."""
        raise NotImplementedError

    async def add_tokens(self, subject: str, rule: LimitRule, tokens: int) -> None:
        raise NotImplementedError

    def count_tokens(self, subject: str, rule: LimitRule, tokens: int) -> None:
        """:meth:`add_tokens` for synchronous callers (the ledger's ``record``, which never
        awaits): counted at once in memory, by a background task in Redis."""
        raise NotImplementedError

    async def healthy(self) -> bool:
        raise NotImplementedError

    def redis_answering(self) -> bool:
        """Cheap and synchronous for ``/health``: a Redis backend that answered recently."""
        return False

    async def close(self) -> None:
        return None


_CounterKey = tuple[str, str, int, int]
"""(subject, rule name, window length, window start)"""


class MemoryRateLimiter(RateLimiter):
    """Counters in a dict, one hub's own. Expired windows leave through a heap ordered by
    their end, a few per call, so no call ever sweeps the whole dict."""

    backend = "memory"

    def __init__(self, clock: Clock = time.time, max_subjects: int = MAX_SUBJECTS) -> None:
        self._clock = clock
        self._max_subjects = max_subjects
        self._counts: dict[_CounterKey, int] = {}
        self._ends: list[tuple[int, _CounterKey]] = []
        self._windows_of: dict[str, int] = {}
        """subject -> how many live counters it has (its entry goes with the last)."""

    @property
    def subjects(self) -> int:
        return len(self._windows_of)

    @property
    def counters(self) -> int:
        return len(self._counts)

    def _key(self, subject: str, rule: LimitRule, now: float) -> _CounterKey:
        return (subject, rule.name, rule.window_s, rule.window_start(now))

    def _drop_first_ending(self) -> None:
        _, key = heapq.heappop(self._ends)
        if self._counts.pop(key, None) is not None:
            subject = key[0]
            left = self._windows_of[subject] - 1
            if left:
                self._windows_of[subject] = left
            else:
                del self._windows_of[subject]

    def _sweep(self, now: float) -> None:
        ends = self._ends
        if ends and ends[0][0] > now and len(self._windows_of) <= self._max_subjects:
            return  # The usual case: nothing ended, nothing over the cap.
        while self._ends and self._ends[0][0] <= now:
            self._drop_first_ending()
        while len(self._windows_of) > self._max_subjects and self._ends:
            self._drop_first_ending()

    def _add(self, key: _CounterKey, amount: int, window_s: int) -> None:
        count = self._counts.get(key)
        if count is None:
            self._counts[key] = amount
            self._windows_of[key[0]] = self._windows_of.get(key[0], 0) + 1
            heapq.heappush(self._ends, (key[3] + window_s, key))
        else:
            self._counts[key] = count + amount

    def hit_now(self, subject: str, requests: Sequence[LimitRule],
                tokens: Sequence[LimitRule] = (), token_estimate: int = 0) -> Verdict:
        """:meth:`hit` without the coroutine: check and count in one synchronous step."""
        requests, tokens = active(requests), active(tokens)
        now = self._clock()
        self._sweep(now)
        keys = [(subject, rule.name, rule.window_s, rule.window_start(now))
                for rule in (*requests, *tokens)]
        counts = self._counts
        verdict = judge(now, requests, tokens, [counts.get(key, 0) for key in keys])
        if verdict.allowed:
            for rule, key in zip(requests, keys, strict=False):
                self._add(key, 1, rule.window_s)
            if token_estimate > 0:
                for rule, key in zip(tokens, keys[len(requests):], strict=True):
                    self._add(key, token_estimate, rule.window_s)
            if len(self._windows_of) > self._max_subjects:  # A new subject went over the cap.
                self._sweep(now)
        return verdict

    async def hit(self, subject: str, requests: Sequence[LimitRule],
                  tokens: Sequence[LimitRule] = (), token_estimate: int = 0) -> Verdict:
        return self.hit_now(subject, requests, tokens, token_estimate)

    def add_tokens_now(self, subject: str, rule: LimitRule, tokens: int) -> None:
        """Negative ``tokens`` (an estimate reconciled down) never take a window below 0."""
        if tokens == 0:
            return
        now = self._clock()
        key = self._key(subject, rule, now)
        if tokens < 0:
            count = self._counts.get(key)
            if count is not None:
                self._counts[key] = max(0, count + tokens)
            return
        self._add(key, tokens, rule.window_s)
        self._sweep(now)

    async def add_tokens(self, subject: str, rule: LimitRule, tokens: int) -> None:
        self.add_tokens_now(subject, rule, tokens)

    def count_tokens(self, subject: str, rule: LimitRule, tokens: int) -> None:
        self.add_tokens_now(subject, rule, tokens)

    async def healthy(self) -> bool:
        return True


def shown_redis_url(url: str) -> str:
    """The URL to print: whatever stands before ``@`` (a user and password) and the query
    (``?password=``) are never shown or logged."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"***@{host}" if "@" in parts.netloc else host
    return f"{parts.scheme}://{netloc}{parts.path}"


def make_rate_limiter(redis_url: str | None, clock: Clock = time.time) -> RateLimiter:
    """Memory by default; Redis when a URL is given, so hubs behind one address share counts.
    Connecting is lazy: a Redis that is down at start is reported by ``/health``, never a
    refusal to start (limits then count in this hub's memory until it answers)."""
    if not redis_url:
        return MemoryRateLimiter(clock)
    from gambiarra_desktop.accounting.redis_counters import RedisRateLimiter

    return RedisRateLimiter(redis_url, clock)
