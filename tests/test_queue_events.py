"""Issue 14, queue visibility: a client that names its request (``X-Request-Id``) finds its
own place in the room's queue in the events, and every event says how busy a participant
is. A real hub, a slow fake model server with one slot, and a real SSE reader."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.proxy.scheduler import Scheduler
from gambiarra_desktop.hub.proxy.stats import StatsBook
from tests.conftest import Api, HubFactory
from tests.sse_client import SseReader
from tests.test_scheduler_fairness import ROOM, Queue, participant


async def _chat(http: aiohttp.ClientSession, url: str, request_id: str | None) -> int:
    headers = {"X-Request-Id": request_id} if request_id is not None else {}
    async with http.post(url, json={"model": "*", "messages": [{"role": "user",
                                                                 "content": "secret prompt"}]},
                         headers=headers) as response:
        await response.read()
        return response.status


async def _until_event(events: SseReader, name: str,
                       pred: Any = lambda data: True) -> dict[str, Any]:
    for _ in range(60):
        event, data = await events.next_event()
        assert "secret prompt" not in str(data)  # Queue events never carry prompts.
        if event == name and pred(data):
            return dict(data)
    raise AssertionError(f"no {name} event")


async def test_a_named_request_sees_its_place_and_leaves_the_queue(
    make_hub: HubFactory, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    # Given a room whose only participant takes one request at a time, slowly
    hub = await make_hub(HubConfig(queue_max_wait_s=20))
    api = Api(http, hub)
    code = (await api.create_room())["code"]
    await api.join(code, id="solo", endpoint=upstream.url, config={"maxConcurrent": 1})
    upstream.behaviour.first_token_delay_s = 0.6
    url = f"{hub.url}/rooms/{code}/v1/chat/completions"
    async with http.get(f"{hub.url}/rooms/{code}/events") as response:
        events = SseReader(response)
        await events.next_event()
        # When one request runs and two named ones (one with a bad id) queue behind it
        first = asyncio.ensure_future(_chat(http, url, None))
        running = await _until_event(events, "llm:request")
        assert running["inFlight"] == 1 and "requestId" not in running
        second = asyncio.ensure_future(_chat(http, url, "req-b"))
        queued = await _until_event(events, "llm:queued")
        assert queued == {"position": 1, "requestId": "req-b"}
        changed = await _until_event(events, "queue:changed")
        assert changed == {"waiting": 1, "positions": {"req-b": 1}}
        third = asyncio.ensure_future(_chat(http, url, "bad id!"))
        queued = await _until_event(events, "llm:queued")
        assert queued == {"position": 2}  # A malformed id is ignored, not refused.
        fourth = asyncio.ensure_future(_chat(http, url, "req-d"))
        changed = await _until_event(events, "queue:changed",
                                     lambda d: "req-d" in d["positions"])
        assert changed == {"waiting": 3, "positions": {"req-b": 1, "req-d": 3}}
        # Then the first answer frees the slot: req-b leaves the queue, req-d moves up
        changed = await _until_event(events, "queue:changed")
        assert changed == {"waiting": 2, "positions": {"req-d": 2}}
        served = await _until_event(events, "llm:request")
        assert served["requestId"] == "req-b"
        assert served["inFlight"] == 1 and served["queueMs"] > 0
        assert await asyncio.gather(first, second, third, fourth) == [200] * 4


async def test_places_follow_the_fair_rotation_not_arrival() -> None:
    # Given one slot, busy, and Ann queues three requests before Bob queues one
    stats = StatsBook()
    stats.get(ROOM, "p").capacity.configure(1, "declared")
    changes: list[str] = []
    sched = Scheduler(stats, 64, 5.0, lambda _room, _position, _id: None, changes.append)
    queue = Queue(sched, participant("p"))
    await queue.add("ann")

    async def named(person: str, request_id: str) -> None:
        lease = await sched.acquire(ROOM, lambda: [participant("p")], person=person,
                                    request_id=request_id)
        queue.served.append((person, lease))

    tasks = []
    for request_id in ("a1", "a2", "a3"):
        tasks.append(asyncio.ensure_future(named("ann", request_id)))
        await asyncio.sleep(0)
    tasks.append(asyncio.ensure_future(named("bob", "b1")))
    await asyncio.sleep(0)
    # Then Bob is first in line (Ann's running request was her turn), not fourth
    assert sched.positions(ROOM) == {"b1": 1, "a1": 2, "a2": 3, "a3": 4}
    assert len(changes) == 4  # One change per arrival.
    # And the order is the order they are served in
    order = [await queue.release_next() for _ in range(4)]
    assert order == ["bob", "ann", "ann", "ann"]
    assert sched.positions(ROOM) == {}
    for _, lease in queue.served:
        lease.release()
    await asyncio.gather(*tasks, *queue.tasks)
