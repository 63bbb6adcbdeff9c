"""The hub at another commit against the working tree, in one run: which change paid.

Runs made minutes apart on a 2-core machine differ by 20% or more (the fake model itself
used 136 us per request in one run and 167 in the next), which is more than most single
changes to the hub save. So both hubs run at once here, beside the same fake model, and
every round measures each of them (and the model directly) in turn, rotating the order:
what disturbs the machine in a round disturbs all three. CPU is read from the kernel per
thread in nanoseconds (``hub_probe``), and each figure is the median round's.

Run: ``.venv/bin/python bench/hub_ab.py --at REV`` (a git revision; it is checked out into
a temporary worktree, the working tree is measured as it is). About 2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from bench_rooms import HealthKeeper, create_room, join
from hub_probe import ProcessProbe
from proxy_bench import free_port, run_on_uvloop, start_process, start_upstream
from raw_http import RawConnection, build_request

ROOT = Path(__file__).resolve().parent.parent
REQUEST_TIMEOUT_S = 10.0


@dataclass
class Side:
    name: str
    port: int
    path: str
    probe: ProcessProbe
    cpu_us: dict[int, list[float]] = field(default_factory=lambda: {1: [], 32: []})
    latencies_ms: list[float] = field(default_factory=list)


def start_hub(source: Path, port: int, data_dir: str) -> subprocess.Popen[str]:
    """``gambiarra serve`` from ``source`` (a checkout), whatever the venv has installed."""
    env = dict(os.environ, PYTHONPATH=str(source))
    return start_process([sys.executable, "-m", "gambiarra_desktop.cli", "serve", "--host",
                          "127.0.0.1", "--port", str(port), "--data-dir", data_dir,
                          "--log-level", "warning"], "listening", env=env)


async def measure_round(side: Side, concurrency: int, requests: int) -> None:
    request = build_request("POST", side.path, f"127.0.0.1:{side.port}", json.dumps(
        {"model": "*", "messages": [{"role": "user", "content": "hi"}]}).encode())
    connections = [RawConnection("127.0.0.1", side.port) for _ in range(concurrency)]
    await asyncio.gather(*(c.request(request, REQUEST_TIMEOUT_S) for c in connections))
    per_connection = requests // concurrency

    async def worker(connection: RawConnection) -> None:
        for _ in range(per_connection):
            started = time.perf_counter()
            response = await connection.request(request, REQUEST_TIMEOUT_S)
            if response.status != 200:
                raise RuntimeError(f"{side.name}: HTTP {response.status}: {response.body!r}")
            if concurrency == 1:
                side.latencies_ms.append((time.perf_counter() - started) * 1e3)

    cpu_before = side.probe.cpu_s()
    await asyncio.gather(*(worker(c) for c in connections))
    side.cpu_us[concurrency].append(
        (side.probe.cpu_s() - cpu_before) / (per_connection * concurrency) * 1e6)
    for connection in connections:
        connection.close()


async def run(sides: list[Side], rounds: int, c1: int, c32: int) -> None:
    for index in range(rounds):
        order = sides[index % len(sides):] + sides[:index % len(sides)]
        for side in order:
            await measure_round(side, 1, c1)
            await measure_round(side, 32, c32)


def report(sides: list[Side]) -> None:
    direct = sides[0]
    base = {c: statistics.median(direct.cpu_us[c]) for c in (1, 32)}
    base_ms = statistics.median(direct.latencies_ms)
    print(f"{'':<26} {'cpu us/req c=1':>15} {'c=32':>7} {'x direct':>9} {'p50 ms c=1':>11}"
          f" {'+ms':>7}")
    for side in sides:
        cpu1, cpu32 = (statistics.median(side.cpu_us[c]) for c in (1, 32))
        p50 = statistics.median(side.latencies_ms)
        print(f"{side.name:<26} {cpu1:>15.1f} {cpu32:>7.1f} {cpu1 / base[1]:>5.2f}/"
              f"{cpu32 / base[32]:<4.2f}{p50:>10.3f} {p50 - base_ms:>7.3f}")
    print("\nMedian round of each; cpu: the serving process's own, per request; direct: the"
          " fake model itself.")


async def bench(rev: str, source_at: Path, rounds: int, c1: int, c32: int) -> None:
    with tempfile.TemporaryDirectory() as data_a, tempfile.TemporaryDirectory() as data_b:
        model_port, port_a, port_b = free_port(), free_port(), free_port()
        processes = [start_upstream(model_port), start_hub(source_at, port_a, data_a),
                     start_hub(ROOT, port_b, data_b)]
        keepers: list[HealthKeeper] = []  # Without health calls a participant goes offline.
        try:
            paths = []
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                for port in (port_a, port_b):
                    url = f"http://127.0.0.1:{port}"
                    code = await create_room(http, url, "ab")
                    keeper = HealthKeeper(url)
                    keeper.keep(await join(http, url, code, "model",
                                           f"http://127.0.0.1:{model_port}"))
                    keeper.start()
                    keepers.append(keeper)
                    paths.append(f"/rooms/{code}/v1/chat/completions")
            sides = [Side("direct (the model)", model_port, "/v1/chat/completions",
                          ProcessProbe(processes[0].pid)),
                     Side(f"hub at {rev}", port_a, paths[0], ProcessProbe(processes[1].pid)),
                     Side("hub, working tree", port_b, paths[1], ProcessProbe(processes[2].pid))]
            await run(sides, rounds, c1, c32)
            report(sides)
        finally:
            for keeper in keepers:
                await keeper.stop()
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--at", required=True, help="the git revision to compare with")
    parser.add_argument("--rounds", type=int, default=14)
    parser.add_argument("--c1", type=int, default=1500, help="requests per round, c=1")
    parser.add_argument("--c32", type=int, default=4096, help="requests per round, c=32")
    args = parser.parse_args()
    git = shutil.which("git")
    if git is None:
        raise SystemExit("git is needed to check out --at")
    with tempfile.TemporaryDirectory() as worktree:
        subprocess.run([git, "-C", str(ROOT), "worktree", "add", "--detach", "-q", worktree,
                        args.at], check=True)
        try:
            run_on_uvloop(bench(args.at, Path(worktree), args.rounds, args.c1, args.c32))
        finally:
            subprocess.run([git, "-C", str(ROOT), "worktree", "remove", "--force", worktree],
                           check=False)


if __name__ == "__main__":
    main()
