"""What the hub's events cost a proxied request, by who listens.

A real hub (``HubServer`` on 127.0.0.1, port 0) runs in this process; each "request" does
what the proxy does for events (``llm:request`` when a slot is taken, ``llm:complete``
with its metrics and participant snapshot when done, each behind the registry's interest
check) and yields to the loop between them, as a real request waiting on its upstream
does, so an SSE listener's pump runs and writes. CPU is this process's own
(``time.process_time``); the SSE client reading the stream is a child process, so its
reading is not counted. Printed: µs of hub CPU per request and per event, and what each
listener setup adds over nobody listening.

Run: ``.venv/bin/python bench/event_interest_bench.py [--requests N] [--runs R]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from gambiarra_desktop.discovery.announcement import HubAnnouncement
from gambiarra_desktop.discovery.publisher import HubPublisher
from gambiarra_desktop.events import EventType
from gambiarra_desktop.hub import HubConfig, HubServer
from gambiarra_desktop.hub.keys import BUS, STREAMS
from gambiarra_desktop.hub.proxy.stats import ParticipantStats
from gambiarra_desktop.hub.rooms.lifecycle import RoomRegistry
from gambiarra_desktop.hub.rooms.room import Room

READER = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.sendall(f"GET /rooms/{sys.argv[2]}/events HTTP/1.1\\r\\nHost: hub\\r\\n\\r\\n".encode())
while sock.recv(1 << 16):
    pass
"""
"""The SSE listener: reads and drops everything until the hub closes the stream."""

EVENTS_PER_REQUEST = 2


def listens(registry: RoomRegistry, event_type: EventType) -> bool:
    """The proxy's check before it builds an event's data."""
    return registry.listens(event_type)


async def one_request(registry: RoomRegistry, room: Room, stats: ParticipantStats) -> None:
    if listens(registry, EventType.LLM_REQUEST):
        registry.publish(EventType.LLM_REQUEST, room,
                         {"participantId": "alice", "model": "*", "queueMs": 0, "inFlight": 1,
                          "requestId": "req-1"})
    await asyncio.sleep(0)  # The upstream answering: the loop runs other work meanwhile.
    await asyncio.sleep(0)
    if listens(registry, EventType.LLM_COMPLETE):
        registry.publish(EventType.LLM_COMPLETE, room,
                         {"participantId": "alice", "model": "m",
                          "metrics": {"tokens": 16, "durationMs": 3, "latencyFirstTokenMs": 1,
                                      "tokensPerSecond": 5000.0, "queueMs": 0},
                          "participant": stats.snapshot()})
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def cpu_per_request(registry: RoomRegistry, room: Room, requests: int) -> float:
    stats = ParticipantStats()
    for _ in range(200):  # Warm up.
        await one_request(registry, room, stats)
    started = time.process_time()
    for _ in range(requests):
        await one_request(registry, room, stats)
    return (time.process_time() - started) / requests * 1e6


async def open_listener(hub: HubServer, room_code: str) -> asyncio.subprocess.Process:
    streams = hub.app[STREAMS]
    before = streams.listener_count
    reader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", READER, str(hub.port), room_code)
    deadline = time.monotonic() + 10
    while streams.listener_count == before:
        if time.monotonic() > deadline or reader.returncode is not None:
            raise RuntimeError("the SSE listener did not connect")
        await asyncio.sleep(0.01)
    return reader


async def main(requests: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        hub = HubServer(Path(data_dir), config=HubConfig())
        await hub.start()
        try:
            registry = hub.registry
            watched = (await registry.create("Watched", None)).room
            other = (await registry.create("Other", None)).room
            readers: list[asyncio.subprocess.Process] = []
            publisher = HubPublisher(HubAnnouncement("bench", "Bench", hub.port, ("127.0.0.1",)))

            async def nobody() -> None:
                return None

            async def mdns() -> None:
                publisher.follow_rooms(hub.app[BUS], lambda: len(registry))

            async def listener_other_room() -> None:
                await publisher.stop()  # Never published: this only unsubscribes.
                readers.append(await open_listener(hub, other.code))

            async def listener_same_room() -> None:
                readers[-1].kill()
                await readers[-1].wait()
                await wait_until(lambda: hub.app[STREAMS].listener_count == 0)
                readers.append(await open_listener(hub, watched.code))

            setups: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                ("nobody listens", nobody),
                ("mDNS publisher (room:created only)", mdns),
                ("1 SSE listener, another room", listener_other_room),
                ("1 SSE listener, this room", listener_same_room),
            ]
            base = 0.0
            print(f"{requests} requests x {runs} runs, {EVENTS_PER_REQUEST} events per request;"
                  " hub CPU, median of runs")
            for label, setup in setups:
                await setup()
                samples = [await cpu_per_request(registry, watched, requests)
                           for _ in range(runs)]
                per_request = statistics.median(samples)
                if label == "nobody listens":
                    base = per_request
                print(f"  {label:<38} {per_request:7.2f} µs/request"
                      f" ({per_request / EVENTS_PER_REQUEST:6.2f} µs/event)"
                      f"  adds {per_request - base:+7.2f} µs/request")
            for reader in readers:
                if reader.returncode is None:
                    reader.kill()
                    await reader.wait()
        finally:
            await hub.stop()


async def wait_until(condition: Callable[[], bool], within_s: float = 10) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        await asyncio.sleep(0.01)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.runs))
