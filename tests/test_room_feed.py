"""The room's live-events loop: it backs off, tells state changes only, and ends on a
refusal retrying cannot fix. Real hubs on 127.0.0.1, stopped and restarted on one port."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from gambiarra_desktop.backoff import Backoff
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub_client import HubClient
from gambiarra_desktop.room_feed import FeedState, RoomFeed
from tests.conftest import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_backoff_doubles_to_a_cap_with_jitter() -> None:
    backoff = Backoff(initial_s=1.0, cap_s=30.0, jitter=0.2)
    for attempt, base in enumerate([1, 2, 4, 8, 16, 30, 30, 30]):
        delays = [backoff.delay(attempt) for _ in range(50)]
        assert all(base * 0.8 - 1e-9 <= d <= min(30.0, base * 1.2) + 1e-9 for d in delays)
        assert len(set(delays)) > 1  # Jitter: windows that lost one hub do not knock together.
    assert backoff.delay(10_000) <= 30.0


async def test_a_hub_that_goes_away_and_comes_back_is_two_state_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    hub = HubServer(tmp_path / "hub", port=port)
    await hub.start()
    async with HubClient(hub.url) as client:
        code = (await client.create_room("Lab"))["room"]["code"]
    states: list[FeedState] = []
    events: list[str] = []
    resyncs: list[int] = []

    async def resync(client: HubClient) -> None:
        resyncs.append(len(await client.participants(code)))

    feed = RoomFeed(hub.url, code, lambda: "", lambda name, _data: events.append(name),
                    lambda state, _detail: states.append(state), resync,
                    Backoff(initial_s=0.2, cap_s=0.8, jitter=0.1))
    caplog.set_level(logging.INFO, logger="gambiarra_desktop.room_feed")
    task = asyncio.create_task(feed.run())
    try:
        await eventually(lambda: states == [FeedState.LIVE])
        await hub.stop()
        await eventually(lambda: states[-1] is FeedState.RECONNECTING)
        started = time.monotonic()
        await asyncio.sleep(2.5)
        tries_while_away = feed.tries
        # 0.2 + 0.4 + 0.8 + 0.8 s ... : about 5 tries in 2.5 s, never one per event-loop turn.
        assert tries_while_away <= 7, tries_while_away
        assert states == [FeedState.LIVE, FeedState.RECONNECTING]  # Not one per try.
        hub = HubServer(tmp_path / "hub", port=port)
        await hub.start()
        await eventually(lambda: states[-1] is FeedState.LIVE, within_s=5)
        assert states == [FeedState.LIVE, FeedState.RECONNECTING, FeedState.LIVE]
        assert resyncs == [0, 0]  # The room was re-read at each connection.
        assert time.monotonic() - started < 8
        lines = [r.getMessage() for r in caplog.records if r.name == "gambiarra_desktop.room_feed"]
        assert len(lines) == 3, lines  # Started, reconnecting, back: one line per change.
        assert "back" in lines[-1]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await hub.stop()


async def test_a_wrong_password_or_a_gone_room_ends_the_loop(hub: HubServer) -> None:
    async with HubClient(hub.url) as client:
        code = (await client.create_room("Secret", "right"))["room"]["code"]
    seen: list[tuple[FeedState, str]] = []

    def feed(room: str, password: str) -> RoomFeed:
        return RoomFeed(hub.url, room, lambda: password, lambda *_: None,
                        lambda state, detail: seen.append((state, detail)),
                        backoff=Backoff(initial_s=0.05, cap_s=0.1))

    assert await asyncio.wait_for(feed(code, "wrong").run(), 10) is FeedState.DENIED
    assert await asyncio.wait_for(feed("NOSUCH", "").run(), 10) is FeedState.GONE
    assert seen == [(FeedState.DENIED, "Invalid password"), (FeedState.GONE, "Room not found")]
    live: list[Any] = []
    right = RoomFeed(hub.url, code, lambda: "right", lambda *_: None,
                     lambda state, _detail: live.append(state))
    task = asyncio.create_task(right.run())
    await eventually(lambda: live == [FeedState.LIVE])
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
