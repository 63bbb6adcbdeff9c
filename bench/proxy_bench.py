"""Hub proxy overhead against a direct connection, measured in the same run.

Processes on loopback: a fake OpenAI upstream that answers with 16 tokens, the hub
(``gambiarra serve``), a participant agent (``gambiarra join``) that serves a second room
through its tunnel, a bare aiohttp relay as the floor, and this load generator. Each
scenario runs against the upstream directly and through each route, in alternating rounds
so machine noise hits all alike, and the table prints ratios against direct.
Run: ``.venv/bin/python bench/proxy_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

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
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{args} exited before it was ready")
        if ready in line:
            return process
    process.kill()
    raise RuntimeError(f"{args} not ready within {READY_TIMEOUT_S} s")


def start_upstream(port: int) -> subprocess.Popen[str]:
    """The fake OpenAI upstream every bench measures against (16 tokens per answer)."""
    return start_process([sys.executable, "-m", "gambiarra_desktop.devtools.fake_openai",
                          "--port", str(port)], "Fake OpenAI")


@dataclass
class Samples:
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


async def setup_rooms(hub_url: str, upstream_url: str) -> tuple[str, str]:
    """A room whose participant the hub dials, and an empty room for the tunnel agent."""
    async with aiohttp.ClientSession() as session:
        codes = []
        for name in ("bench-direct", "bench-tunnel"):
            async with session.post(f"{hub_url}/rooms", json={"name": name}) as response:
                codes.append(str((await response.json())["room"]["code"]))
        # 64 at once: this measures the proxy, not the queue in front of a busy model.
        join = {"id": "bench-participant", "nickname": "bench", "model": "fake-model",
                "endpoint": upstream_url, "config": {"maxConcurrent": 64}}
        async with session.post(f"{hub_url}/rooms/{codes[0]}/join", json=join) as response:
            if response.status != 201:
                raise RuntimeError(await response.text())
    return codes[0], codes[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per scenario")
    parser.add_argument("--requests", type=int, default=600, help="requests per round")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()

    upstream_port, hub_port, floor_port = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        upstream = start_upstream(upstream_port)
        hub = start_process(
            [sys.executable, "-m", "gambiarra_desktop.cli", "serve", "--host", "127.0.0.1",
             "--port", str(hub_port), "--data-dir", data_dir, "--log-level", "warning"],
            "listening")
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        floor = start_process(
            [sys.executable, str(Path(__file__).with_name("bare_relay.py")),
             "--port", str(floor_port), "--upstream", upstream_url], "listening")
        try:
            hub_base = f"http://127.0.0.1:{hub_port}"
            try:
                import uvloop
                runner: Callable[..., object] = uvloop.run
            except ImportError:
                runner = asyncio.run
            direct_code, tunnel_code = runner(setup_rooms(hub_base, upstream_url))
            agent = start_process(
                [sys.executable, "-m", "gambiarra_desktop.cli", "join", "--code", tunnel_code,
                 "--model", "fake-model", "--endpoint", upstream_url, "--hub", hub_base,
                 "--no-specs", "--nickname", "bench-tunnel", "--max-concurrent", "64"],
                "through the tunnel")
            rows = runner(measure({
                "direct": f"{upstream_url}/v1/chat/completions",
                "hub": f"{hub_base}/rooms/{direct_code}/v1/chat/completions",
                "tunnel": f"{hub_base}/rooms/{tunnel_code}/v1/chat/completions",
                "floor": f"http://127.0.0.1:{floor_port}/v1/chat/completions",
            }, args.rounds, args.requests))
            agent.terminate()
            agent.wait(timeout=10)
        finally:
            for process in (hub, floor, upstream):
                process.terminate()
                process.wait(timeout=10)
    assert isinstance(rows, list)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if any(row["errors"] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
