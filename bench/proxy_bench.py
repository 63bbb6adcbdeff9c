"""Hub proxy overhead against a direct connection: every figure of issue 15's goals, from
one run, each next to its goal.

Processes on loopback: fake OpenAI upstreams (16 tokens; 256 tokens a millisecond apart;
a slow one that holds streams open), the hub (``gambiarra serve`` via bench/proxy_hub.py,
started at a soft open-file limit of 1024), a participant agent (``gambiarra join``) that
serves a room through its tunnel, bare aiohttp relays as the floor (bench/bare_relay.py),
and this load generator (a raw keep-alive client, bench/raw_http.py). Each scenario runs
directly against the upstream and through each route in alternating rounds, so machine
noise hits all alike; around each round the serving process's own CPU is read, so the
table shows CPU per request and per relayed chunk beside the added milliseconds. Then
streams held open give memory per stream, and 1,000 streams over 4 participants the error
count and peak RSS. The participants get health calls all along (bench/bench_rooms.py).
Run: ``.venv/bin/python bench/proxy_bench.py`` (about 2 minutes; ``--quick``: under one).
Exit status 1 only when requests failed, never for a missed goal.

The helpers above ``Sizes`` (``start_process``, ``measure``, ``print_table``, ...) serve the
other benches, which import them.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from bench_rooms import HealthKeeper, create_room, join  # noqa: E402
from hub_probe import ProcessProbe  # noqa: E402
from proxy_goals import goals, print_goals  # noqa: E402
from proxy_rounds import Around, Route, Samples, Scenario, print_rows, rows  # noqa: E402
from proxy_rounds import measure as measure_rounds  # noqa: E402
from proxy_streams import StreamRun, many_streams, memory_per_stream  # noqa: E402
from raw_http import RawConnection, build_request  # noqa: E402

T = TypeVar("T")
MESSAGES = [{"role": "user", "content": "Say sixteen tokens."}]
READY_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_process(
    args: list[str], ready: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start a child and wait for its ``ready`` line; after it, a daemon thread keeps
    reading the child's output (the last lines kept in ``process.tail``), because a child
    whose pipe nobody reads freezes once it has written 64 KB."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    seen: collections.deque[str] = collections.deque(maxlen=40)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{args} exited before it was ready:\n{''.join(seen)}")
        seen.append(line)
        if ready in line:
            threading.Thread(target=_drain, args=(process.stdout, seen), daemon=True).start()
            process.tail = seen  # type: ignore[attr-defined]
            return process
    process.kill()
    raise RuntimeError(f"{args} not ready within {READY_TIMEOUT_S} s")


def _drain(pipe: IO[str], tail: collections.deque[str]) -> None:
    for line in pipe:
        tail.append(line)


def start_upstream(port: int, *options: str) -> subprocess.Popen[str]:
    """The fake OpenAI upstream every bench measures against (16 tokens per answer unless
    ``options`` say otherwise: ``--tokens N``, ``--token-delay S``)."""
    return start_process([sys.executable, "-m", "gambiarra_desktop.devtools.fake_openai",
                          "--port", str(port), *options], "Fake OpenAI")


Request = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


async def whole_request(session: aiohttp.ClientSession, url: str, model: str = "*") -> None:
    async with session.post(url, json={"model": model, "messages": MESSAGES}) as response:
        body = await response.read()
        if response.status != 200 or b"tok15" not in body:
            raise RuntimeError(f"bad answer {response.status}")


async def first_byte_request(
    session: aiohttp.ClientSession, url: str, model: str = "*"
) -> float:
    """Seconds to the first streamed chunk; the rest of the stream is drained untimed."""
    started = time.perf_counter()
    payload = {"model": model, "messages": MESSAGES, "stream": True}
    async with session.post(url, json=payload) as response:
        first = await response.content.readany()
        elapsed = time.perf_counter() - started
        rest = await response.read()
        if response.status != 200 or b"data:" not in first or b"[DONE]" not in first + rest:
            raise RuntimeError(f"bad stream {response.status}")
    return elapsed


async def run_round(
    url: str, concurrency: int, per_worker: int, streaming: bool, samples: Samples,
    model: str = "*", headers: dict[str, str] | None = None,
) -> None:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     headers=headers) as session:

        async def worker() -> None:
            for _ in range(per_worker):
                started = time.perf_counter()
                try:
                    if streaming:
                        samples.latencies_ms.append(
                            await first_byte_request(session, url, model) * 1e3)
                    else:
                        await whole_request(session, url, model)
                        samples.latencies_ms.append((time.perf_counter() - started) * 1e3)
                except (aiohttp.ClientError, RuntimeError, TimeoutError):
                    samples.errors += 1

        await worker()  # Warm the connection pool, untimed below.
        samples.latencies_ms.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        samples.elapsed_s += time.perf_counter() - started


ROUTES = ("direct", "hub", "tunnel", "floor")
ROUTE_NOTES = {
    "hub": "through the hub, which dials the upstream",
    "tunnel": "through the hub and a participant agent's WebSocket tunnel",
    "floor": "bench/bare_relay.py: aiohttp relaying with no hub logic (what any aiohttp"
             " hub pays)",
}


async def measure(
    urls: dict[str, str], rounds: int, requests: int, models: dict[str, str] | None = None,
    concurrencies: tuple[int, ...] = (1, 32),
    headers: dict[str, dict[str, str]] | None = None,
    before_round: Callable[[str], Awaitable[None]] | None = None,
) -> list[dict[str, object]]:
    """``models``: the ``model`` field sent to each route (``*`` where not given);
    ``headers``: sent with each route's requests; ``before_round``: awaited with a route's
    name before each of its rounds, untimed (a bench switches the hub's state there)."""
    rows: list[dict[str, object]] = []
    for streaming in (False, True):
        for concurrency in concurrencies:
            per_worker = max(1, requests // concurrency)
            totals = {route: Samples() for route in urls}
            for _ in range(rounds):
                for route, url in urls.items():
                    part = Samples()
                    if before_round is not None:
                        await before_round(route)
                    await run_round(url, concurrency, per_worker, streaming, part,
                                    (models or {}).get(route, "*"), (headers or {}).get(route))
                    total = totals[route]
                    total.latencies_ms += part.latencies_ms
                    total.errors += part.errors
                    total.elapsed_s += part.elapsed_s
            direct = totals["direct"]
            scenario = ("stream TTFB" if streaming else "non-stream") + f" c={concurrency}"
            for route, samples in totals.items():
                rows.append({
                    "scenario": scenario, "route": route,
                    "p50_ms": samples.percentile(50), "p99_ms": samples.percentile(99),
                    "added_p50_ms": samples.percentile(50) - direct.percentile(50),
                    "p50_ratio": samples.percentile(50) / direct.percentile(50),
                    "p99_ratio": samples.percentile(99) / direct.percentile(99),
                    "throughput_ratio": samples.throughput / direct.throughput,
                    "requests": len(samples.latencies_ms), "errors": samples.errors,
                })
    return rows


def print_table(rows: list[dict[str, object]], notes: dict[str, str] | None = None) -> None:
    header = (f"{'scenario':<17} {'route':<7} {'p50':>7} {'p99':>7} {'+ms p50':>8}"
              f" {'x p50':>6} {'x p99':>6} {'thru x':>7} {'errors':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['scenario']:<17} {r['route']:<7} {r['p50_ms']:>7.3f} {r['p99_ms']:>7.3f}"
              f" {r['added_p50_ms']:>8.3f} {r['p50_ratio']:>6.2f} {r['p99_ratio']:>6.2f}"
              f" {r['throughput_ratio']:>7.2f} {r['errors']:>6}")
    print("\nTimes in ms; +ms and x compare each route with direct in the same run; thru x ="
          " requests per second against direct.")
    for route, note in (ROUTE_NOTES if notes is None else notes).items():
        print(f"  {route}: {note}")


@dataclass(frozen=True)
class Sizes:
    """How much each part of a run sends; ``--quick`` halves most of it."""

    rounds: int = 5
    whole_c1: int = 600
    whole_c32: int = 2048
    first_byte_c1: int = 300
    long_c1: int = 8
    long_c32: int = 64
    long_tokens: int = 256
    long_token_delay_s: float = 0.001
    """A model sends tokens milliseconds apart, so each reaches the hub as its own read; sent
    back to back they would arrive merged, and the hub's cost per read would be split over
    several chunks (4 us instead of 14 at c=1 in one run)."""
    open_streams: int = 200
    many_streams: int = 1000


QUICK = Sizes(rounds=2, whole_c1=300, whole_c32=1024, first_byte_c1=150, long_c1=3,
              long_c32=32)
SLOW_TOKENS, SLOW_DELAY_S = 3, 2.5
"""The held streams' model: a first token at once, then one every 2.5 s (5 s a stream, long
enough for 1,000 to be sent before the first 256 end)."""
NOTES = {
    "direct": "the fake model itself (cpu: the model server's own)",
    "hub": "through the hub (gambiarra serve), which dials the model",
    "hub+sse": "the same, while one client holds GET /rooms/CODE/events open",
    "tunnel": "through the hub and a participant agent's WebSocket tunnel (cpu: hub only)",
    "floor": "bench/bare_relay.py: aiohttp relaying with no hub logic (what any aiohttp"
             " hub pays)",
    "tcp": "bench/tcp_relay.py: bytes passed both ways, no HTTP at all (what any Python"
           " relay pays here)",
}


def run_on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """The load generator on uvloop where it exists: a cheaper client leaves the CPU to
    the processes being measured."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def raise_own_open_files() -> None:
    """The load generator holds over 1,000 sockets in the many-streams row."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 65536)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def sse_listener(host: str, port: int, code: str) -> Around:
    """Holds one client on the room's event stream, reading and discarding what comes."""

    @contextlib.asynccontextmanager
    async def listening() -> AsyncIterator[RawConnection]:
        connection = RawConnection(host, port, discard_body=True)
        await connection.send(build_request("GET", f"/rooms/{code}/events", f"{host}:{port}"))
        status = await connection.wait_headers(5.0)
        if status != 200:
            raise RuntimeError(f"events: HTTP {status}")
        try:
            yield connection
        finally:
            connection.abort()

    return listening


async def run_bench(sizes: Sizes, model: str, ports: dict[str, int],
                    pids: dict[str, int], data_dir: str) -> dict[str, object]:
    raise_own_open_files()
    host = "127.0.0.1"
    hub_url = f"http://{host}:{ports['hub']}"
    keeper = HealthKeeper(hub_url)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        codes = {name: await create_room(session, hub_url, f"bench-{name}")
                 for name in ("hub", "long", "streams", "tunnel")}
        keeper.keep(await join(session, hub_url, codes["hub"], "bench-16",
                               f"http://{host}:{ports['up16']}"))
        keeper.keep(await join(session, hub_url, codes["long"], "bench-long",
                               f"http://{host}:{ports['up_long']}"))
        for i in range(4):
            keeper.keep(await join(session, hub_url, codes["streams"], f"bench-slow-{i}",
                                   f"http://{host}:{ports['up_slow']}"))
    keeper.start()
    agent = await asyncio.to_thread(start_process, [
        sys.executable, "-m", "gambiarra_desktop.cli", "join", "--code", codes["tunnel"],
        "--model", "fake-model", "--endpoint", f"http://{host}:{ports['up16']}",
        "--hub", hub_url, "--no-specs", "--nickname", "bench-tunnel",
        "--max-concurrent", "64"], "through the tunnel")
    try:
        probes = {name: ProcessProbe(pid) for name, pid in pids.items()}
        hub = probes["hub"]
        chat = "/v1/chat/completions"

        def on_hub(room: str, around: Around | None = None) -> Route:
            return Route("hub", host, ports["hub"], f"/rooms/{codes[room]}{chat}", hub, around)

        whole = {
            "direct": Route("direct", host, ports["up16"], chat, probes["up16"]),
            "hub": on_hub("hub"),
            "hub+sse": on_hub("hub", sse_listener(host, ports["hub"], codes["hub"])),
            "tunnel": on_hub("tunnel"),
            "floor": Route("floor", host, ports["floor"], chat, probes["floor"]),
            "tcp": Route("tcp", host, ports["tcp"], chat, probes["tcp"]),
        }
        first = {k: v for k, v in whole.items() if k != "hub+sse"}
        long = {
            "direct": Route("direct", host, ports["up_long"], chat, probes["up_long"]),
            "hub": on_hub("long"),
            "floor": Route("floor", host, ports["floor_long"], chat, probes["floor_long"]),
            "tcp": Route("tcp", host, ports["tcp_long"], chat, probes["tcp_long"]),
        }
        chunks = sizes.long_tokens + 2  # Each token, the stop chunk, and [DONE].
        scenarios = [
            Scenario("non-stream c=1", 1, sizes.whole_c1, False, whole),
            Scenario("non-stream c=32", 32, sizes.whole_c32, False, whole),
            Scenario("stream first byte c=1", 1, sizes.first_byte_c1, True, first),
            Scenario("long stream c=1", 1, sizes.long_c1, True, long, chunks),
            Scenario("long stream c=32", 32, sizes.long_c32, True, long, chunks),
        ]
        results = await measure_rounds(scenarios, sizes.rounds, model)
        streams_path = f"/rooms/{codes['streams']}{chat}"
        memory = await memory_per_stream(hub, host, ports["hub"], streams_path, model,
                                         sizes.open_streams)
        many, peak = await many_streams(hub, host, ports["hub"], streams_path, model,
                                        sizes.many_streams, within_s=60.0)
    finally:
        await keeper.stop()
        agent.terminate()
        await asyncio.to_thread(agent.wait, 10)
    return {"results": results, "memory": memory, "many": many, "peak_rss": peak,
            "health_sent": keeper.sent, "health_failed": keeper.failed}


def report(out: dict[str, object], sizes: Sizes, elapsed_s: float) -> tuple[dict[str, object],
                                                                          int]:
    results = out["results"]
    memory = out["memory"]
    many = out["many"]
    assert isinstance(results, dict) and isinstance(memory, dict)
    assert isinstance(many, StreamRun) and isinstance(out["peak_rss"], int)
    table = rows(results)
    print_rows(table, NOTES)
    print(f"\nHeld streams: {memory['streams']:.0f} open through the hub at once, hub RSS"
          f" {memory['rss_before_mb']:.1f} -> {memory['rss_open_mb']:.1f} MB:"
          f" {memory['kib_per_stream']:.1f} KiB per stream.")
    peak_mb = out["peak_rss"] / 2**20
    print(f"{sizes.many_streams} streams over 4 participants (64 slots each, the rest queued),"
          f" hub started at a soft open-file limit of 1024: {many.ok} whole,"
          f" {many.errors} errors {many.error_kinds or ''}; at most {many.peak_outstanding}"
          f" in flight and {many.peak_relaying} streaming at once; hub peak RSS"
          f" {peak_mb:.1f} MB; {many.elapsed_s:.1f} s.")
    print(f"Health calls sent: {out['health_sent']} ({out['health_failed']} failed)."
          f" Whole run {elapsed_s:.0f} s.\n")
    goal_rows = goals(results, memory, many.errors, peak_mb, sizes.many_streams)
    print_goals(goal_rows)
    errors = sum(int(str(r["errors"])) for r in table) + many.errors
    for r in table:
        for sample in r["error_samples"]:  # type: ignore[attr-defined]
            print(f"  error: {r['scenario']}: {sample}")
    data: dict[str, object] = {"rows": table, "goals": [g.as_dict() for g in goal_rows],
            "memory": memory, "many_streams": dataclasses.asdict(many) | {"peak_rss_mb": peak_mb},
            "health": {"sent": out["health_sent"], "failed": out["health_failed"]}}
    return data, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a ~40 s run (fewer requests)")
    parser.add_argument("--rounds", type=int, help="alternating rounds per scenario")
    parser.add_argument("--model", default="fake-model", help="the model field sent")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    started = time.monotonic()

    names = ("up16", "up_long", "up_slow", "hub", "floor", "floor_long", "tcp", "tcp_long")
    ports = {name: free_port() for name in names}
    relay = str(Path(__file__).with_name("bare_relay.py"))
    processes: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        try:
            processes.append(start_upstream(ports["up16"]))
            processes.append(start_upstream(
                ports["up_long"], "--tokens", str(sizes.long_tokens),
                "--token-delay", str(sizes.long_token_delay_s)))
            processes.append(start_upstream(ports["up_slow"], "--tokens", str(SLOW_TOKENS),
                                            "--token-delay", str(SLOW_DELAY_S)))
            processes.append(start_process(
                [sys.executable, str(Path(__file__).with_name("proxy_hub.py")),
                 "--queue-max", str(sizes.many_streams + 64), "--", "serve",
                 "--host", "127.0.0.1", "--port", str(ports["hub"]), "--data-dir", data_dir,
                 "--log-level", "warning"], "listening"))
            tcp = str(Path(__file__).with_name("tcp_relay.py"))
            for name, upstream, script in (("floor", "up16", relay),
                                           ("floor_long", "up_long", relay),
                                           ("tcp", "up16", tcp), ("tcp_long", "up_long", tcp)):
                processes.append(start_process(
                    [sys.executable, script, "--port", str(ports[name]),
                     "--upstream", f"http://127.0.0.1:{ports[upstream]}"], "listening"))
            pids = {name: p.pid for name, p in zip(names, processes, strict=True)}
            out = run_on_uvloop(run_bench(sizes, args.model, ports, pids, data_dir))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=10)
    data, errors = report(out, sizes, time.monotonic() - started)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=str))
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
