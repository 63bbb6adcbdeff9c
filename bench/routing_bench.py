"""200 concurrent streams over 4 participants: errors, time to first byte against direct,
and the hub's peak memory.

Processes on loopback: four fake OpenAI upstreams (16 tokens, 5 ms apart), the hub with one
room holding the four as participants (``maxConcurrent`` 50 each), and this load
generator. The same 200 concurrent streams run once straight at the upstreams (spread
round-robin) and once through the hub (``model: "*"``), alternating rounds.
Run: ``.venv/bin/python bench/routing_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from proxy_bench import Samples, first_byte_request, free_port, start_process  # noqa: E402

PARTICIPANTS = 4
STREAMS = 200


def peak_memory_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def round_of_streams(urls: list[str], samples: Samples) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(index: int) -> None:
            try:
                elapsed = await first_byte_request(session, urls[index % len(urls)])
                samples.latencies_ms.append(elapsed * 1000)
            except (aiohttp.ClientError, RuntimeError, TimeoutError):
                samples.errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(STREAMS)))
        samples.elapsed_s += time.perf_counter() - started


async def setup(hub: str, upstreams: list[str]) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{hub}/rooms", json={"name": "routing bench"}) as response:
            code = str((await response.json())["room"]["code"])
        for index, url in enumerate(upstreams):
            join = {"id": f"p{index}", "nickname": f"p{index}", "model": "fake-model",
                    "endpoint": url, "config": {"maxConcurrent": STREAMS // PARTICIPANTS}}
            async with session.post(f"{hub}/rooms/{code}/join", json=join) as response:
                if response.status != 201:
                    raise RuntimeError(await response.text())
    return code


async def measure(direct: list[str], through_hub: str, rounds: int) -> tuple[Samples, Samples]:
    direct_samples, hub_samples = Samples(), Samples()
    for _ in range(rounds):
        await round_of_streams(direct, direct_samples)
        await round_of_streams([through_hub], hub_samples)
    return direct_samples, hub_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ports = [free_port() for _ in range(PARTICIPANTS)]
    hub_port = free_port()
    processes = [start_process(
        [sys.executable, "-m", "gambiarra_desktop.devtools.fake_openai", "--port", str(port),
         "--token-delay", "0.005"], "Fake OpenAI") for port in ports]
    with tempfile.TemporaryDirectory() as data_dir:
        hub = start_process(
            [sys.executable, "-m", "gambiarra_desktop.cli", "serve", "--host", "127.0.0.1",
             "--port", str(hub_port), "--data-dir", data_dir, "--log-level", "warning"],
            "listening")
        try:
            upstreams = [f"http://127.0.0.1:{port}" for port in ports]
            hub_url = f"http://127.0.0.1:{hub_port}"
            code = asyncio.run(setup(hub_url, upstreams))
            direct, through = asyncio.run(measure(
                [f"{u}/v1/chat/completions" for u in upstreams],
                f"{hub_url}/rooms/{code}/v1/chat/completions", args.rounds))
            peak = peak_memory_mib(hub.pid)
        finally:
            for process in (hub, *processes):
                process.terminate()
                process.wait(timeout=10)
    print(f"{STREAMS} concurrent streams over {PARTICIPANTS} participants, {args.rounds} rounds")
    print(f"{'route':<8} {'TTFB p50':>9} {'TTFB p99':>9} {'errors':>7}")
    for name, samples in (("direct", direct), ("hub", through)):
        print(f"{name:<8} {samples.percentile(50):>9.2f} {samples.percentile(99):>9.2f}"
              f" {samples.errors:>7}")
    print(f"hub/direct TTFB: p50 x{through.percentile(50) / direct.percentile(50):.2f},"
          f" p99 x{through.percentile(99) / direct.percentile(99):.2f}")
    print(f"hub peak memory (VmHWM): {peak:.1f} MiB")
    if direct.errors or through.errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
