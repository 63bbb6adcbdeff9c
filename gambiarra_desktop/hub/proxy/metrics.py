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
TAIL_BYTES = 4096
CARRY_BYTES = max(len(marker) for marker in EMPTY_CONTENTS) - 1
"""Enough of the previous chunk to complete any marker split across two chunks."""
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')
_PROMPT_TOKENS = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)')
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
    started: float = field(default_factory=time.perf_counter)
    first_byte: float | None = None
    events: int = 0
    body_end: float | None = None
    """When a whole (non-streamed) answer had arrived; None for a stream."""
    _carry: bytes = b""
    _tail: bytes = b""

    def on_chunk(self, chunk: bytes) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter()
        # A key split across two chunks is still counted, once: the carry-over completes it,
        # and whatever lies wholly inside the carry-over was counted with the last chunk.
        joined = self._carry + chunk
        self.events += _content_deltas(joined) - _content_deltas(self._carry)
        self._carry = joined[-CARRY_BYTES:]
        self._tail = (self._tail + chunk)[-TAIL_BYTES:]

    def on_body(self, body: bytes) -> None:
        self.first_byte = self.body_end = time.perf_counter()
        self._tail = body[-TAIL_BYTES:] if b'"usage"' in body else b""

    def result(self) -> LlmMetrics:
        finished = time.perf_counter()
        first = self.first_byte if self.first_byte is not None else finished
        tokens = self._reported_tokens()
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
        )

    @property
    def streamed(self) -> bool:
        return self.body_end is None

    @property
    def tail(self) -> bytes:
        """The last bytes of the answer, where an OpenAI server reports ``usage``."""
        return self._tail

    def _reported_tokens(self) -> int | None:
        return reported_count(_COMPLETION_TOKENS, self._tail)

    def reported_prompt_tokens(self) -> int | None:
        """``usage.prompt_tokens`` as the server reported it (capped), if it did."""
        return reported_count(_PROMPT_TOKENS, self._tail)


def _content_deltas(data: bytes) -> int:
    return data.count(CONTENT_KEY) - sum(data.count(empty) for empty in EMPTY_CONTENTS)


def error_chunk(message: str) -> bytes:
    """An OpenAI-style error event, sent when a stream breaks after bytes were sent."""
    payload = {"error": {"message": message, "type": "upstream_error"}}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
