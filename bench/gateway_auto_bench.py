"""What ``model: "auto"`` at the hub root costs over the same room's ``/v1`` directly.

Processes on loopback: a fake OpenAI upstream (16 tokens), the hub (``bench/usage_hub.py``:
``gambiarra serve``'s server with rate limits no run reaches) with one room whose
participant is that upstream, and a gateway entry (L0) for that room's model. Each
scenario runs against the upstream directly, through the room's ``/v1`` and through the
gateway's ``auto``, in alternating rounds, and prints ratios against direct plus what
``auto`` adds over the room route in the same run (the issue's budget: 0.05 ms at p50).
Run: ``.venv/bin/python bench/gateway_auto_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from proxy_bench import (  # noqa: E402
    free_port,
    measure,
    print_table,
    start_upstream,
)
from usage_hub import start_bench_hub  # noqa: E402

MODEL = "fake-model"


async def setup(hub_url: str, upstream_url: str, password: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{hub_url}/rooms", json={"name": "bench-gateway"}) as r:
            code = str((await r.json())["room"]["code"])
        join = {"id": "bench-participant", "nickname": "bench", "model": MODEL,
                "endpoint": upstream_url, "config": {"maxConcurrent": 64}}
        async with session.post(f"{hub_url}/rooms/{code}/join", json=join) as r:
            if r.status != 201:
                raise RuntimeError(await r.text())
        login = {"username": "admin", "password": password}
        async with session.post(f"{hub_url}/v1/auth/login", json=login) as r:
            token = (await r.json())["token"]
        entry = {"id": "bench-room", "provider": "gambiarra", "apiModelName": MODEL,
                 "layer": "L0", "room": code}
        async with session.post(f"{hub_url}/v1/models", json=entry,
                                headers={"Authorization": f"Bearer {token}"}) as r:
            if r.status != 201:
                raise RuntimeError(await r.text())
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=600, help="requests per round")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    upstream_port, hub_port = free_port(), free_port()
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as data_dir:
        upstream = start_upstream(upstream_port)
        # Its rate limits raised: "auto" at the root is limited per address (issue 11).
        hub = start_bench_hub(hub_port, data_dir, password)
        try:
            hub_url = f"http://127.0.0.1:{hub_port}"
            upstream_url = f"http://127.0.0.1:{upstream_port}"
            code = asyncio.run(setup(hub_url, upstream_url, password))
            rows = asyncio.run(measure(
                {"direct": f"{upstream_url}/v1/chat/completions",
                 "room": f"{hub_url}/rooms/{code}/v1/chat/completions",
                 "auto": f"{hub_url}/v1/chat/completions"},
                args.rounds, args.requests, models={"auto": "auto"}, concurrencies=(1,)))
        finally:
            for process in (hub, upstream):
                process.terminate()
                process.wait(timeout=10)
    print_table(rows, {})
    for scenario in dict.fromkeys(str(r["scenario"]) for r in rows):
        by_route = {r["route"]: r for r in rows if r["scenario"] == scenario}
        added = float(by_route["auto"]["p50_ms"]) - float(by_route["room"]["p50_ms"])  # type: ignore[arg-type]
        print(f"{scenario}: auto adds {added:+.3f} ms at p50 over the room's /v1"
              f" (budget +0.050 ms)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if any(row["errors"] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
