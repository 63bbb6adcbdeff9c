"""Cloud providers through fake OpenAI-compatible servers on 127.0.0.1, named by the
``*_BASE_URL`` variables as a real deployment would: the key reaches the provider and
nobody else (no route, header, event or log line shows it, even when the provider echoes
it back), the admin can set and clear one, and health means "it answered"."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gambiarra_desktop.hub import HubConfig, HubServer
from tests.conftest import Api, HubFactory
from tests.gateway_testkit import ADMIN_PASSWORD, ScriptedModel, add_entry, answer, login

FAST_PROBES = HubConfig(gateway_probe_interval_s=0.2)
GPT = {"id": "gpt", "provider": "openai", "apiModelName": "gpt-4o", "layer": "L3"}


def new_key() -> str:
    return f"sk-test-{secrets.token_hex(16)}"


async def until(check: Any, within_s: float = 10.0) -> None:
    """Await ``check()`` until it is true; fail after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.1)


async def echo_chat(request: web.Request) -> web.StreamResponse:
    """A provider (or a debugging proxy) that quotes the ``Authorization`` it got, in its
    error, its answer, its headers and its stream."""
    sent = request.headers.get("Authorization", "")
    body = await request.json()
    echo = {"X-Echo-Authorization": sent}
    if "refuse" in str(body.get("messages")):
        return web.json_response(
            {"error": {"message": f"Incorrect API key provided: {sent.removeprefix('Bearer ')}",
                       "type": "invalid_request_error", "code": "invalid_api_key"}},
            status=401, headers=echo)
    if not body.get("stream"):
        return web.json_response(answer(f"you sent {sent}"), headers=echo)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **echo})
    await response.prepare(request)
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": f"you sent {sent}"},
                          "finish_reason": None}]}
    event = f"data: {json.dumps(chunk)}\n\n".encode()
    middle = event.index(sent.encode()) + 12
    for piece in (event[:middle], event[middle:]):  # The key split over two writes.
        await response.write(piece)
        await asyncio.sleep(0.05)
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


@pytest.fixture
async def provider() -> AsyncIterator[ScriptedModel]:
    async with ScriptedModel("Hello from the cloud.") as server:
        yield server


@pytest.fixture
def env_key(monkeypatch: pytest.MonkeyPatch, provider: ScriptedModel) -> str:
    """The environment of a headless hub, set before it starts."""
    key = new_key()
    monkeypatch.setenv("OPENAI_BASE_URL", f"{provider.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return key


async def openai_state(http: aiohttp.ClientSession, hub: HubServer) -> dict[str, Any]:
    async with http.get(f"{hub.url}/v1/providers", headers=await login(http, hub)) as response:
        assert response.status == 200
        listed = (await response.json())["providers"]
    [state] = [p for p in listed if p["id"] == "openai"]
    return dict(state)


async def test_the_provider_gets_the_environment_key_and_the_client_never_sends_one(
    http: aiohttp.ClientSession, make_hub: HubFactory, provider: ScriptedModel, env_key: str,
) -> None:
    hub = await make_hub(FAST_PROBES)
    await add_entry(http, hub, GPT)
    async with http.post(f"{hub.url}/v1/chat/completions",
                         headers={"Authorization": "Bearer the-clients-own-token"},
                         json={"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
                         ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
        assert response.headers["X-Gambiarra-Model"] == "gpt"
        assert response.headers["X-Gambiarra-Layer"] == "L3"
        assert "X-Gambiarra-Participant" not in response.headers  # Not a room model.
    assert body["choices"][0]["message"]["content"] == "Hello from the cloud."
    assert body["model"] == "gpt-4o" and provider.requests[-1]["model"] == "gpt-4o"
    assert provider.authorizations  # The probe and the chat.
    assert set(provider.authorizations) == {f"Bearer {env_key}"}
    state = await openai_state(http, hub)
    assert (state["hasKey"], state["keySource"], state["baseUrl"]) == (
        True, "env", f"{provider.url}/v1")


async def test_the_admin_sets_and_clears_a_key(
    http: aiohttp.ClientSession, make_hub: HubFactory, provider: ScriptedModel, env_key: str,
) -> None:
    hub = await make_hub(FAST_PROBES)
    await add_entry(http, hub, GPT)
    admin_key = new_key()
    auth = await login(http, hub)
    async with http.put(f"{hub.url}/v1/providers/openai", json={"apiKey": admin_key},
                        headers=auth) as response:
        text = await response.text()
        assert response.status == 200, text
        state = await response.json()
    assert admin_key not in text and env_key not in text
    assert (state["id"], state["hasKey"], state["keySource"]) == ("openai", True, "admin")
    provider.authorizations.clear()
    await _chat(http, hub, "hi")
    assert provider.authorizations and set(provider.authorizations) == {f"Bearer {admin_key}"}

    async with http.put(f"{hub.url}/v1/providers/openai", json={"apiKey": None},
                        headers=auth) as response:
        assert response.status == 200
        assert (await response.json())["keySource"] == "env"
    provider.authorizations.clear()
    await _chat(http, hub, "hi")
    assert set(provider.authorizations) == {f"Bearer {env_key}"}
    for body, status in (({"apiKey": 5}, 400), ({"colour": "x"}, 400)):
        async with http.put(f"{hub.url}/v1/providers/openai", json=body,
                            headers=auth) as response:
            assert response.status == status
    async with http.put(f"{hub.url}/v1/providers/nope", json={}, headers=auth) as response:
        assert (response.status, (await response.json())["error"]) == (404,
                                                                       "Provider not found")
    async with http.put(f"{hub.url}/v1/providers/gambiarra", json={}, headers=auth) as response:
        assert response.status == 400


async def _chat(http: aiohttp.ClientSession, hub: HubServer, content: str,
                stream: bool = False, model: str = "gpt") -> tuple[int, str, str]:
    """(status, body, every header as text) of one chat."""
    async with http.post(f"{hub.url}/v1/chat/completions", json={
            "model": model, "stream": stream,
            "messages": [{"role": "user", "content": content}]}) as response:
        text = await response.text()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        return response.status, text, headers


async def test_no_key_appears_in_any_response_event_or_log_line(
    http: aiohttp.ClientSession, make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ScriptedModel(chat=echo_chat) as echoing:
        env_key = new_key()
        monkeypatch.setenv("OPENAI_BASE_URL", f"{echoing.url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", env_key)
        monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        hub = await make_hub(FAST_PROBES)
        api = Api(http, hub)
        code = (await api.create_room("Watched"))["code"]
        seen: list[str] = []  # Everything any client got back, as text.
        events = bytearray()

        async def watch() -> None:
            async with http.get(f"{hub.url}/rooms/{code}/events") as response:
                seen.append(str(response.status))
                with contextlib.suppress(asyncio.CancelledError):
                    async for chunk in response.content.iter_any():
                        events.extend(chunk)

        watcher = asyncio.create_task(watch())
        try:
            auth = await login(http, hub)
            await add_entry(http, hub, GPT, auth)
            await add_entry(http, hub, {**GPT, "id": "gpt-low", "layer": "L0"}, auth)
            status, _ = await api.join(code, endpoint="http://127.0.0.1:9")
            assert status == 201
            admin_key = new_key()
            for method, path, body in (
                    ("GET", "/health", None), ("GET", "/v1/models", None),
                    ("GET", "/v1/models/layers", None), ("GET", "/v1/models/gpt", None),
                    ("GET", "/v1/config", None), ("GET", "/v1/providers", None),
                    ("PUT", "/v1/providers/openai", {"baseUrl": f"{echoing.url}/v1"}),
                    ("GET", "/rooms", None), ("GET", f"/rooms/{code}/participants", None),
                    ("GET", "/metrics", None)):
                async with http.request(method, hub.url + path, json=body,
                                        headers=auth) as response:
                    assert response.status == 200, (path, await response.text())
                    seen.append(await response.text())
                    seen.extend(f"{k}: {v}" for k, v in response.headers.items())
            for _in_use in ("env key", "then the admin key"):
                for content, stream, model in (("hi", False, "gpt"), ("hi", True, "gpt"),
                                               ("hi", False, "auto"), ("hi", True, "auto"),
                                               ("refuse", False, "gpt"),
                                               ("refuse", True, "auto")):
                    status, text, headers = await _chat(http, hub, content, stream, model)
                    seen.extend((str(status), text, headers))
                    if content == "refuse":  # The provider's own 401, key blanked out.
                        assert "Incorrect API key provided" in text or status >= 500, text
                    else:
                        assert status == 200 and "you sent" in text, text
                async with http.put(f"{hub.url}/v1/providers/openai",
                                    json={"apiKey": admin_key}, headers=auth) as response:
                    seen.append(await response.text())
                    seen.extend(f"{k}: {v}" for k, v in response.headers.items())
                async with http.get(f"{hub.url}/v1/providers", headers=auth) as response:
                    seen.append(await response.text())  # lastError after a 401 included.
                async with http.get(f"{hub.url}/health") as response:
                    seen.append(await response.text())
            await asyncio.sleep(0.5)  # A few probes with each key, and their log lines.
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    assert echoing.authorizations.count(f"Bearer {env_key}") >= 6  # It did echo them.
    assert echoing.authorizations.count(f"Bearer {admin_key}") >= 6
    assert seen[0] == "200" and events  # The room's event stream was open and spoke.
    everything = "\n".join(seen) + events.decode(errors="replace")
    logged = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    for key in (env_key, admin_key):
        for where, text in (("responses", everything), ("logs", logged)):
            assert key not in text, where
            assert key[8:] not in text, where  # Nor the key without its prefix.
            assert key[12:24] not in text, where  # Nor a piece of it.


async def test_a_provider_is_healthy_only_once_it_answered_and_not_after_it_stops(
    http: aiohttp.ClientSession, make_hub: HubFactory, provider: ScriptedModel, env_key: str,
) -> None:
    provider.models_status = 503  # Up, with a key, but not answering: not healthy.
    hub = await make_hub(FAST_PROBES)

    async def health() -> dict[str, Any]:
        async with http.get(f"{hub.url}/health") as response:
            return dict(await response.json())

    await until(lambda: _async(bool(provider.authorizations)))  # It was asked.
    await asyncio.sleep(0.3)
    state = await openai_state(http, hub)
    assert (state["hasKey"], state["healthy"], state["lastOkAt"]) == (True, False, None)
    assert state["lastError"] and env_key not in state["lastError"]
    assert (await health())["providers"]["openai"] is False

    provider.models_status = 200
    await until(lambda: _healthy(health, True))
    body = await health()
    assert "openai" in body["healthyProviders"]
    state = await openai_state(http, hub)
    assert state["healthy"] is True and isinstance(state["lastOkAt"], int)

    await provider.stop()
    await until(lambda: _healthy(health, False))
    assert "openai" not in (await health())["healthyProviders"]
    assert (await openai_state(http, hub))["healthy"] is False


async def test_a_provider_without_a_key_is_never_healthy_nor_asked(
    http: aiohttp.ClientSession, make_hub: HubFactory, provider: ScriptedModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{provider.url}/v1")
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    hub = await make_hub(FAST_PROBES)
    await add_entry(http, hub, GPT)
    await asyncio.sleep(0.5)
    state = await openai_state(http, hub)
    assert (state["hasKey"], state["keySource"], state["healthy"]) == (False, None, False)
    status, text, _ = await _chat(http, hub, "hi", model="auto")
    assert status == 503 and provider.authorizations == [], text


async def _async(value: bool) -> bool:
    return value


async def _healthy(health: Any, wanted: bool) -> bool:
    return bool((await health())["providers"]["openai"] is wanted)
