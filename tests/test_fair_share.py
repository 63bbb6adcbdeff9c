"""Fair share measured from the clients' side: one participant that takes one request at a
time, a person with a batch of 20 and a person with one. The second person waits for at
most one of the batch's requests, not for the whole batch (issue 11). People differ by
client address here: the test binds its two clients to 127.0.0.1 and 127.0.0.2."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from tests.conftest import Api

BATCH = 20


async def test_one_request_waits_for_at_most_one_of_a_batch(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    code = room["code"]
    status, body = await api.join(code, id="solo", endpoint=upstream.url,
                                  config={"maxConcurrent": 1})
    assert status in (200, 201), body
    upstream.behaviour.first_token_delay_s = 0.15  # 150 ms per answer.
    url = f"{api.hub.url}/rooms/{code}/v1/chat/completions"
    completed: list[str] = []
    timeout = aiohttp.ClientTimeout(total=60)

    async def ask(session: aiohttp.ClientSession, who: str) -> int:
        payload = {"model": "*", "messages": [{"role": "user", "content": who}]}
        async with session.post(url, json=payload) as response:
            await response.read()
            completed.append(who)
            return response.status

    async def queued() -> int:
        _, listing = await api.call("GET", f"/rooms/{code}/participants")
        return int(listing["queue"]["waiting"])

    batch_client = aiohttp.TCPConnector(local_addr=("127.0.0.1", 0), limit=0)
    single_client = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=batch_client, timeout=timeout) as a_session, \
            aiohttp.ClientSession(connector=single_client, timeout=timeout) as b_session:
        batch = [asyncio.ensure_future(ask(a_session, "A")) for _ in range(BATCH)]
        deadline = time.monotonic() + 10
        while await queued() + len(completed) < BATCH - 1:  # One runs, the rest wait.
            assert time.monotonic() < deadline, "the batch never reached the queue"
            await asyncio.sleep(0.01)
        sent_after = len(completed)
        assert await queued() >= BATCH // 2  # B does arrive behind a long queue of A's.
        assert await ask(b_session, "B") == 200
        statuses = await asyncio.gather(*batch)
    assert statuses == [200] * BATCH
    assert len(completed) == BATCH + 1
    # B waited for the A request running when it came, not for the ones queued before it.
    a_before_b = completed.index("B") - sent_after
    assert a_before_b <= 1, completed
    assert upstream.max_in_flight == 1
