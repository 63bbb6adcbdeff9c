"""Issue 14 review: problems found in the issue's own changes, each with the test that
showed it. Real servers on 127.0.0.1 (port 0) throughout; a fake ``nvidia-smi`` is a real
executable put first on ``PATH``.

- The Playground's stream (room_chat.py) put the library's text in front of the user
  ("Cannot connect to host … ssl:default [Connect call failed …]", "Expecting value: line 1
  column 1 (char 0)"): the plain sentences of plain_errors.py were used by the hub
  client's own streams but not by this newer one.
- The model-server check that runs before every health call read the whole reply with no
  size bound.
- "Off" while the share switch read the machine's specs cancelled the read, but left the
  ``nvidia-smi`` child running (a hung driver keeps it forever).
- A room feed line longer than aiohttp's line buffer raised a bare ValueError out of
  ``HubClient.events``: the feed task died and the room kept looking live.
- A chosen mDNS interface that lost its address made the app browse on every interface.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import psutil
import pytest
from aiohttp import web

from gambiarra_desktop.discovery.browser import HubBrowser
from gambiarra_desktop.discovery.hosting import publish_hub
from gambiarra_desktop.hub_client import HubApiError, HubUnreachableError
from gambiarra_desktop.room_chat import ReplyStats, stream_reply
from gambiarra_desktop.room_feed import FeedState, RoomFeed
from gambiarra_desktop.share.local_servers import ModelServerError, list_models
from gambiarra_desktop.share.specs import nvidia_gpu
from tests.conftest import HubFactory
from tests.test_plain_errors_clients import assert_plain, closed_port, serve


async def eventually(predicate: Callable[[], object], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def reply_failure(url: str) -> HubApiError | HubUnreachableError:
    async with aiohttp.ClientSession() as session:
        with pytest.raises((HubApiError, HubUnreachableError)) as caught:
            async for _ in stream_reply(session, url, "ABC123", "", "m",
                                        [{"role": "user", "content": "hi"}], "pg-1",
                                        ReplyStats()):
                pass
    return caught.value


@pytest.fixture
async def garbage_stream() -> AsyncIterator[str]:
    """Answers 200 with an event stream whose data is not JSON (a proxy's page)."""
    async def page(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: <html>login</html>\n\n")
        return response

    runner, url = await serve(lambda app: app.router.add_route("*", "/{tail:.*}", page))
    yield url
    await runner.cleanup()


async def test_the_playgrounds_stream_says_a_closed_port_in_plain_words() -> None:
    port = closed_port()
    failure = await reply_failure(f"http://127.0.0.1:{port}")
    assert isinstance(failure, HubUnreachableError)
    assert str(failure).startswith(f"Cannot reach 127.0.0.1:{port}: nothing answers there.")
    assert_plain(str(failure))


async def test_the_playgrounds_stream_never_shows_a_json_parser_error(
        garbage_stream: str) -> None:
    failure = await reply_failure(garbage_stream)
    assert isinstance(failure, HubApiError)
    assert "Expecting value" not in str(failure)
    assert "not as a Gambiarra hub does" in str(failure)
    assert_plain(str(failure))


async def test_the_model_check_reads_a_bounded_reply() -> None:
    """A "model server" that streams 40 MB of JSON is refused, not read whole."""
    sent = 0

    async def huge(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"data": [')
        entry = b'{"id": "m"},' * 4096
        try:
            for _ in range(40 * 1024 * 1024 // len(entry)):
                await response.write(entry)
                sent += len(entry)
            await response.write(b'{"id": "m"}]}')
        except ConnectionError:
            pass
        return response

    runner, url = await serve(lambda app: app.router.add_route("GET", "/{tail:.*}", huge))
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(ModelServerError) as caught:
                await list_models(session, url, timeout_s=20)
    finally:
        await runner.cleanup()
    assert "not as a model server does" in str(caught.value)
    assert sent < 20 * 1024 * 1024, sent


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for nvidia-smi")
async def test_off_during_the_specs_read_ends_nvidia_smi(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    me = psutil.Process()

    def children() -> list[psutil.Process]:
        return [c for c in me.children(recursive=True) if c.is_running()
                and c.status() != psutil.STATUS_ZOMBIE]

    before = {c.pid for c in children()}
    probe = asyncio.ensure_future(nvidia_gpu(timeout_s=20))
    await eventually(lambda: {c.pid for c in children()} - before)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    await eventually(lambda: not ({c.pid for c in children()} - before), within_s=3)


async def test_a_feed_line_too_long_for_the_buffer_reconnects_instead_of_dying() -> None:
    """The room must not look live on a feed that died: it says reconnecting."""
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: connected\ndata: {}\n\n")
        await response.write(b'data: "' + b"x" * (1024 * 1024) + b'"\n\n')
        return response

    async def participants(_request: web.Request) -> web.Response:
        return web.json_response({"participants": []})

    def routes(app: web.Application) -> None:
        app.router.add_get("/rooms/ABC123/events", events)
        app.router.add_get("/rooms/ABC123/participants", participants)

    runner, url = await serve(routes)
    states: list[FeedState] = []
    feed = RoomFeed(url, "ABC123", lambda: "", lambda _n, _d: None,
                    lambda state, _detail: states.append(state))
    task = asyncio.ensure_future(feed.run())
    try:
        await eventually(lambda: FeedState.RECONNECTING in states or task.done())
        assert not task.done() or task.cancelled(), task.exception()
        assert FeedState.RECONNECTING in states
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()


async def test_a_browser_with_no_address_to_browse_on_browses_nowhere(
        make_hub: HubFactory) -> None:
    """A chosen interface that lost its address (cable out) gives ``[]``: that must mean
    "nowhere", not zeroconf's "every interface" (a café's Wi-Fi, a VPN)."""
    hub = await make_hub()
    async with HubBrowser(["127.0.0.1"]) as browser:
        publisher, _ = await publish_hub(hub, "Lab hub", "127.0.0.1", cooperating=True)
        try:
            await eventually(lambda: browser.hubs)
            dropped = await browser.move_to([], settle_s=0.3)
            assert browser.interfaces == []
            assert [h.name for h in dropped] == ["Lab hub"]
            await asyncio.sleep(0.5)
            assert browser.hubs == {}
            # And an address coming back makes it browse there again.
            await browser.move_to(["127.0.0.1"], settle_s=0.3)
            await eventually(lambda: browser.hubs)
        finally:
            await publisher.stop()


async def test_the_hub_client_reads_a_bounded_reply() -> None:
    """An address that answers a hub call with 64 MB (a download server, say) is said to
    be no hub, without being read whole into memory."""
    from gambiarra_desktop.hub_client import MAX_REPLY_BYTES, HubClient

    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        block = b" " * (1024 * 1024)
        try:
            for _ in range(64):
                await response.write(block)
                sent += len(block)
        except ConnectionError:
            pass
        return response

    runner, url = await serve(lambda app: app.router.add_route("GET", "/{tail:.*}", endless))
    try:
        async with HubClient(url, timeout_s=30) as hub:
            with pytest.raises(HubApiError) as caught:
                await hub.list_rooms()
    finally:
        await runner.cleanup()
    assert caught.value.status == 502
    assert_plain(caught.value.message)
    assert sent < MAX_REPLY_BYTES + 16 * 1024 * 1024, sent
