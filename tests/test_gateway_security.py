"""Attacks on the gateway (issue 10) that once worked, one test each.

Each test plays a hostile party against a real hub on 127.0.0.1: a LAN client (many
source addresses: every 127.x.y.z is loopback on Linux), a participant whose model server
answers with hostile JSON, a provider that echoes the API key it was sent.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gambiarra_desktop.hub import HubServer
from tests.conftest import Api, HubFactory

ADMIN_PASSWORD = "a long admin password"  # noqa: S105 - the test hub's own.
SECRET_KEY = "sk-test-0123456789abcdefSECRET"  # noqa: S105 - a fake key for a fake provider.

Handler = Callable[[web.Request], Any]


class FakeServer:
    """A model server on 127.0.0.1 whose chat answer the test writes."""

    def __init__(self, chat: Handler) -> None:
        self._chat = chat
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    async def __aenter__(self) -> FakeServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def admin_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return await make_hub()


async def _token(http: aiohttp.ClientSession, hub: HubServer) -> str:
    async with http.post(f"{hub.url}/v1/auth/login",
                         json={"username": "admin", "password": ADMIN_PASSWORD}) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["token"])


async def _add_model(http: aiohttp.ClientSession, hub: HubServer, entry: dict[str, Any]) -> None:
    token = await _token(http, hub)
    async with http.post(f"{hub.url}/v1/models", json=entry,
                         headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 201, await response.text()


def _answer(content: str, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}], **extra}


# --- a hostile participant --------------------------------------------------------------

PADDING_CONTAINERS = 1_000_000
"""Empty JSON objects in the hostile answer: 3 MB on the wire, about 70 MB once parsed."""


async def test_a_participant_cannot_make_the_gateway_parse_a_memory_bomb(
    http: aiohttp.ClientSession, admin_hub: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hole: the gateway parsed every whole answer (to check it is not empty and to name
    its model), so a participant's 30 MB of ``{}`` became 720 MB of Python objects and
    stalled the hub's loop for 1.5 s, per request; the room proxy passes the same bytes on
    as they are. Now an answer with too many JSON containers is not parsed."""
    hub = admin_hub
    padding = b"[" + b",".join([b"{}"] * PADDING_CONTAINERS) + b"]"
    answer = json.dumps(_answer("hello")).encode()[:-1] + b', "pad": ' + padding + b"}"

    async def chat(_request: web.Request) -> web.Response:
        return web.Response(body=answer, content_type="application/json")

    async with FakeServer(chat) as hostile:
        api = Api(http, hub)
        code = (await api.create_room("Open"))["code"]
        status, body = await api.join(code, model="bomb", endpoint=hostile.url)
        assert status in (200, 201), body
        await _add_model(http, hub, {"id": "bomb-entry", "provider": "gambiarra",
                                     "apiModelName": "bomb", "layer": "L0", "room": code})
        tracemalloc.start()
        try:
            async with http.post(f"{hub.url}/v1/chat/completions",
                                 json={"model": "bomb-entry", "messages": [
                                     {"role": "user", "content": "hi"}]}) as response:
                received = await response.read()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status == 200
    assert len(received) >= len(padding)  # The answer still reaches the client.
    # The raw answer is held a few times over (upstream buffer, reply, client): ~3 MB
    # each. Parsed, it took ~70 MB.
    assert peak < 12 * len(answer), f"peak {peak / 1e6:.0f} MB for {len(answer) / 1e6:.0f} MB"
