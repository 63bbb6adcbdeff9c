"""A room on a real hub for the chat front end's tests: one participant, and chats as raw
request bytes (``tests.raw_http``), set up on connections that are closed again so the
connections a test counts are its own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig, HubServer
from gambiarra_desktop.hub.api.connections import GuardedServer
from gambiarra_desktop.hub.keys import PROXY
from tests.conftest import Api, HubFactory, eventually
from tests.raw_http import request_bytes

JSON_TYPE = [("Content-Type", "application/json")]


@dataclass
class Room:
    hub: HubServer
    code: str
    model: FakeOpenAIServer

    @property
    def path(self) -> str:
        return f"/rooms/{self.code}/v1/chat/completions"

    def chat(self, stream: bool = False, content: str = "hi") -> bytes:
        body: dict[str, object] = {"model": "*",
                                   "messages": [{"role": "user", "content": content}]}
        if stream:
            body["stream"] = True
        return request_bytes("POST", self.path, json.dumps(body).encode(), JSON_TYPE)

    @property
    def server(self) -> GuardedServer:
        return server_of(self.hub)


def server_of(hub: HubServer) -> GuardedServer:
    runner = hub._runner
    assert runner is not None and isinstance(runner.server, GuardedServer)
    return runner.server


async def open_room(make_hub: HubFactory, model: FakeOpenAIServer,
                    config: HubConfig | None = None) -> Room:
    hub = await make_hub(config)
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        api = Api(http, hub)
        code = str((await api.create_room())["code"])
        status, _ = await api.join(code, id="p1", endpoint=model.url)
    assert status == 201
    await eventually(lambda: server_of(hub).gate.open_count == 0, 3.0)
    return Room(hub, code, model)


def count_no_task_starts(hub: HubServer) -> list[int]:
    """How many chats the proxy began with no task (one per ``serve_now`` that started)."""
    proxy = hub.app[PROXY]
    counter = [0]
    original = proxy.serve_now

    def serve_now(*args: Any, **kwargs: Any) -> Any:
        started = original(*args, **kwargs)
        counter[0] += started is not None
        return started

    proxy.serve_now = serve_now  # type: ignore[method-assign]
    return counter


async def join_second(room: Room, model: FakeOpenAIServer) -> None:
    """A second participant, ``p2`` ("Bob"), serving the same model name from ``model``."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        status, _ = await Api(http, room.hub).join(room.code, id="p2", nickname="Bob",
                                                  endpoint=model.url)
    assert status == 201
