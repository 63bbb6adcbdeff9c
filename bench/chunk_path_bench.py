"""The per-chunk streaming path on its own: hand-over (ChunkInbox) and metering
(CompletionMeter), old against new, in one process with no sockets.

It prints the CPU per relayed chunk (a producer callback puts one SSE event, the consumer
task wakes, takes it and meters it, as when a model sends token by token) and the memory
one open stream's inbox + meter + waiting consumer hold, with 1,000 of them alive
(tracemalloc). The baseline is the code as it was at commit 849d75b, copied below and
clearly labelled, so both run in the same process on the same loop.
Run: ``.venv/bin/python bench/chunk_path_bench.py [--chunks N] [--streams N] [--uvloop]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import statistics
import time
import tracemalloc
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from gambiarra_desktop.hub.proxy.chunk_inbox import ChunkInbox, UpstreamError
from gambiarra_desktop.hub.proxy.metrics import (
    CARRY_BYTES,
    CONTENT_KEY,
    EMPTY_CONTENTS,
    TAIL_BYTES,
    CompletionMeter,
)

EVENT = (b'data: {"id":"chatcmpl-9x2","object":"chat.completion.chunk","created":1718000000,'
         b'"model":"gpt-4o-mini","system_fingerprint":"fp_44","choices":[{"index":0,'
         b'"delta":{"content":" word"},"logprobs":null,"finish_reason":null}]}\n\n')
"""One token's event as OpenAI sends it (about 200 bytes)."""
IDLE_TIMEOUT_S = 300.0
"""The hub's default upstream idle timeout."""
CHUNKS_BEFORE_MEASURING = 40
"""Events an open stream has relayed when its memory is measured: past the 4 KiB tail."""


# ---------------------------------------------------------------------------------------
# BASELINE: ChunkInbox and CompletionMeter as they were at commit 849d75b (unchanged copy).
# ---------------------------------------------------------------------------------------
class BaselineChunkInbox:
    def __init__(self, source: str, on_taken: Callable[[], None] | None = None) -> None:
        self._source = source
        self._on_taken = on_taken
        self._chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self.buffered += len(chunk)
        self._wake()

    def finish(self) -> None:
        self.complete = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take(self) -> bytes | None:
        if not self._chunks:
            return None
        chunks = self._chunks
        chunk = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self._on_taken is not None:
            self._on_taken()
        return chunk

    async def chunks(self, idle_timeout_s: float | None) -> AsyncGenerator[bytes, None]:
        while True:
            chunk = self.take()
            if chunk is not None:
                yield chunk
                continue
            if self.complete:
                return
            if self.error is not None:
                raise self.error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(idle_timeout_s):
                    await self._waiter
            except TimeoutError as exc:
                raise UpstreamError(
                    f"{self._source} sent nothing for {idle_timeout_s:g} s") from exc
            finally:
                self._waiter = None


def _baseline_content_deltas(data: bytes) -> int:
    return data.count(CONTENT_KEY) - sum(data.count(empty) for empty in EMPTY_CONTENTS)


BASELINE_CARRY_BYTES = max(len(marker) for marker in EMPTY_CONTENTS) - 1


@dataclass(slots=True)
class BaselineCompletionMeter:
    started: float = field(default_factory=time.perf_counter)
    first_byte: float | None = None
    events: int = 0
    body_end: float | None = None
    _carry: bytes = b""
    _tail: bytes = b""

    def on_chunk(self, chunk: bytes) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter()
        joined = self._carry + chunk
        self.events += _baseline_content_deltas(joined) - _baseline_content_deltas(self._carry)
        self._carry = joined[-BASELINE_CARRY_BYTES:]
        self._tail = (self._tail + chunk)[-TAIL_BYTES:]
# ---------------------------------------------------------------------------------------
# END OF BASELINE
# ---------------------------------------------------------------------------------------


class Inbox(Protocol):
    buffered: int

    def put(self, chunk: bytes) -> None: ...
    def finish(self) -> None: ...


class Meter(Protocol):
    def on_chunk(self, chunk: bytes) -> None: ...


Consume = Callable[[Any, Meter], Coroutine[Any, Any, int]]


async def consume_generator(inbox: Any, meter: Meter) -> int:
    """The relay's loop as it is today: ``async for`` over ``chunks()``."""
    count = 0
    async for chunk in inbox.chunks(IDLE_TIMEOUT_S):
        meter.on_chunk(chunk)
        count += 1
    return count


async def consume_next_chunk(inbox: ChunkInbox, meter: Meter) -> int:
    """The same loop on ``next_chunk()``: no async generator."""
    count = 0
    while (chunk := await inbox.next_chunk(IDLE_TIMEOUT_S)) is not None:
        meter.on_chunk(chunk)
        count += 1
    return count




class FloorInbox:
    """No inbox and no meter: a fresh future per chunk, woken by the producer. The loop's
    own cost of a wake-up per chunk, which no hand-over can go under."""

    def __init__(self, source: str, on_taken: Callable[[], None] | None = None) -> None:
        self.on_taken = on_taken
        self.waiter: asyncio.Future[bytes | None] | None = None

    def put(self, chunk: bytes) -> None:
        if self.waiter is not None:
            self.waiter.set_result(chunk)

    def finish(self) -> None:
        if self.waiter is not None:
            self.waiter.set_result(None)


class NoMeter:
    def on_chunk(self, chunk: bytes) -> None:
        pass


async def consume_floor(inbox: FloorInbox, meter: Meter) -> int:
    count = 0
    loop = asyncio.get_running_loop()
    while True:
        inbox.waiter = loop.create_future()
        chunk = await inbox.waiter
        if chunk is None:
            return count
        count += 1
        if inbox.on_taken is not None:
            inbox.on_taken()


VARIANTS: dict[str, tuple[Callable[..., Any], Callable[[], Meter], Consume]] = {
    "old: deque inbox + asyncio.timeout per wait, old meter":
        (BaselineChunkInbox, BaselineCompletionMeter, consume_generator),
    "new: chunks() generator, one idle timer, new meter":
        (ChunkInbox, CompletionMeter, consume_generator),
    "new: next_chunk(), one idle timer, new meter":
        (ChunkInbox, CompletionMeter, consume_next_chunk),
    "floor: a bare future per chunk, no inbox, no meter":
        (FloorInbox, NoMeter, consume_floor),
}


def meter_us_per_chunk(make_meter: Callable[[], Meter], chunks: int) -> float:
    """µs of CPU per on_chunk() alone, on fresh event objects."""
    events = [bytes(EVENT) for _ in range(1000)]
    meter = make_meter()
    started = time.process_time()
    for _ in range(chunks // len(events)):
        for event in events:
            meter.on_chunk(event)
    return (time.process_time() - started) / (chunks // len(events) * len(events)) * 1e6


async def cpu_per_chunk(make_inbox: Callable[..., Any], make_meter: Callable[[], Meter],
                        consume: Consume, chunks: int) -> float:
    """µs of CPU per chunk: the producer puts the next event one loop turn after the
    consumer took the last, so the consumer waits for every chunk, as in a token stream."""
    loop = asyncio.get_running_loop()
    left = chunks
    inbox: Any = None

    def produce() -> None:
        nonlocal left
        if left:
            left -= 1
            inbox.put(EVENT)
        else:
            inbox.finish()

    inbox = make_inbox("upstream", on_taken=lambda: loop.call_soon(produce))
    loop.call_soon(produce)
    started = time.process_time()
    got = await consume(inbox, make_meter())
    spent = time.process_time() - started
    assert got == chunks, (got, chunks)
    return spent / chunks * 1e6


async def bytes_per_stream(make_inbox: Callable[..., Any], make_meter: Callable[[], Meter],
                           consume: Consume, streams: int) -> float:
    """tracemalloc's growth per open stream: an inbox, a meter that has seen
    CHUNKS_BEFORE_MEASURING events, and a consumer task waiting for the next one."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    inboxes = []
    tasks = []
    for _ in range(streams):
        inbox = make_inbox("upstream")
        meter = make_meter()
        for _ in range(CHUNKS_BEFORE_MEASURING):
            meter.on_chunk(bytes(EVENT))  # A fresh object, as each read from a socket is.
        inboxes.append(inbox)
        tasks.append(asyncio.create_task(consume(inbox, meter)))
    await asyncio.sleep(0.01)  # Every consumer now waits for its next chunk.
    gc.collect()
    during = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    for inbox in inboxes:
        inbox.finish()
    await asyncio.gather(*tasks)
    return (during - before) / streams


async def run(chunks: int, streams: int, rounds: int) -> None:
    print(f"per chunk: {chunks} events of {len(EVENT)} bytes, median of {rounds} rounds "
          f"(alternating); memory: {streams} open streams, each past "
          f"{CHUNKS_BEFORE_MEASURING} events (carry {CARRY_BYTES} B, tail {TAIL_BYTES} B)")
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(rounds):
        for name, (make_inbox, make_meter, consume) in VARIANTS.items():
            cpu[name].append(await cpu_per_chunk(make_inbox, make_meter, consume, chunks))
    memory = {name: await bytes_per_stream(*variant, streams)
              for name, variant in VARIANTS.items()}
    old = next(iter(VARIANTS))
    base_cpu = statistics.median(cpu[old])
    print(f"{'variant (consumer task waits per chunk)':58} {'µs/chunk':>9} {'x old':>6} "
          f"{'B/stream':>9} {'x old':>6}")
    for name in VARIANTS:
        us = statistics.median(cpu[name])
        print(f"{name:58} {us:9.2f} {us / base_cpu:6.2f} {memory[name]:9.0f} "
              f"{memory[name] / memory[old]:6.2f}")
    print("(B/stream includes the consumer task, about 1 KB, which the relay has anyway.)")
    old_meter = statistics.median(meter_us_per_chunk(BaselineCompletionMeter, chunks)
                                  for _ in range(rounds))
    new_meter = statistics.median(meter_us_per_chunk(CompletionMeter, chunks)
                                  for _ in range(rounds))
    print(f"meter alone, on_chunk(): old {old_meter:.2f} µs, new {new_meter:.2f} µs "
          f"(x{new_meter / old_meter:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--streams", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as serve does")
    args = parser.parse_args()
    coroutine = run(args.chunks, args.streams, args.rounds)
    if args.uvloop:
        import uvloop
        uvloop.run(coroutine)
    else:
        asyncio.run(coroutine)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
