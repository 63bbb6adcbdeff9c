"""Request bodies are read within a deadline and within a hub-wide memory budget.

Raw sockets, because a real client library will not trickle a body or stall halfway: that
is exactly what a hostile client does (one byte every 2 s kept a request open for as long
as it liked; 60 clients stalled 9 MB into 10 MB bodies held 852 MB of the hub).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from gambiarra_desktop.hub import HubConfig, HubServer
from gambiarra_desktop.hub.api.body_budget import BODY_BUDGET
from tests.conftest import HubFactory, eventually

ROOM = b'{"name": "Lab"}'


def head(length: int | None, path: str = "/rooms") -> bytes:
    framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return (f"POST {path} HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
            f"{framing}\r\n\r\n").encode()


@contextlib.asynccontextmanager
async def connection(hub: HubServer) -> AsyncIterator[tuple[asyncio.StreamReader,
                                                            asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", hub.port)
    try:
        yield reader, writer
    finally:
        writer.transport.abort()


async def read_response(
    reader: asyncio.StreamReader, within_s: float = 5.0
) -> tuple[int, dict[str, str], Any]:
    async with asyncio.timeout(within_s):
        raw_head = await reader.readuntil(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:]
                                                         if line)}
        body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), headers, json.loads(body)


async def post(hub: HubServer, body: bytes) -> tuple[int, dict[str, str], Any]:
    async with connection(hub) as (reader, writer):
        writer.write(head(len(body)) + body)
        return await read_response(reader)


async def test_a_trickled_body_gets_408_within_the_deadline(make_hub: HubFactory) -> None:
    hub = await make_hub(HubConfig(body_read_timeout_s=0.5))
    body = ROOM.ljust(1000)
    async with connection(hub) as (reader, writer):
        writer.write(head(len(body)))
        started = time.monotonic()
        reply = asyncio.ensure_future(read_response(reader, within_s=5))
        for byte in body[:40]:  # One byte every 0.1 s: 4 s for these, were it not cut.
            if reply.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)
        status, _, payload = await reply
        elapsed = time.monotonic() - started
    assert status == 408
    assert payload == {"error": "Request body took too long (limit 0.5 s)"}
    assert 0.4 < elapsed < 2.0
    assert hub.app[BODY_BUDGET].in_use == 0  # Released when the read gave up.
    # A body that arrives in time is still fine.
    assert (await post(hub, ROOM))[0] == 201


async def test_bodies_past_the_hub_wide_budget_get_503(make_hub: HubFactory) -> None:
    hub = await make_hub(HubConfig(body_read_budget_bytes=100_000))
    budget = hub.app[BODY_BUDGET]
    stalled_body = ROOM.ljust(80_000)
    async with connection(hub) as (stalled_reader, stalled):
        stalled.write(head(len(stalled_body)) + stalled_body[:40_000])  # Half, then silence.
        await eventually(lambda: budget.in_use == 80_000)

        status, headers, payload = await post(hub, ROOM.ljust(50_000))
        assert status == 503
        assert payload == {"error": "The hub is busy reading other requests; try again later"}
        assert headers["retry-after"] == "2"
        # A chunked body has no declared length: it counts as the largest allowed body.
        async with connection(hub) as (reader, writer):
            writer.write(head(None) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(ROOM), ROOM))
            assert (await read_response(reader))[0] == 503
        # What still fits is read as usual.
        assert (await post(hub, ROOM.ljust(10_000)))[0] == 201

        stalled.write(stalled_body[40_000:])  # The stalled body completes: budget freed.
        assert (await read_response(stalled_reader))[0] == 201
    assert budget.in_use == 0
    assert (await post(hub, ROOM.ljust(50_000)))[0] == 201


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub(HubConfig(max_body_bytes=1_000_000))
    async with connection(hub) as (reader, writer):
        writer.write(head(5_000_000))  # Head only: the hub must not wait for 5 MB.
        status, _, payload = await read_response(reader, within_s=3)
    assert status == 413
    assert payload == {"error": "Request body too large (limit is 1000000 bytes)"}
    assert hub.app[BODY_BUDGET].in_use == 0
