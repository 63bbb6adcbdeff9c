"""What the usage ledger and the rate limits cost per request, and whether the ledger keeps
up with 2,000 requests/s (issue 11's budget: at most +0.05 ms at p50, and no row lost).

Processes on loopback: a fake OpenAI upstream (16 tokens), the hub (``bench/usage_hub.py``:
``gambiarra serve``'s server plus a bench-only switch for the accounting) with one room
whose participant is that upstream and one gateway entry (L0) for it, and this load
generator. Three parts:

1. Per-request cost, one request at a time, every route interleaved request by request
   (each cycle sends one request to each route in a shuffled order), so machine noise
   hits every route alike: direct to the upstream; the room route and the gateway root
   with the ledger and limiter switched off for that request (``off``, ``rootoff``); the
   room route keyless (ledger only), with a key holding rpm and tpm with the accounting
   off (``keyoff``: the key check alone) and on (key check, limits, ledger), and the
   gateway root keyless (address limit, ledger). Each route's p50/p99, the difference to
   its "off" route (and the median of the per-cycle differences), and the ratio to
   direct. (Rounds of hundreds of requests per route, as the first version sent, let one
   load spike land on one route's round: one build measured +0.02 and +0.13 ms.)
2. Throughput: ``--seconds`` of load at ``--concurrency`` through the room route with a
   key, and as long with the accounting off, in alternating half-second slices;
   requests/s and the hub's CPU per request of each, the ledger's rows (``/v1/usage``,
   which flushes first) against the answers while it was on, the largest pending buffer
   and the writer's batches.
3. In process: ``Ledger.record`` (us per call) and the writer (rows/s in 500-row batches,
   the size the writer flushes at) on a SQLite file.

Run: ``.venv/bin/python bench/usage_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from gateway_auto_bench import setup  # noqa: E402
from proxy_bench import (  # noqa: E402
    MESSAGES,
    REQUEST_TIMEOUT_S,
    Samples,
    free_port,
    print_table,
    start_upstream,
    whole_request,
)
from usage_hub import SWITCH_HEADER, start_bench_hub  # noqa: E402

from gambiarra_desktop.accounting.ledger import FLUSH_AT_ROWS, Ledger, UsageRow  # noqa: E402
from gambiarra_desktop.events import EventBus  # noqa: E402
from gambiarra_desktop.gateway.settings import GatewaySettings  # noqa: E402
from gambiarra_desktop.hub.rooms.store import SqliteStore  # noqa: E402

BUDGET_MS = 0.05
SLICE_S = 0.5
UNREACHED = 10**9
ROUTE_NOTES = {
    "off": "room route keyless, ledger and limiter off for the request (baseline of ledger)",
    "ledger": "room route keyless: the ledger only (keyless room routes are never limited)",
    "keyoff": "room route with the gk- key, ledger and limiter off: the key check only"
              " (baseline of keyed)",
    "keyed": "room route with a gk- key holding rpm and tpm: key check, limits, ledger",
    "rootoff": "gateway root, ledger and limiter off for the request (baseline of root)",
    "root": "gateway root keyless: the per-address limit and the ledger",
}
BASELINES = {"ledger": "off", "keyed": "keyoff", "root": "rootoff"}
"""What the budget is about: each row against the same request with the ledger and the
limiter off. The key check (SHA-256 of the key, its scope) is authentication, not ledger or
limits: it is shown on its own line (``keyoff`` against ``off``) and not budgeted."""
SEPARATE = {"keyoff": "off"}


async def admin_token(session: aiohttp.ClientSession, hub_url: str, password: str) -> str:
    login = {"username": "admin", "password": password}
    async with session.post(f"{hub_url}/v1/auth/login", json=login) as response:
        return str((await response.json())["token"])


async def make_key(session: aiohttp.ClientSession, hub_url: str, token: str, name: str) -> str:
    """A hub-wide key whose rpm and tpm are counted on every request but never reached."""
    body = {"name": name, "rpm": UNREACHED, "tpm": UNREACHED}
    async with session.post(f"{hub_url}/v1/keys", json=body,
                            headers={"Authorization": f"Bearer {token}"}) as response:
        if response.status != 201:
            raise RuntimeError(await response.text())
        return str((await response.json())["key"])


OFF_HEADERS = {SWITCH_HEADER: "off"}


@dataclass(frozen=True)
class Route:
    url: str
    model: str = "*"
    headers: dict[str, str] = field(default_factory=dict)


async def timed(session: aiohttp.ClientSession, route: Route, streaming: bool) -> float:
    """One request's ms: the whole answer, or the first streamed byte."""
    started = time.perf_counter()
    async with session.post(route.url, headers=route.headers,
                            json={"model": route.model, "messages": MESSAGES,
                                  "stream": streaming}) as response:
        body = await (response.content.readany() if streaming else response.read())
        took = (time.perf_counter() - started) * 1e3
        rest = await response.read() if streaming else b""  # Drained untimed.
        if response.status != 200 or (b"data:" if streaming else b"tok15") not in body + rest:
            raise RuntimeError(f"bad answer {response.status}")
    return took


async def per_request_cost(hub_url: str, upstream_url: str, code: str, key: str,
                           cycles: int) -> tuple[list[dict[str, object]], dict[str, list[float]]]:
    """Every route interleaved request by request: each cycle sends one request to each
    route, in a shuffled order, over one keep-alive connection each (so drift and noise of
    the machine hit every route alike; rounds of hundreds let a load spike land on one
    route's round only). The "off" routes carry ``X-Bench-Accounting: off``.

    Returns the table's rows and, per measured route, its per-cycle difference to its
    baseline (paired: the median of these is a second view of the added cost)."""
    room = f"{hub_url}/rooms/{code}/v1/chat/completions"
    root = f"{hub_url}/v1/chat/completions"
    routes = {
        "direct": Route(f"{upstream_url}/v1/chat/completions"),
        "off": Route(room, headers=OFF_HEADERS),
        "ledger": Route(room),
        "keyoff": Route(room, headers={"Authorization": f"Bearer {key}", **OFF_HEADERS}),
        "keyed": Route(room, headers={"Authorization": f"Bearer {key}"}),
        "rootoff": Route(root, "bench-room", OFF_HEADERS),
        "root": Route(root, "bench-room"),
    }
    shuffler = random.Random(11)
    rows: list[dict[str, object]] = []
    paired: dict[str, list[float]] = {}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    for streaming in (False, True):
        scenario = ("stream TTFB" if streaming else "non-stream") + " c=1"
        samples = {name: Samples() for name in routes}
        sessions = {name: aiohttp.ClientSession(timeout=timeout) for name in routes}
        try:
            order = list(routes)
            for cycle in range(cycles + 20):  # The first 20 cycles warm up, untimed.
                shuffler.shuffle(order)
                took: dict[str, float] = {}
                for name in order:
                    try:
                        took[name] = await timed(sessions[name], routes[name], streaming)
                    except (aiohttp.ClientError, RuntimeError, TimeoutError):
                        samples[name].errors += 1
                if cycle < 20:
                    continue
                for name, ms in took.items():
                    samples[name].latencies_ms.append(ms)
                    samples[name].elapsed_s += ms / 1e3  # One at a time: busy time is elapsed.
                for name, baseline in (BASELINES | SEPARATE).items():
                    if name in took and baseline in took:
                        paired.setdefault(f"{scenario} {name}", []).append(
                            took[name] - took[baseline])
        finally:
            for session in sessions.values():
                await session.close()
        direct = samples["direct"]
        for name, got in samples.items():
            rows.append({
                "scenario": scenario, "route": name,
                "p50_ms": got.percentile(50), "p99_ms": got.percentile(99),
                "added_p50_ms": got.percentile(50) - direct.percentile(50),
                "p50_ratio": got.percentile(50) / direct.percentile(50),
                "p99_ratio": got.percentile(99) / direct.percentile(99),
                "throughput_ratio": got.throughput / direct.throughput,
                "requests": len(got.latencies_ms), "errors": got.errors,
            })
    return rows, paired


def print_costs(rows: list[dict[str, object]], paired: dict[str, list[float]]) -> bool:
    """What each accounting row adds over its "off" row; True when all are in budget."""
    within = True
    for scenario in dict.fromkeys(str(r["scenario"]) for r in rows):
        by_route = {str(r["route"]): r for r in rows if r["scenario"] == scenario}
        for route, baseline in (BASELINES | SEPARATE).items():
            on, off = by_route[route], by_route[baseline]
            p50 = float(on["p50_ms"]) - float(off["p50_ms"])  # type: ignore[arg-type]
            p99 = float(on["p99_ms"]) - float(off["p99_ms"])  # type: ignore[arg-type]
            differences = sorted(paired[f"{scenario} {route}"])
            median = differences[len(differences) // 2]
            budgeted = route in BASELINES
            if budgeted and scenario.startswith("non-stream") and p50 > BUDGET_MS:
                within = False
            budget = f"budget +{BUDGET_MS:.3f} ms at p50" if budgeted else "the key check"
            print(f"{scenario}: {route:<6} adds {p50:+.3f} ms at p50, {p99:+.3f} ms at p99"
                  f" over {baseline:<7} (median of {len(differences)} paired differences"
                  f" {median:+.3f} ms; {budget})")
    return within


async def drive(session: aiohttp.ClientSession, url: str, concurrency: int,
               seconds: float) -> tuple[int, int, float]:
    """(answered, errors, elapsed s) of ``concurrency`` workers sending for ``seconds``."""
    answered = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal answered, errors
        while time.perf_counter() < deadline:
            try:
                await whole_request(session, url)
                answered += 1
            except (aiohttp.ClientError, RuntimeError, TimeoutError):
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answered, errors, time.perf_counter() - started


def cpu_seconds(pid: int) -> float | None:
    """The process's CPU time, all threads (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def throughput(hub_url: str, hub_pid: int, code: str, key: str, token: str,
                     concurrency: int, seconds: float) -> dict[str, object]:
    """Load through the room route with ``key`` after a warm-up, the accounting switched on
    and off in alternating half-second slices (``seconds`` of each), so the off slices show
    what this machine allows without it and the hub's CPU per request compares the two;
    then the ledger's rows against the requests answered while it was on."""
    url = f"{hub_url}/rooms/{code}/v1/chat/completions"
    answered = {True: 0, False: 0}
    elapsed = {True: 0.0, False: 0.0}
    cpu = {True: 0.0, False: 0.0}
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     headers={"Authorization": f"Bearer {key}"}) as session:

        async def switch(on: bool) -> None:
            async with session.post(f"{hub_url}/_bench/accounting", json={},
                                    params={"on": "1" if on else "0"}) as response:
                response.raise_for_status()

        await switch(False)
        await drive(session, url, concurrency, SLICE_S)  # Connections open, caches warm.
        async with session.post(f"{hub_url}/_bench/ledger", json={}) as response:
            response.raise_for_status()
        for _ in range(max(1, round(seconds / SLICE_S))):
            for on in (True, False):
                await switch(on)
                before = cpu_seconds(hub_pid) or 0.0
                done, failed, took = await drive(session, url, concurrency, SLICE_S)
                cpu[on] += (cpu_seconds(hub_pid) or 0.0) - before
                answered[on] += done
                errors += failed
                elapsed[on] += took
        await switch(True)
        async with session.get(f"{hub_url}/_bench/ledger") as response:
            writer = await response.json()
    async with aiohttp.ClientSession() as admin, admin.get(
            f"{hub_url}/v1/usage", params={"groupBy": "key"},
            headers={"Authorization": f"Bearer {token}"}) as response:
        usage = (await response.json())["data"]
    key_id = key.removeprefix("gk-").split("_", 1)[0]
    rows = sum(int(r["requests"]) for r in usage if r.get("keyId") == key_id)
    return {"concurrency": concurrency, "seconds": round(elapsed[True], 2),
            "requests_per_s": round(answered[True] / elapsed[True], 1),
            "off_requests_per_s": round(answered[False] / elapsed[False], 1),
            "cpu_us_per_request": round(cpu[True] / max(1, answered[True]) * 1e6, 1),
            "off_cpu_us_per_request": round(cpu[False] / max(1, answered[False]) * 1e6, 1),
            "answered": answered[True], "errors": errors, "ledger_rows": rows,
            "largest_pending": writer["largestPending"], "batches": writer["batches"],
            "dropped": writer["dropped"]}


async def ledger_microbench(rows: int) -> dict[str, object]:
    """``record`` alone, then the writer's ``flush`` of 500-row batches, on a real file."""
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(Path(directory) / "ledger.sqlite3")
        await store.open()
        ledger = Ledger(store, EventBus(), GatewaySettings)
        await ledger.open()
        row = UsageRow(ts_ms=int(time.time() * 1000), key_id="0123456789ab", address="127.0.0.1",
                       room="ABC123", participant="bench", provider="gambiarra",
                       model="fake-model", layer=None, prompt_tokens=5, completion_tokens=16,
                       cost=0.0, latency_ms=0.4, ttft_ms=0.2, status=200, person="key:0123456789ab",
                       key_name="bench")
        recorded_ns = flushed_ns = 0
        for start in range(0, rows, FLUSH_AT_ROWS):
            batch = [replace(row, ts_ms=row.ts_ms + i) for i in range(start, start + FLUSH_AT_ROWS)]
            began = time.perf_counter_ns()
            for item in batch:
                ledger.record(item)
            recorded_ns += time.perf_counter_ns() - began
            began = time.perf_counter_ns()
            await ledger.flush()
            flushed_ns += time.perf_counter_ns() - began
        ((written,),) = await ledger.store.query("SELECT COUNT(*) FROM usage")
        await ledger.close()
        await store.close()
    return {"rows": rows, "written": written, "record_us": round(recorded_ns / rows / 1e3, 2),
            "writer_rows_per_s": round(rows / (flushed_ns / 1e9)),
            "flush_ms_per_batch": round(flushed_ns / (rows / FLUSH_AT_ROWS) / 1e6, 2)}


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=2000,
                        help="per-request part: requests per route, interleaved")
    parser.add_argument("--concurrency", type=int, default=32, help="throughput part")
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput part")
    parser.add_argument("--ledger-rows", type=int, default=100_000, help="in-process part")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    print(f"before: {load_note()}")
    password = secrets.token_urlsafe(16)
    upstream_port, hub_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        upstream = start_upstream(upstream_port)
        hub = start_bench_hub(hub_port, data_dir, password)
        try:
            hub_url = f"http://127.0.0.1:{hub_port}"
            upstream_url = f"http://127.0.0.1:{upstream_port}"

            async def run() -> tuple[list[dict[str, object]], dict[str, list[float]],
                                     dict[str, object]]:
                code = await setup(hub_url, upstream_url, password)
                async with aiohttp.ClientSession() as session:
                    token = await admin_token(session, hub_url, password)
                    cost_key = await make_key(session, hub_url, token, "bench-cost")
                    load_key = await make_key(session, hub_url, token, "bench-load")
                rows, paired = await per_request_cost(hub_url, upstream_url, code, cost_key,
                                                      args.cycles)
                load = await throughput(hub_url, hub.pid, code, load_key, token,
                                        args.concurrency, args.seconds)
                return rows, paired, load

            rows, paired, load = asyncio.run(run())
        finally:
            for process in (hub, upstream):
                process.terminate()
                process.wait(timeout=10)
    micro = asyncio.run(ledger_microbench(args.ledger_rows))
    print_table(rows, ROUTE_NOTES)
    print()
    within = print_costs(rows, paired)
    print(f"\nthroughput, room route with a key, c={load['concurrency']} for {load['seconds']} s:"
          f" {load['requests_per_s']} requests/s, hub CPU {load['cpu_us_per_request']} us per"
          f" request (accounting off in the slices between: {load['off_requests_per_s']}"
          f" requests/s, {load['off_cpu_us_per_request']} us); {load['answered']} answered,"
          f" {load['errors']} errors; ledger rows {load['ledger_rows']}; largest pending buffer"
          f" {load['largest_pending']} rows; {load['batches']} writer batches;"
          f" {load['dropped']} dropped")
    print(f"ledger in process: record() {micro['record_us']} us per row; writer"
          f" {micro['writer_rows_per_s']} rows/s ({micro['flush_ms_per_batch']} ms per"
          f" {FLUSH_AT_ROWS}-row batch); {micro['written']} of {micro['rows']} rows written")
    print(f"after: {load_note()}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "throughput": load, "ledger": micro},
                                        indent=2))
    lost = load["ledger_rows"] != load["answered"] or micro["written"] != micro["rows"]
    if lost:
        print("ledger rows differ from the requests answered")
    if any(row["errors"] for row in rows) or load["errors"] or lost:
        sys.exit(1)
    if not within:
        print("over budget in this run (see the noise note in README)")


if __name__ == "__main__":
    main()
