"""Many streams held open through the hub at once: memory per stream, and 1,000 at once.

The fake model behind these streams is slow (a token a second), so a stream stays open
while the bench looks at the hub. Clients come from several loopback addresses
(127.0.0.2, .3, ...), as many real clients come from many machines: the hub caps open
connections per address, and that cap is not what these rows measure.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from hub_probe import PeakRss, ProcessProbe
from proxy_rounds import MESSAGES
from raw_http import RawConnection, RawResponse, build_request

LOCAL_HOSTS = tuple(f"127.0.0.{i}" for i in range(2, 18))
CONNECT_AT_ONCE = 128
"""Connections being opened at once: a burst of 1,000 SYNs overflows the listen backlog,
and the kernel's 1 s retransmit would then dominate the run."""


def stream_request(host: str, port: int, path: str, model: str) -> bytes:
    payload = {"model": model, "messages": MESSAGES, "stream": True}
    return build_request("POST", path, f"{host}:{port}", json.dumps(payload).encode())


@dataclass
class StreamRun:
    opened: int = 0
    ok: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    peak_outstanding: int = 0
    """Client requests sent and not yet answered in full, at the busiest moment."""
    peak_relaying: int = 0
    """Of those, the most that had their first byte (being relayed, not queued) at once."""
    elapsed_s: float = 0.0

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def _open(connections: list[RawConnection], request: bytes,
                run: StreamRun) -> list[asyncio.Future[object] | None]:
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def one(connection: RawConnection) -> asyncio.Future[object] | None:
        async with gate:
            try:
                future = await connection.send(request)
            except OSError as exc:
                run.error(f"connect: {type(exc).__name__}")
                return None
        run.opened += 1
        return future  # type: ignore[return-value]

    return list(await asyncio.gather(*(one(c) for c in connections)))


async def memory_per_stream(probe: ProcessProbe, host: str, port: int, path: str, model: str,
                            count: int, within_s: float = 15.0) -> dict[str, float]:
    """Hub RSS with ``count`` streams open (each past its first byte) minus before."""
    before = await probe.settled_rss()
    connections = [RawConnection(host, port, LOCAL_HOSTS[i % len(LOCAL_HOSTS)],
                                 discard_body=True) for i in range(count)]
    run = StreamRun()
    futures = await _open(connections, stream_request(host, port, path, model), run)
    deadline = time.monotonic() + within_s
    while sum(c.received_bytes > 0 for c in connections) < count:
        if time.monotonic() > deadline or any(f is not None and f.done() for f in futures):
            break  # One already ended (an error, or the stream was too short): measure anyway.
        await asyncio.sleep(0.02)
    live = sum(c.received_bytes > 0 and f is not None and not f.done()
               for c, f in zip(connections, futures, strict=True))
    during = await probe.settled_rss()
    for connection in connections:
        connection.abort()
    for future in futures:
        if future is not None and not future.done():
            future.cancel()
    await asyncio.sleep(0.5)  # Let the hub notice the hang-ups before the next scenario.
    return {"streams": float(live), "rss_before_mb": before / 2**20,
            "rss_open_mb": during / 2**20,
            "kib_per_stream": (during - before) / 1024 / live if live else float("nan")}


async def many_streams(probe: ProcessProbe, host: str, port: int, path: str, model: str,
                       count: int, within_s: float) -> tuple[StreamRun, int]:
    """``count`` streams sent at once, each read to its end; returns the run and the hub's
    peak RSS (bytes) while they ran."""
    connections = [RawConnection(host, port, LOCAL_HOSTS[i % len(LOCAL_HOSTS)])
                   for i in range(count)]
    run = StreamRun()
    started = time.perf_counter()
    async with PeakRss(probe) as peak:
        watcher = asyncio.create_task(_watch(connections, run))
        futures = await _open(connections, stream_request(host, port, path, model), run)
        waiting = [f for f in futures if f is not None]
        done, pending = await asyncio.wait(waiting, timeout=within_s) if waiting else (
            set(), set())
        watcher.cancel()
    run.elapsed_s = time.perf_counter() - started
    for future in done:
        exc = future.exception()
        if exc is not None:
            run.error(type(exc).__name__)
            continue
        response = future.result()
        assert isinstance(response, RawResponse)
        if response.status != 200:
            run.error(f"HTTP {response.status}")
        elif not response.body.rstrip().endswith(b"data: [DONE]"):
            run.error("stream cut short")
        else:
            run.ok += 1
    for future in pending:
        future.cancel()
        run.error("not finished in time")
    for connection in connections:
        connection.abort()
    await asyncio.sleep(0.5)
    return run, peak.peak


async def _watch(connections: list[RawConnection], run: StreamRun) -> None:
    """Counts, every 50 ms, the requests in flight and those already streaming."""
    while True:
        outstanding = relaying = 0
        for connection in connections:
            state = connection.state()
            outstanding += state != "idle"
            relaying += state == "streaming"
        run.peak_outstanding = max(run.peak_outstanding, outstanding)
        run.peak_relaying = max(run.peak_relaying, relaying)
        await asyncio.sleep(0.05)
