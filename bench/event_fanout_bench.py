"""Event fan-out: the hub's memory and time when one join with a 16 KB ``specs`` goes to
1,000 SSE listeners.

The hub runs as ``gambiarra serve`` in its own process (its RSS is read from /proc), with
its default limits; the listeners come from 20 loopback addresses (50 each, under the
default 64 per address). Run: ``.venv/bin/python bench/event_fanout_bench.py [--listeners N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time

import aiohttp
import psutil

PER_ADDRESS = 50
SPECS = {"gpu": "x" * (16 * 1024 - 20)}


async def open_listener(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
    response = await session.get(url)
    assert response.status == 200, response.status
    await response.content.readuntil(b"\n\n")  # The "connected" event.
    return response


async def main(listeners: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        hub = subprocess.Popen(  # noqa: ASYNC220 - once, before any measuring.
            [sys.executable, "-m", "gambiarra_desktop.cli", "serve", "--host", "127.0.0.1",
             "--port", "0", "--data-dir", data_dir, "--log-level", "warning"],
            stdout=subprocess.PIPE, text=True)
        assert hub.stdout is not None
        port = re.search(r":(\d+)", hub.stdout.readline())
        assert port
        base = f"http://127.0.0.1:{port.group(1)}"
        process = psutil.Process(hub.pid)
        sessions: list[aiohttp.ClientSession] = []
        responses: list[aiohttp.ClientResponse] = []
        try:
            async with aiohttp.ClientSession() as api:
                async with api.post(f"{base}/rooms", json={"name": "Bench"}) as reply:
                    code = (await reply.json())["room"]["code"]
                url = f"{base}/rooms/{code}/events"
                for index in range(0, listeners, PER_ADDRESS):
                    address = f"127.0.{1 + index // (PER_ADDRESS * 200)}.{1 + index // PER_ADDRESS}"
                    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                        local_addr=(address, 0), limit=0))
                    sessions.append(session)
                    count = min(PER_ADDRESS, listeners - index)
                    responses += await asyncio.gather(
                        *(open_listener(session, url) for _ in range(count)))
                await asyncio.sleep(0.5)
                before = process.memory_info().rss
                started = time.perf_counter()
                async with api.post(f"{base}/rooms/{code}/join", json={
                        "id": "p1", "nickname": "Bench", "model": "m",
                        "endpoint": "http://192.0.2.1:11434", "specs": SPECS}) as reply:
                    assert reply.status == 201, await reply.text()
                await asyncio.gather(*(r.content.readuntil(b"\n\n") for r in responses))
                elapsed = time.perf_counter() - started
                after = process.memory_info().rss
                print(f"{listeners} listeners, one join with a 16 KB specs:"
                      f" all received it in {elapsed * 1000:.0f} ms;"
                      f" hub RSS {before / 2**20:.1f} MB -> {after / 2**20:.1f} MB"
                      f" (+{(after - before) / 2**20:.1f} MB)")
        finally:
            for response in responses:
                response.close()
            for session in sessions:
                await session.close()
            hub.terminate()
            hub.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listeners", type=int, default=1000)
    asyncio.run(main(parser.parse_args().listeners))
