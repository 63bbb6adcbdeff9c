"""Token counts and timings of one proxied completion, for ``llm:complete`` events.

Counting works on raw bytes so the streaming hot path never parses JSON per chunk: each SSE
``data:`` event of an OpenAI stream carries about one token. When the upstream reports
``usage`` (in a non-streaming body, or the last chunk of a stream), that number wins.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from gambiarra_desktop.protocol import LlmMetrics

DATA_FIELD = b"data:"
DONE_MARKER = b"[DONE]"
TAIL_BYTES = 4096
_COMPLETION_TOKENS = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')


@dataclass(slots=True)
class CompletionMeter:
    started: float = field(default_factory=time.perf_counter)
    first_byte: float | None = None
    events: int = 0
    _carry: bytes = b""
    _tail: bytes = b""

    def on_chunk(self, chunk: bytes) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter()
        # A ``data:`` split across two chunks is counted once: keep the last 4 bytes.
        joined = self._carry + chunk
        self.events += joined.count(DATA_FIELD) - joined.count(DONE_MARKER)
        self._carry = chunk[-(len(DATA_FIELD) - 1):]
        self._tail = (self._tail + chunk)[-TAIL_BYTES:]

    def on_body(self, body: bytes) -> None:
        self.first_byte = time.perf_counter()
        self._tail = body[-TAIL_BYTES:] if b'"usage"' in body else b""

    def result(self) -> LlmMetrics:
        finished = time.perf_counter()
        first = self.first_byte if self.first_byte is not None else finished
        tokens = self._reported_tokens()
        if tokens is None:
            tokens = max(self.events, 0)
        # Tokens/s over the generation, or over the whole call when the body came at once.
        generating_s = finished - first if finished > first else finished - self.started
        return LlmMetrics(
            tokens=tokens,
            latencyFirstTokenMs=round((first - self.started) * 1000, 3),
            durationMs=round((finished - self.started) * 1000, 3),
            tokensPerSecond=round(tokens / generating_s, 2) if generating_s > 0 else 0.0,
        )

    def _reported_tokens(self) -> int | None:
        matches = _COMPLETION_TOKENS.findall(self._tail)
        if not matches:
            return None
        return int(matches[-1])


def error_chunk(message: str) -> bytes:
    """An OpenAI-style error event, sent when a stream breaks after bytes were sent."""
    payload = {"error": {"message": message, "type": "upstream_error"}}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
