"""What the gateway's black-box tests share: an admin hub, logging in, adding entries,
putting a model server in a room, and a tiny model server whose answers the test writes.

Everything is real HTTP on 127.0.0.1; nothing here reaches into the hub's objects."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from gambiarra_desktop.hub import HubServer
from tests.conftest import Api

ADMIN_PASSWORD = "a long test admin password"  # noqa: S105 - the test hubs' own.

Handler = Callable[[web.Request], Any]


async def login(http: aiohttp.ClientSession, hub: HubServer,
                password: str = ADMIN_PASSWORD) -> dict[str, str]:
    """The ``Authorization`` header of a fresh admin token."""
    async with http.post(f"{hub.url}/v1/auth/login",
                         json={"username": "admin", "password": password}) as response:
        assert response.status == 200, await response.text()
        return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def add_entry(http: aiohttp.ClientSession, hub: HubServer, entry: dict[str, Any],
                    auth: dict[str, str] | None = None) -> dict[str, Any]:
    auth = auth or await login(http, hub)
    async with http.post(f"{hub.url}/v1/models", json=entry, headers=auth) as response:
        assert response.status == 201, await response.text()
        stored: dict[str, Any] = await response.json()
        return stored


async def set_config(http: aiohttp.ClientSession, hub: HubServer, **changes: Any) -> None:
    async with http.put(f"{hub.url}/v1/config", json=changes,
                        headers=await login(http, hub)) as response:
        assert response.status == 200, await response.text()


async def room_entry(http: aiohttp.ClientSession, hub: HubServer, entry_id: str, layer: str,
                     model: str, endpoint: str, participant: str | None = None,
                     **fields: Any) -> str:
    """A room of its own with one participant serving ``model`` at ``endpoint``, and a
    gateway entry for it; returns the room code."""
    api = Api(http, hub)
    code = (await api.create_room(entry_id))["code"]
    status, body = await api.call("POST", f"/rooms/{code}/join", {
        "id": participant or f"p-{entry_id}", "nickname": entry_id, "model": model,
        "endpoint": endpoint})
    assert status == 201, body
    await add_entry(http, hub, {"id": entry_id, "provider": "gambiarra", "apiModelName": model,
                                "layer": layer, "room": code, **fields})
    return str(code)


def answer(content: str, model: str = "m") -> dict[str, Any]:
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": 1,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class ScriptedModel:
    """An OpenAI-compatible server on 127.0.0.1 answering every chat with :attr:`reply`
    (whole JSON; a streamed request gets it as two SSE chunks). It keeps every request
    body and its ``Authorization`` header."""

    def __init__(self, reply: str = "Paris.", chat: Handler | None = None) -> None:
        self.reply = reply
        self.status = 200
        self.models_status = 200
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self._chat_handler = chat
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _models(self, request: web.Request) -> web.Response:
        self.authorizations.append(request.headers.get("Authorization"))
        return web.json_response({"object": "list", "data": [
            {"id": "scripted", "object": "model", "created": 0, "owned_by": "test"}]},
            status=self.models_status)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.authorizations.append(request.headers.get("Authorization"))
        body = await request.json()
        self.requests.append(body)
        if self._chat_handler is not None:
            result: web.StreamResponse = await self._chat_handler(request)
            return result
        data = answer(self.reply, body.get("model", "m"))
        if self.status != 200 or not body.get("stream"):
            return web.json_response(data, status=self.status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {k: data[k] for k in ("id", "created", "model")}
        for delta, finish in (({"role": "assistant", "content": self.reply}, None), ({}, "stop")):
            chunk = {**base, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def __aenter__(self) -> ScriptedModel:
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
        await self.stop()

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
