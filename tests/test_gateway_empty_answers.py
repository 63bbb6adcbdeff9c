"""An empty answer is a failure before the first byte: ``auto`` asks the next model,
streamed or not, and the client never sees the empty one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubServer
from tests.conftest import Api


class EmptyModel:
    """A model server that answers every chat with nothing: a role-only stream, or a
    message whose content is empty."""

    def __init__(self) -> None:
        self.calls = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = await request.json()
        base = {"id": "chatcmpl-empty", "created": 1, "model": body["model"]}
        if body.get("stream"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            role = {**base, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""},
                 "finish_reason": None}]}
            await response.write(f"data: {json.dumps(role)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        return web.json_response({**base, "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": ""},
             "finish_reason": "stop"}]})

    async def __aenter__(self) -> EmptyModel:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def empty_model() -> AsyncIterator[EmptyModel]:
    async with EmptyModel() as model:
        yield model


async def _admin(http: aiohttp.ClientSession, hub: HubServer) -> dict[str, str]:
    password = (hub.data_dir / "admin-password").read_text().strip()
    async with http.post(f"{hub.url}/v1/auth/login",
                         json={"username": "admin", "password": password}) as response:
        return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def _two_layers(http: aiohttp.ClientSession, hub: HubServer, api: Api,
                      empty_url: str, good_url: str) -> None:
    headers = await _admin(http, hub)
    for layer, model, url in (("L0", "empty-model", empty_url), ("L1", "good-model", good_url)):
        code = (await api.create_room(layer))["code"]
        status, _ = await api.call("POST", f"/rooms/{code}/join", {
            "id": f"p-{layer}", "nickname": layer, "model": model, "endpoint": url})
        assert status == 201
        entry: dict[str, Any] = {"id": f"room-{layer}", "provider": "gambiarra",
                                 "apiModelName": model, "layer": layer, "room": code}
        async with http.post(f"{hub.url}/v1/models", json=entry, headers=headers) as r:
            assert r.status == 201, await r.text()


@pytest.mark.parametrize("stream", [False, True])
async def test_an_empty_answer_moves_on_to_the_next_layer(
    http: aiohttp.ClientSession, hub: HubServer, api: Api, empty_model: EmptyModel,
    stream: bool,
) -> None:
    async with FakeOpenAIServer(models=("good-model",)) as good:
        await _two_layers(http, hub, api, empty_model.url, good.url)
        request = {"model": "auto", "stream": stream,
                   "messages": [{"role": "user", "content": "hello"}]}
        async with http.post(f"{hub.url}/v1/chat/completions", json=request) as response:
            text = await response.text()
            assert response.status == 200, text
            assert response.headers["X-Gambiarra-Model"] == "room-L1"
            assert response.headers["X-Gambiarra-Layer"] == "L1"
    assert empty_model.calls == 1  # Asked first, and its empty answer never reached us.
    assert "tok0" in text
    if stream:
        assert text.count("[DONE]") == 1
        assert '"content":""' not in text  # Not one byte of the empty stream went out.
