"""The room's SSE stream: event order, payloads, room scoping, heartbeats and shutdown."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig
from tests.conftest import Api, HubFactory
from tests.sse_client import SseReader


async def test_events_arrive_in_order_with_their_payloads(
    make_hub: HubFactory, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    hub = await make_hub(HubConfig(health_check_interval_s=0.05, participant_timeout_s=0.3))
    api = Api(http, hub)
    room = await api.create_room("Watched")
    code = room["code"]
    async with http.get(f"{hub.url}/rooms/{code}/events") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        events = SseReader(response)
        name, data = await events.next_event()
        assert name == "connected" and data["clientId"]

        other = await api.create_room("Another")
        assert await events.next_event() == ("room:created", other)

        _, joined = await api.join(code, id="alice", endpoint=upstream.url)
        assert await events.next_event() == ("participant:joined", joined["participant"])

        status, _ = await api.call(
            "POST", f"/rooms/{code}/v1/chat/completions",
            {"model": "*", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert status == 200
        assert await events.next_event() == (
            "llm:request",
            {"participantId": "alice", "model": "*", "queueMs": 0, "inFlight": 1})
        name, complete = await events.next_event()
        assert name == "llm:complete"
        assert complete["participantId"] == "alice"
        metrics = complete["metrics"]
        assert metrics["tokens"] == 16
        assert 0 < metrics["latencyFirstTokenMs"] <= metrics["durationMs"]
        assert metrics["tokensPerSecond"] > 0

        # Silence: the sweep marks alice offline; a health call brings her back.
        assert await events.next_event() == ("participant:offline", {"participantId": "alice"})
        await api.call("POST", f"/rooms/{code}/health", {"id": "alice"})
        assert await events.next_event() == ("participant:online", {"participantId": "alice"})

        upstream.behaviour.error_status = 500
        await api.call("POST", f"/rooms/{code}/v1/chat/completions", {"model": "alice"})
        assert (await events.next_event())[0] == "llm:request"
        name, error = await events.next_event()
        assert name == "llm:error" and error["participantId"] == "alice"
        assert "500" in error["error"]

        await api.call("DELETE", f"/rooms/{code}/leave/alice")
        assert await events.next_event() == ("participant:left", {"participantId": "alice"})


async def test_streamed_completion_metrics_count_tokens(
    api: Api, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    code = room["code"]
    await api.join(code, id="alice", endpoint=upstream.url)
    upstream.behaviour.tokens = 5
    async with http.get(f"{api.hub.url}/rooms/{code}/events") as response:
        events = SseReader(response)
        await events.next_event()
        for stream_options in (None, {"include_usage": True}):
            payload = {"model": "*", "stream": True, "messages": [], "stream_options":
                       stream_options}
            async with http.post(f"{api.hub.url}/rooms/{code}/v1/chat/completions",
                                 json=payload) as r:
                await r.read()
            _, complete = (await events.events_until("llm:complete"))[-1]
            # From usage when reported, else from the content deltas.
            assert complete["metrics"]["tokens"] == 5


async def test_events_are_scoped_to_their_room(
    api: Api, http: aiohttp.ClientSession
) -> None:
    mine = await api.create_room("Mine")
    theirs = await api.create_room("Theirs")
    async with http.get(f"{api.hub.url}/rooms/{mine['code']}/events") as response:
        events = SseReader(response)
        await events.next_event()
        await api.join(theirs["code"], id="stranger")
        await api.join(mine["code"], id="friend")
        name, data = await events.next_event()
        assert (name, data["id"]) == ("participant:joined", "friend")


async def test_idle_stream_gets_comment_heartbeats(
    make_hub: HubFactory, http: aiohttp.ClientSession
) -> None:
    hub = await make_hub(HubConfig(sse_heartbeat_s=0.1))
    api = Api(http, hub)
    room = await api.create_room()
    async with http.get(f"{hub.url}/rooms/{room['code']}/events") as response:
        await SseReader(response).next_event()
        deadline = time.monotonic() + 3
        lines: list[bytes] = []
        while b": heartbeat\n" not in lines:
            assert time.monotonic() < deadline
            lines.append(await asyncio.wait_for(response.content.readline(), 1))


async def test_hub_shutdown_ends_open_streams_promptly(
    make_hub: HubFactory, http: aiohttp.ClientSession
) -> None:
    hub = await make_hub()
    api = Api(http, hub)
    room = await api.create_room()
    async with http.get(f"{hub.url}/rooms/{room['code']}/events") as response:
        await SseReader(response).next_event()
        started = time.monotonic()
        await hub.stop()
        assert time.monotonic() - started < 2
        assert await asyncio.wait_for(response.content.read(), 2) == b""


async def test_slow_listener_is_dropped_not_buffered_forever(
    make_hub: HubFactory, http: aiohttp.ClientSession
) -> None:
    from gambiarra_desktop.events import Event, EventType
    from gambiarra_desktop.hub.keys import BUS, STREAMS

    hub = await make_hub(HubConfig(sse_queue_size=5))
    api = Api(http, hub)
    room = await api.create_room()
    streams = hub.app[STREAMS]
    async with http.get(f"{hub.url}/rooms/{room['code']}/events") as response:
        await SseReader(response).next_event()
        assert streams.listener_count == 1
        for index in range(50):  # Published in one go: the queue overflows before a write.
            hub.app[BUS].publish(
                Event(EventType.LLM_REQUEST, room["code"], {"n": index}))
        deadline = time.monotonic() + 3
        while streams.listener_count:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
