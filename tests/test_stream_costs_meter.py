"""CompletionMeter's cheaper per-chunk path counts exactly what the old one did, however
the network splits a stream, and no longer holds a 4 KiB tail per open stream."""

from __future__ import annotations

import random
import time
import tracemalloc
from dataclasses import dataclass, field

from gambiarra_desktop.hub.proxy.metrics import _COMPLETION_TOKENS as COMPLETION_TOKENS
from gambiarra_desktop.hub.proxy.metrics import _PROMPT_TOKENS as PROMPT_TOKENS
from gambiarra_desktop.hub.proxy.metrics import (
    CONTENT_KEY,
    EMPTY_CONTENTS,
    TAIL_BYTES,
    CompletionMeter,
    reported_count,
)

OPENAI_STREAM = (
    b'data: {"id":"chatcmpl-9x2","object":"chat.completion.chunk","created":1718000000,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_44","choices":[{"index":0,"delta":'
    b'{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],'
    b'"usage":null}\n\n'
    b'data: {"id":"chatcmpl-9x2","object":"chat.completion.chunk","created":1718000000,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_44","choices":[{"index":0,"delta":'
    b'{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-9x2","object":"chat.completion.chunk","created":1718000000,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_44","choices":[{"index":0,"delta":'
    b'{"content":" there"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-9x2","object":"chat.completion.chunk","created":1718000000,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_44","choices":[{"index":0,"delta":'
    b'{"content": null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-9x2","object":"chat.completion.chunk","created":1718000000,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_44","choices":[{"index":0,"delta":{},'
    b'"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n'
    b'data: {"id":"chatcmpl-9x2","object":"chat.completion.chunk","created":1718000000,'
    b'"model":"gpt-4o-mini","system_fingerprint":"fp_44","choices":[],"usage":'
    b'{"prompt_tokens":17,"completion_tokens":2,"total_tokens":19,'
    b'"prompt_tokens_details":{"cached_tokens":0}}}\n\n'
    b"data: [DONE]\n\n"
)
"""An OpenAI stream with ``include_usage``, as recorded (ids shortened): an empty role
delta, two tokens, a ``null`` content, the finish and the usage chunk."""

LLAMA_CPP_STREAM = (
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content": ""}}],'
    b'"created":1718000000,"id":"chatcmpl-x","model":"qwen","object":"chat.completion.chunk"}'
    b"\n\n"
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content": "Hi"}}],'
    b'"created":1718000000,"id":"chatcmpl-x","model":"qwen","object":"chat.completion.chunk"}'
    b"\n\n"
    b'data: {"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1718000000,'
    b'"id":"chatcmpl-x","model":"qwen","object":"chat.completion.chunk","usage":'
    b'{"completion_tokens" : 1,"prompt_tokens" :\n 9,"total_tokens":10},"timings":'
    b'{"prompt_n":9,"predicted_n":1}}\n\n'
    b"data: [DONE]\n\n"
)
"""A llama.cpp stream: spaced separators, and usage with whitespace around the colons."""


# --- ORACLE: CompletionMeter's counting as it was at commit 849d75b (unchanged copy). ---
OLD_CARRY_BYTES = max(len(marker) for marker in EMPTY_CONTENTS) - 1


def _old_content_deltas(data: bytes) -> int:
    return data.count(CONTENT_KEY) - sum(data.count(empty) for empty in EMPTY_CONTENTS)


@dataclass(slots=True)
class OldCompletionMeter:
    started: float = field(default_factory=time.perf_counter)
    first_byte: float | None = None
    events: int = 0
    _carry: bytes = b""
    _tail: bytes = b""

    def on_chunk(self, chunk: bytes) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter()
        joined = self._carry + chunk
        self.events += _old_content_deltas(joined) - _old_content_deltas(self._carry)
        self._carry = joined[-OLD_CARRY_BYTES:]
        self._tail = (self._tail + chunk)[-TAIL_BYTES:]

    def counts(self) -> tuple[int, int | None, int | None]:
        return (self.events, reported_count(COMPLETION_TOKENS, self._tail),
                reported_count(PROMPT_TOKENS, self._tail))
# --- end of oracle ---


def new_counts(chunks: list[bytes]) -> tuple[int, int | None, int | None]:
    meter = CompletionMeter()
    for chunk in chunks:
        meter.on_chunk(chunk)
    tokens = meter.result()["tokens"]
    reported = meter._reported_tokens()
    assert tokens == (reported if reported is not None else max(meter.events, 0))
    return meter.events, reported, meter.reported_prompt_tokens()


def old_counts(chunks: list[bytes]) -> tuple[int, int | None, int | None]:
    meter = OldCompletionMeter()
    for chunk in chunks:
        meter.on_chunk(chunk)
    return meter.counts()


def test_the_recorded_streams_count_as_expected_whole() -> None:
    assert new_counts([OPENAI_STREAM]) == old_counts([OPENAI_STREAM]) == (2, 2, 17)
    assert new_counts([LLAMA_CPP_STREAM]) == old_counts([LLAMA_CPP_STREAM]) == (1, 1, 9)


def test_every_split_in_two_counts_as_the_whole_stream_and_as_the_old_meter() -> None:
    for stream in (OPENAI_STREAM, LLAMA_CPP_STREAM):
        whole = new_counts([stream])
        for cut in range(len(stream) + 1):
            chunks = [stream[:cut], stream[cut:]]
            assert new_counts(chunks) == whole == old_counts(chunks), cut


def test_every_split_in_three_around_each_marker_counts_the_same() -> None:
    """All splits into three where the middle chunk is short (up to 24 bytes), so every
    marker and usage key is cut in every possible place, at both of its ends."""
    for stream in (OPENAI_STREAM, LLAMA_CPP_STREAM):
        whole = new_counts([stream])
        for first in range(len(stream) + 1):
            for second in range(first, min(first + 24, len(stream)) + 1):
                chunks = [stream[:first], stream[first:second], stream[second:]]
                assert new_counts(chunks) == whole == old_counts(chunks), (first, second)


def test_random_splits_into_many_chunks_agree_with_the_old_meter() -> None:
    rng = random.Random(15)
    streams = [OPENAI_STREAM * 3, LLAMA_CPP_STREAM * 3,
               (OPENAI_STREAM[:-14] * 40) + LLAMA_CPP_STREAM]  # Past the 4 KiB tail.
    for stream in streams:
        whole = new_counts([stream])
        for _ in range(300):
            cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 60)))
            chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
            assert new_counts(chunks) == whole == old_counts(chunks), cuts


def test_usage_outside_the_last_4_kib_is_still_ignored_as_before() -> None:
    early_usage = OPENAI_STREAM[:-14]  # Without [DONE]: its usage chunk is at the end.
    content_only = OPENAI_STREAM.split(b"\n\n")[1] + b"\n\n"
    stream = early_usage + content_only * (TAIL_BYTES // len(content_only) + 2)
    chunks = [stream[i:i + 97] for i in range(0, len(stream), 97)]
    assert new_counts(chunks) == old_counts(chunks)
    assert new_counts(chunks)[1:] == (None, None)


def test_a_stream_without_usage_holds_no_tail() -> None:
    """The old meter kept a 4 KiB copy of every open stream's end (and copied it per
    chunk); only a usage key starts the tail now."""
    content_only = OPENAI_STREAM.split(b"\n\n")[1] + b"\n\n"
    meter = CompletionMeter()
    for _ in range(100):
        meter.on_chunk(content_only)
    assert meter.events == 100
    assert meter.tail == b""
    meter.on_chunk(OPENAI_STREAM.split(b"\n\n")[5] + b"\n\n")
    assert b'"completion_tokens":2' in meter.tail
    assert meter.result()["tokens"] == 2


def test_an_open_stream_meter_holds_under_512_bytes() -> None:
    content_only = OPENAI_STREAM.split(b"\n\n")[1] + b"\n\n"
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        meters = [CompletionMeter() for _ in range(200)]
        for meter in meters:
            for _ in range(30):  # About 6 KB: past the 4 KiB tail.
                meter.on_chunk(bytes(content_only))
        held = (tracemalloc.get_traced_memory()[0] - before) / len(meters)
    finally:
        tracemalloc.stop()
    assert held < 512, held


def test_a_long_usage_tail_stays_bounded_in_parts_and_bytes() -> None:
    meter = CompletionMeter()
    meter.on_chunk(b'{"usage":{"prompt_tokens":3,')
    for _ in range(1000):
        meter.on_chunk(b"x" * 7)
    assert meter._tail_parts is not None and len(meter._tail_parts) <= 17
    assert len(meter.tail) == TAIL_BYTES
    assert meter.reported_prompt_tokens() is None  # Pushed out of the last 4 KiB, as before.
