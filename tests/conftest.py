"""Shared fixtures: real hubs on 127.0.0.1 port 0, real fake model servers, real clients."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig, HubServer

if TYPE_CHECKING:
    from playwright.async_api import Browser

HubFactory = Callable[..., Awaitable[HubServer]]
pytest_plugins = ["tests.agent_kit"]  # make_agent: an agent API on a scripted fake model.


async def eventually(predicate: Callable[[], object], within_s: float = 5.0) -> None:
    """Poll until ``predicate()`` holds (never ``qtbot.waitUntil`` on qasync: it hangs)."""
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


PROVIDER_ENVIRONMENT = tuple(
    f"{prefix}_{suffix}" for prefix in ("OPENAI", "OPENROUTER", "ANTHROPIC", "OSS_LOCAL")
    for suffix in ("API_KEY", "BASE_URL")) + ("GAMBIARRA_ADMIN_PASSWORD",)


@pytest.fixture(autouse=True)
def _no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hubs in tests never see the developer's or CI's provider keys: the gateway would
    probe real cloud APIs with them. Tests that want a provider set these themselves."""
    for name in PROVIDER_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def make_hub(tmp_path: Path) -> AsyncIterator[HubFactory]:
    """Start hubs with a given config; all are stopped at the end of the test."""
    started: list[HubServer] = []

    async def start(config: HubConfig | None = None, data_dir: Path | None = None) -> HubServer:
        server = HubServer(data_dir or tmp_path / "hub-data", config=config)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.stop()


@pytest.fixture
async def hub(make_hub: HubFactory) -> HubServer:
    return await make_hub()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(models=("llama3.2:3b",)) as server:
        yield server


class Api:
    """A thin test client of one hub, returning (status, json) pairs."""

    def __init__(self, http: aiohttp.ClientSession, hub: HubServer) -> None:
        self.http = http
        self.hub = hub

    async def call(
        self, method: str, path: str, payload: Any = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {}
        if raw is not None:
            kwargs["data"] = raw
            kwargs["headers"] = {"Content-Type": "application/json"}
        elif payload is not None:
            kwargs["json"] = payload
        async with self.http.request(method, self.hub.url + path, **kwargs) as response:
            text = await response.text()
            if response.content_type != "application/json":
                return response.status, text
            return response.status, json.loads(text) if text else None

    async def create_room(self, name: str = "Lab", password: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": name}
        if password is not None:
            payload["password"] = password
        status, body = await self.call("POST", "/rooms", payload)
        assert status == 201, body
        room: dict[str, Any] = body["room"]
        return room

    async def join(self, code: str, **fields: Any) -> tuple[int, Any]:
        payload = {
            "id": "p1", "nickname": "Alice", "model": "llama3.2:3b",
            "endpoint": "http://127.0.0.1:9", **fields,
        }
        return await self.call("POST", f"/rooms/{code}/join", payload)


@pytest.fixture
def api(http: aiohttp.ClientSession, hub: HubServer) -> Api:
    return Api(http, hub)


@pytest.fixture
def served_hub(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``gambiarra serve`` in its own process on 127.0.0.1, port 0: its URL and process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gambiarra_desktop.cli", "serve", "--host", "127.0.0.1",
         "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    first_line = process.stdout.readline()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", first_line)
    assert match, first_line
    try:
        yield f"http://127.0.0.1:{match.group(1)}", process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium under Playwright (tests/browser.py), for the guests' web page."""
    from tests.browser import chromium

    async with chromium() as launched:
        yield launched
