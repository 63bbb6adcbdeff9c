"""Timed rounds of requests with the raw client, and the CPU each route's server spent.

Every scenario runs each route in turn, for several rounds, the order rotated each round,
so a burst of machine noise lands on all routes alike. Around each timed round the bench
reads the CPU seconds of the process that serves the route (the hub for ``hub`` and
``tunnel``, the bare relay for ``floor``, the fake model itself for ``direct``), so every
row says what one request (or one relayed chunk) cost that process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from hub_probe import ProcessProbe
from raw_http import RawConnection, RawResponse, build_request

MESSAGES = [{"role": "user", "content": "Say sixteen tokens."}]
REQUEST_TIMEOUT_S = 15.0
Around = Callable[[], AbstractAsyncContextManager[object]]


@dataclass
class Route:
    name: str
    host: str
    port: int
    path: str
    probe: ProcessProbe
    around: Around | None = None
    """Entered around each of the route's rounds (the SSE listener is held open there)."""

    def request(self, stream: bool, model: str) -> bytes:
        payload: dict[str, object] = {"model": model, "messages": MESSAGES}
        if stream:
            payload["stream"] = True
        return build_request("POST", self.path, f"{self.host}:{self.port}",
                             json.dumps(payload).encode())


@dataclass
class Samples:
    """Latencies and errors of one route in one scenario (every bench uses these)."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0


@dataclass
class Tally(Samples):
    cpu_s: float = 0.0
    chunks: int = 0
    error_texts: list[str] = field(default_factory=list)
    rounds: list[tuple[float, int, int]] = field(default_factory=list)
    """Each round's (CPU seconds, requests, chunks), in round order."""

    @property
    def cpu_us_per_request(self) -> float:
        """The median round's CPU per request: one round that something else on the
        machine disturbed (a 2-core machine runs the load generator and the model too)
        moves a mean over a handful of rounds by tens of microseconds."""
        return _median(self.round_cpu_us())

    @property
    def cpu_us_per_chunk(self) -> float:
        return _median(self.round_cpu_us(per_chunk=True))

    def round_cpu_us(self, per_chunk: bool = False) -> list[float]:
        """CPU per request (or per chunk) in each round, in round order."""
        return [cpu / (chunks if per_chunk else requests) * 1e6
                for cpu, requests, chunks in self.rounds
                if (chunks if per_chunk else requests)]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def paired_gap_us(tally: Tally, base: Tally) -> float:
    """The median of round-by-round differences in CPU per request: the two routes ran
    back to back in each round, so a disturbed round shows in both and cancels."""
    gaps = [a - b for a, b in zip(tally.round_cpu_us(), base.round_cpu_us(), strict=False)]
    return _median(gaps)


@dataclass
class Scenario:
    name: str
    concurrency: int
    requests: int
    stream: bool
    routes: dict[str, Route]
    """By the name its row gets; one is ``direct``, the base the others are compared with."""
    expect_chunks: int = 0
    """For streams: SSE events each answer must carry (tokens + stop + [DONE])."""


def check(response: RawResponse, scenario: Scenario) -> int:
    """The answer is whole and right; returns its number of SSE events (0 if not a stream)."""
    if response.status != 200:
        raise RuntimeError(f"status {response.status}: {response.body[:200]!r}")
    body = response.body
    if not scenario.stream:
        if b'"choices"' not in body:
            raise RuntimeError(f"not a completion: {body[:200]!r}")
        return 0
    events = body.count(b"data: ")
    if not body.rstrip().endswith(b"data: [DONE]") or (
            scenario.expect_chunks and events < scenario.expect_chunks):
        raise RuntimeError(f"incomplete stream: {events} events")
    return events


async def run_round(route: Route, scenario: Scenario, model: str, tally: Tally) -> None:
    request = route.request(scenario.stream, model)
    per_worker = max(1, scenario.requests // scenario.concurrency)
    connections = [RawConnection(route.host, route.port) for _ in range(scenario.concurrency)]
    part = Tally()

    async def one(connection: RawConnection, timed: bool) -> None:
        started = time.perf_counter()
        try:
            response = await connection.request(request, REQUEST_TIMEOUT_S)
            events = check(response, scenario)
        except (OSError, RuntimeError, TimeoutError) as exc:
            part.errors += 1
            if len(part.error_texts) < 3:
                part.error_texts.append(f"{route.name}: {exc}")
            return
        if timed:
            end = response.first_body_at if scenario.stream else time.perf_counter()
            part.latencies_ms.append((end - started) * 1e3)
            part.chunks += events

    async def worker(connection: RawConnection) -> None:
        for _ in range(per_worker):
            await one(connection, True)

    async with (route.around() if route.around else _nothing()):
        # One untimed request per connection: connects, and warms the hub's upstream pool.
        await asyncio.gather(*(one(c, False) for c in connections))
        part.errors = 0
        part.error_texts.clear()
        cpu_before = route.probe.cpu_s()
        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in connections))
        part.elapsed_s = time.perf_counter() - started
        part.cpu_s = route.probe.cpu_s() - cpu_before
    for connection in connections:
        connection.close()
    tally.latencies_ms += part.latencies_ms
    tally.errors += part.errors
    tally.error_texts += part.error_texts
    tally.elapsed_s += part.elapsed_s
    tally.cpu_s += part.cpu_s
    tally.chunks += part.chunks
    tally.rounds.append((part.cpu_s, len(part.latencies_ms), part.chunks))


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[object]:
    yield None


async def measure(scenarios: list[Scenario], rounds: int,
                  model: str) -> dict[str, dict[str, Tally]]:
    """Tallies by scenario name, then route name."""
    results: dict[str, dict[str, Tally]] = {}
    for scenario in scenarios:
        tallies = {name: Tally() for name in scenario.routes}
        order = list(scenario.routes)
        for round_index in range(rounds):
            shift = round_index % len(order)
            for name in order[shift:] + order[:shift]:
                await run_round(scenario.routes[name], scenario, model, tallies[name])
        results[scenario.name] = tallies
    return results


def rows(results: dict[str, dict[str, Tally]]) -> list[dict[str, object]]:
    """One row per scenario and route, each compared with ``direct`` of the same scenario."""
    out: list[dict[str, object]] = []
    for scenario, tallies in results.items():
        direct = tallies["direct"]
        for route, t in tallies.items():
            out.append({
                "scenario": scenario, "route": route,
                "p50_ms": t.percentile(50), "p99_ms": t.percentile(99),
                "added_p50_ms": t.percentile(50) - direct.percentile(50),
                "p50_ratio": t.percentile(50) / direct.percentile(50),
                "throughput_ratio": t.throughput / direct.throughput if direct.throughput
                else float("nan"),
                "cpu_us_per_request": t.cpu_us_per_request,
                "cpu_us_per_chunk": t.cpu_us_per_chunk,
                "requests": len(t.latencies_ms), "errors": t.errors,
                "error_samples": t.error_texts[:3],
            })
    return out


def print_rows(table: list[dict[str, object]], notes: dict[str, str]) -> None:
    header = (f"{'scenario':<20} {'route':<8} {'p50':>7} {'p99':>7} {'+ms p50':>8}"
              f" {'x p50':>6} {'thru x':>6} {'cpu us/req':>10} {'us/chunk':>8} {'errors':>6}")
    print(header)
    print("-" * len(header))
    for r in table:
        per_chunk = r["cpu_us_per_chunk"]
        chunk_text = f"{per_chunk:>8.1f}" if isinstance(per_chunk, float) and (
            per_chunk == per_chunk) else f"{'':>8}"
        print(f"{r['scenario']:<20} {r['route']:<8} {r['p50_ms']:>7.3f} {r['p99_ms']:>7.3f}"
              f" {r['added_p50_ms']:>8.3f} {r['p50_ratio']:>6.2f} {r['throughput_ratio']:>6.2f}"
              f" {r['cpu_us_per_request']:>10.0f} {chunk_text} {r['errors']:>6}")
    print("\nTimes in ms (non-stream: whole answer; stream: first body byte). +ms, x and thru x"
          " compare each route with direct in the same run. cpu = CPU the route's serving"
          " process spent per request / per relayed SSE chunk, in the median round.")
    for route, note in notes.items():
        print(f"  {route}: {note}")
