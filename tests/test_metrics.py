"""Token counting on raw stream bytes, wherever the network happens to split them."""

from __future__ import annotations

import json

from gambiarra_desktop.hub.proxy.metrics import CompletionMeter


def _stream(tokens: int, compact: bool) -> bytes:
    separators = (",", ":") if compact else (", ", ": ")
    events = [{"choices": [{"delta": {"role": "assistant", "content": ""}}]}]
    events += [{"choices": [{"delta": {"content": f"t{i} "}}]} for i in range(tokens)]
    events += [{"choices": [{"delta": {}, "finish_reason": "stop"}]},
               {"choices": [{"delta": {"content": None}}]}]
    body = b"".join(b"data: " + json.dumps(e, separators=separators).encode() + b"\n\n"
                    for e in events)
    return body + b"data: [DONE]\n\n"


def test_counts_content_deltas_however_the_stream_is_split() -> None:
    for compact in (True, False):
        body = _stream(7, compact)
        for size in (1, 2, 3, 5, 8, 13, 64, len(body)):
            meter = CompletionMeter()
            for start in range(0, len(body), size):
                meter.on_chunk(body[start:start + size])
            assert meter.result()["tokens"] == 7, (compact, size)


def test_reported_usage_wins() -> None:
    meter = CompletionMeter()
    meter.on_chunk(_stream(3, True))
    meter.on_chunk(b'data: {"choices":[],"usage":{"completion_tokens":42}}\n\n')
    assert meter.result()["tokens"] == 42


def test_event_descriptions_read_as_sentences() -> None:
    from gambiarra_desktop.event_text import describe

    names = {"p1": "Ana"}
    assert describe("llm:queued", {"position": 2}) == (
        "a request waits for a free participant (position 2)")
    assert describe("participant:offline", {"participantId": "p1"}, names) == "Ana went offline"
    assert describe("llm:request", {"participantId": "p1", "model": "*"}, names) == (
        "request for * went to Ana")
    assert describe("llm:complete", {"participantId": "p1", "metrics": {
        "tokens": 3, "latencyFirstTokenMs": 12.4, "tokensPerSecond": 30.5}}, names) == (
        "Ana answered: 3 tokens, first token after 12 ms, 30.5 tok/s")
