"""The SSE streams cost a request nothing unless someone listens to its room: the bus is
asked only for what the open streams can receive, an event is encoded only when a stream
of its room is open, and a listener's pump writes what is queued in one write."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web

from gambiarra_desktop.events import Event, EventType
from gambiarra_desktop.hub import HubConfig, HubServer
from gambiarra_desktop.hub.api import sse
from gambiarra_desktop.hub.keys import BUS, STREAMS
from tests.conftest import Api, HubFactory
from tests.gateway_testkit import ADMIN_PASSWORD, login
from tests.sse_client import SseReader

LLM_TYPES = (EventType.LLM_QUEUED, EventType.LLM_REQUEST, EventType.LLM_COMPLETE,
             EventType.LLM_ERROR, EventType.QUEUE_CHANGED)


async def wait_for(condition: Callable[[], bool], within_s: float = 5) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def count_event_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every write of events to an SSE stream (a spy: it still writes)."""
    writes: list[int] = []
    write = web.StreamResponse.write

    async def counted(self: web.StreamResponse, data: bytes) -> None:
        if bytes(data[:7]) == b"event: ":
            writes.append(len(data))
        await write(self, data)

    monkeypatch.setattr(web.StreamResponse, "write", counted)
    return writes


async def test_many_events_in_one_tick_arrive_complete_in_order_in_few_writes(
    api: Api, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = count_event_writes(monkeypatch)
    room = await api.create_room()
    hub = api.hub
    async with http.get(f"{hub.url}/rooms/{room['code']}/events") as response:
        events = SseReader(response)
        assert (await events.next_event())[0] == "connected"
        writes.clear()
        for index in range(300):  # One loop tick: the pump runs after all of them.
            hub.app[BUS].publish(Event(EventType.LLM_REQUEST, room["code"],
                                       {"n": index, "text": "é✓" * (index % 7)}))
        received = [await events.next_event() for _ in range(300)]
    assert received == [("llm:request", {"n": index, "text": "é✓" * (index % 7)})
                        for index in range(300)]
    # ~20 KB in all: one write (a write per event before), never more than a batch each.
    assert len(writes) <= 2, writes
    assert max(writes) <= sse.WRITE_BATCH_BYTES


async def test_a_large_backlog_is_written_in_bounded_batches(
    api: Api, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = count_event_writes(monkeypatch)
    room = await api.create_room()
    hub = api.hub
    payload = "x" * 1000
    async with http.get(f"{hub.url}/rooms/{room['code']}/events") as response:
        events = SseReader(response)
        assert (await events.next_event())[0] == "connected"
        for index in range(500):  # ~0.5 MB, under the 1 MB queue bound.
            hub.app[BUS].publish(Event(EventType.LLM_REQUEST, room["code"],
                                       {"n": index, "pad": payload}))
        received = [(await events.next_event())[1]["n"] for _ in range(500)]
    assert received == list(range(500))
    assert 8 <= len(writes) <= 20, len(writes)  # Batches of ~64 KB, not 500 writes.
    assert all(size <= sse.WRITE_BATCH_BYTES for size in writes)


async def test_a_listener_of_one_room_causes_no_encoding_for_another(
    api: Api, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[str] = []
    real = sse.format_event

    def spy(name: str, data: object) -> bytes:
        encoded.append(name)
        return real(name, data)

    monkeypatch.setattr(sse, "format_event", spy)
    watched = await api.create_room("Watched")
    quiet = await api.create_room("Quiet")
    hub = api.hub
    async with http.get(f"{hub.url}/rooms/{watched['code']}/events") as response:
        events = SseReader(response)
        assert (await events.next_event())[0] == "connected"
        encoded.clear()
        await api.join(quiet["code"], id="stranger")  # A real event of the other room.
        for index in range(20):
            hub.app[BUS].publish(Event(EventType.LLM_COMPLETE, quiet["code"], {"n": index}))
        assert encoded == []
        await api.join(watched["code"], id="friend")
        name, data = await events.next_event()
        assert (name, data["id"]) == ("participant:joined", "friend")
        assert encoded == ["participant:joined"]


async def test_the_bus_is_asked_only_for_what_open_streams_can_receive(
    make_hub: HubFactory, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    hub: HubServer = await make_hub()
    api = Api(http, hub)
    bus = hub.app[BUS]
    room = await api.create_room()
    assert not any(bus.wants(event_type) for event_type in EventType)
    admin = await login(http, hub)
    async with http.get(f"{hub.url}/v1/events", headers=admin) as admin_stream:
        assert (await SseReader(admin_stream).next_event())[0] == "connected"
        # The admin's stream carries the hub's own and hub-wide events, never a room's.
        assert bus.wants(EventType.COST_ALERT) and bus.wants(EventType.ROOM_CREATED)
        assert not any(bus.wants(event_type) for event_type in LLM_TYPES)
        async with http.get(f"{hub.url}/rooms/{room['code']}/events") as room_stream:
            assert (await SseReader(room_stream).next_event())[0] == "connected"
            assert all(bus.wants(event_type) for event_type in EventType)
        await wait_for(lambda: hub.app[STREAMS].listener_count == 1)
        assert not any(bus.wants(event_type) for event_type in LLM_TYPES)
    await wait_for(lambda: hub.app[STREAMS].listener_count == 0)
    assert not any(bus.wants(event_type) for event_type in EventType)


async def test_events_flowing_keep_heartbeats_away_and_silence_brings_them(
    make_hub: HubFactory, http: aiohttp.ClientSession
) -> None:
    hub = await make_hub(HubConfig(sse_heartbeat_s=0.2))
    api = Api(http, hub)
    room = await api.create_room()
    async with http.get(f"{hub.url}/rooms/{room['code']}/events") as response:
        events = SseReader(response)
        assert (await events.next_event())[0] == "connected"
        for index in range(12):  # 0.6 s of events, 0.05 s apart: never 0.2 s of silence.
            hub.app[BUS].publish(Event(EventType.LLM_REQUEST, room["code"], {"n": index}))
            assert (await events.next_event())[1] == {"n": index}
            await asyncio.sleep(0.05)
        assert events.comments == []
        # Then silence: a heartbeat comes, and the stream still carries events after it.
        deadline = time.monotonic() + 3
        lines: list[bytes] = []
        while b": heartbeat\n" not in lines:
            assert time.monotonic() < deadline
            lines.append(await asyncio.wait_for(response.content.readline(), 1))
        hub.app[BUS].publish(Event(EventType.LLM_REQUEST, room["code"], {"n": "after"}))
        assert (await events.next_event())[1] == {"n": "after"}
