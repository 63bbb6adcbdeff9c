"""Token counts and timings of one proxied completion, for ``llm:complete`` events.

Counting works on raw bytes so the streaming hot path never parses JSON per chunk: each
non-empty ``"content"`` delta of an OpenAI stream carries about one token (role-only and
finish chunks carry none). When the upstream reports ``usage`` (in a non-streaming body, or
the last chunk of a stream), that number wins.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from gambiarra_desktop.protocol import LlmMetrics

CONTENT_KEY = b'"content"'
EMPTY_CONTENTS = (b'"content":""', b'"content": ""', b'"content":null', b'"content": null')
_EMPTY_VALUES = tuple(marker[len(CONTENT_KEY):] for marker in EMPTY_CONTENTS)
"""What follows the key in each of :data:`EMPTY_CONTENTS`."""
TAIL_BYTES = 4096
"""Usage counts are looked for in the answer's last this many bytes."""
USAGE_KEYS = (b'"completion_tokens"', b'"prompt_tokens"')
USAGE_KEY_END = b'_tokens"'
"""How every usage key ends: until it shows up, no usage count can be in the tail."""
CARRY_BYTES = max(len(marker) for marker in (*EMPTY_CONTENTS, *USAGE_KEYS)) - 1
"""Enough of the previous chunk to complete any marker or usage key split across two
chunks."""
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')
_PROMPT_TOKENS = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)')
MAX_TAIL_PARTS = 16
"""Tail chunks kept as they came before they are joined into one: bounds the per-chunk
object overhead a long stream of tiny chunks would hold."""
MAX_REPORTED_TOKENS = 10_000_000
"""Most tokens one call may claim. ``usage`` comes from a participant's server, which the
hub does not trust: a 400-digit count once overflowed the cost arithmetic and SQLite's
integers, dropping other people's ledger rows and blocking keys' budgets. No model answers
10 million tokens in one call."""


def reported_count(pattern: re.Pattern[bytes], text: bytes) -> int | None:
    """The last count ``pattern`` finds in ``text``, capped at :data:`MAX_REPORTED_TOKENS`
    (digits are checked by length before any big number is built)."""
    matches = pattern.findall(text)
    if not matches:
        return None
    digits: bytes = matches[-1]
    return MAX_REPORTED_TOKENS if len(digits) > 8 else min(int(digits), MAX_REPORTED_TOKENS)


@dataclass(slots=True)
class CompletionMeter:
    """Counts as the chunks pass, at a cost that grows with the chunk only: markers are
    counted in the chunk plus a few carried-over bytes, and the tail is kept as the chunks
    themselves (joined only by :meth:`result`), and only from where a usage key first
    appears: a stream that reports usage does so in its last chunk, and holding every open
    stream's last 4 KiB until then cost that much memory per stream and a 4 KiB copy per
    chunk."""

    started: float = field(default_factory=time.perf_counter)
    first_byte: float | None = None
    events: int = 0
    body_end: float | None = None
    """When a whole (non-streamed) answer had arrived; None for a stream."""
    _carry: bytes = b""
    _tail_parts: list[bytes] | None = None
    """The answer from the first usage key on (None before one came), at most
    ``TAIL_BYTES`` beyond the first part."""
    _tail_size: int = 0

    def on_chunk(self, chunk: bytes) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter()
        # A marker split across two chunks is still counted, once: the carry-over completes
        # it, and whatever lies wholly inside the carry-over was counted with the last chunk.
        carry = self._carry
        joined = carry + chunk
        events = _content_deltas(joined)
        if CONTENT_KEY in carry:  # Every marker holds the key: rarely worth a count.
            events -= _content_deltas(carry)
        self.events += events
        self._carry = joined[-CARRY_BYTES:]
        parts = self._tail_parts
        if parts is None:
            # A usage key ending in this chunk began at most CARRY_BYTES before it, so the
            # carry-over starts the tail early enough; nothing earlier can hold a count.
            if USAGE_KEY_END in joined:
                self._tail_parts = [joined]
                self._tail_size = len(joined)
            return
        parts.append(chunk)
        size = self._tail_size + len(chunk)
        while size - len(parts[0]) >= TAIL_BYTES:
            size -= len(parts.pop(0))
        if len(parts) > MAX_TAIL_PARTS:
            whole = b"".join(parts)[-TAIL_BYTES:]
            parts[:] = [whole]
            size = len(whole)
        self._tail_size = size

    def on_body(self, body: bytes) -> None:
        self.first_byte = self.body_end = time.perf_counter()
        if b'"usage"' in body:
            tail = body[-TAIL_BYTES:]
            self._tail_parts = [tail]
            self._tail_size = len(tail)
        else:
            self._tail_parts = None
            self._tail_size = 0

    def result(self) -> LlmMetrics:
        return self.usage()[0]

    def usage(self) -> tuple[LlmMetrics, int | None]:
        """:meth:`result` and :meth:`reported_prompt_tokens` in one reading of the tail
        (an answer's outcome needs both, once per request)."""
        finished = time.perf_counter()
        first = self.first_byte if self.first_byte is not None else finished
        tail = self.tail
        reported = USAGE_KEY_END in tail
        tokens = reported_count(_COMPLETION_TOKENS, tail) if reported else None
        prompt = reported_count(_PROMPT_TOKENS, tail) if reported else None
        if tokens is None:
            tokens = max(self.events, 0)
        if self.body_end is not None:
            # No stream: the tokens were generated during the whole call, started -> body
            # end. (From the body's arrival to now is only the hub's own bookkeeping, which
            # once gave 2,746,309 tok/s.)
            generating_s = self.body_end - self.started
        else:
            generating_s = finished - first if finished > first else finished - self.started
        return LlmMetrics(
            tokens=tokens,
            latencyFirstTokenMs=round((first - self.started) * 1000, 3),
            durationMs=round((finished - self.started) * 1000, 3),
            tokensPerSecond=round(tokens / generating_s, 2) if generating_s > 0 else 0.0,
        ), prompt

    @property
    def streamed(self) -> bool:
        return self.body_end is None

    @property
    def tail(self) -> bytes:
        """The last bytes of the answer (at most ``TAIL_BYTES``), where an OpenAI server
        reports ``usage``; of a stream, only from the first usage key on."""
        parts = self._tail_parts
        if not parts:
            return b""
        return parts[0][-TAIL_BYTES:] if len(parts) == 1 else b"".join(parts)[-TAIL_BYTES:]

    def _reported_tokens(self) -> int | None:
        return reported_count(_COMPLETION_TOKENS, self.tail)

    def reported_prompt_tokens(self) -> int | None:
        """``usage.prompt_tokens`` as the server reported it (capped), if it did."""
        return reported_count(_PROMPT_TOKENS, self.tail)


def _content_deltas(data: bytes) -> int:
    """``"content"`` keys not followed by an empty value: one search per key and one
    ``startswith`` for all the empty forms (five full scans of the chunk cost twice as much)."""
    found = 0
    at = data.find(CONTENT_KEY)
    while at >= 0:
        at += len(CONTENT_KEY)
        if not data.startswith(_EMPTY_VALUES, at):
            found += 1
        at = data.find(CONTENT_KEY, at)
    return found


def error_chunk(message: str) -> bytes:
    """An OpenAI-style error event, sent when a stream breaks after bytes were sent."""
    payload = {"error": {"message": message, "type": "upstream_error"}}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
