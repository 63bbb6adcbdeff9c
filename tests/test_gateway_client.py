"""GatewayClient against a real hub on 127.0.0.1 (and real misbehaving servers): every
method, the seed's errors with their details, and replies that are not the gateway's."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from gambiarra_desktop import gateway_client
from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.gateway_client import (
    GatewayApiError,
    GatewayClient,
    GatewayUnreachableError,
)
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub_client import HubApiError, HubUnreachableError
from tests.conftest import HubFactory

PASSWORD = "correct-horse-battery"  # noqa: S105 - a test's password.


@pytest.fixture
async def gateway_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", PASSWORD)
    return await make_hub()


@pytest.fixture
async def admin(gateway_hub: HubServer) -> AsyncIterator[GatewayClient]:
    async with GatewayClient(gateway_hub.url) as client:
        await client.login(PASSWORD)
        yield client


async def test_admin_round_trip(admin: GatewayClient, gateway_hub: HubServer) -> None:
    entry = await admin.add_model({"id": "cloud:gpt@4+o", "provider": "openai",
                                   "apiModelName": "gpt-4o", "layer": "L3"})
    assert entry["id"] == "cloud:gpt@4+o" and entry["enabled"] is True
    assert entry["relativeCost"] == 1.0 and entry["object"] == "model"

    changed = await admin.update_model("cloud:gpt@4+o", {"priority": 3, "enabled": False})
    assert (changed["priority"], changed["enabled"], changed["layer"]) == (3, False, "L3")

    async with GatewayClient(gateway_hub.url) as anonymous:  # Both reads are public.
        assert [m["id"] for m in await anonymous.models()] == ["cloud:gpt@4+o"]
        layers = await anonymous.layers()
    assert set(layers) == {"L0", "L1", "L2", "L3"}
    assert [m["id"] for m in layers["L3"]["models"]] == ["cloud:gpt@4+o"]

    await admin.delete_model("cloud:gpt@4+o")
    assert await admin.models() == []


async def test_config_providers_and_health(admin: GatewayClient) -> None:
    config = await admin.config()
    assert config["defaultLayer"] == "L0"
    changed = await admin.set_config({"defaultLayer": "L1", "enableCrossCheck": True})
    assert (changed["defaultLayer"], changed["enableCrossCheck"]) == ("L1", True)
    assert (await admin.config())["defaultLayer"] == "L1"

    providers = {p["id"]: p for p in await admin.providers()}
    assert providers["openai"]["hasKey"] is False
    secret_key = "sk-test-0123456789"  # noqa: S105
    entry = await admin.set_provider("openai", api_key=secret_key)
    assert (entry["hasKey"], entry["keySource"]) == (True, "admin")
    assert secret_key not in str(entry)
    # Leaving api_key out keeps the key; None clears it.
    entry = await admin.set_provider("openai", base_url="http://127.0.0.1:9/v1")
    assert entry["hasKey"] is True and entry["baseUrl"].startswith("http://127.0.0.1:9")
    entry = await admin.set_provider("openai", api_key=None)
    assert entry["hasKey"] is False and entry["keySource"] is None

    health = await admin.health()
    assert health["status"] == "ok" and health["configuration"]["defaultLayer"] == "L1"


async def test_chat_returns_the_answer_and_who_answered(
    admin: GatewayClient, upstream: FakeOpenAIServer,
) -> None:
    await admin.set_provider("oss-local", base_url=upstream.url)
    await admin.add_model({"id": "local-small", "provider": "oss-local",
                           "apiModelName": "llama3.2:3b", "layer": "L0"})
    answer, headers = await admin.chat(
        {"model": "auto", "stream": True, "max_tokens": 4,
         "messages": [{"role": "user", "content": "hi"}]})
    assert answer["choices"][0]["message"]["content"]
    assert answer["model"] == "llama3.2:3b"
    assert headers["X-Gambiarra-Model"] == "local-small"
    assert headers["X-Gambiarra-Layer"] == "L0"
    assert upstream.requests[-1].get("stream") is False  # chat() is the whole answer.


async def test_hub_errors_carry_the_seed_message_and_details(
    gateway_hub: HubServer, admin: GatewayClient,
) -> None:
    async with GatewayClient(gateway_hub.url) as client:
        with pytest.raises(GatewayApiError) as refused:
            await client.add_model({"id": "x", "provider": "openai",
                                    "apiModelName": "m", "layer": "L0"})
        assert (refused.value.status, refused.value.message) == (401, "Authentication required")
        assert refused.value.details

        with pytest.raises(GatewayApiError) as wrong:
            await client.login("not-the-password")
        assert (wrong.value.status, wrong.value.message) == (401, "Invalid credentials")
        assert client.token is None

    with pytest.raises(GatewayApiError) as bad:
        await admin.add_model({"id": "x", "provider": "openai", "apiModelName": "m",
                               "layer": "L9"})
    assert (bad.value.status, bad.value.message) == (400, "Invalid field: layer")
    assert bad.value.details and "L9" not in str(bad.value.message)

    await admin.add_model({"id": "x", "provider": "openai", "apiModelName": "m", "layer": "L3"})
    with pytest.raises(GatewayApiError) as duplicate:
        await admin.add_model({"id": "x", "provider": "openai", "apiModelName": "m",
                               "layer": "L3"})
    assert (duplicate.value.status, duplicate.value.message) == (409, "Model already exists")

    for call in (admin.update_model("nope", {"priority": 1}), admin.delete_model("nope")):
        with pytest.raises(GatewayApiError) as missing:
            await call
        assert (missing.value.status, missing.value.message) == (404, "Model not found")
    with pytest.raises(GatewayApiError) as a_slash:  # One path segment, never another route.
        await admin.delete_model("x/../../rooms")
    assert a_slash.value.status == 404
    assert [m["id"] for m in await admin.models()] == ["x"]

    with pytest.raises(GatewayApiError) as no_model:
        await admin.chat({"model": "nope", "messages": [{"role": "user", "content": "hi"}]})
    assert (no_model.value.status, no_model.value.message) == (404, "Model not found")


async def _serve(handler: Callable[[web.Request], web.StreamResponse]
                 ) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


PORTAL = "<html><body><h1>Sign in to the hotel Wi-Fi</h1></body></html>"


@pytest.mark.parametrize("status", [200, 502])
async def test_html_is_a_plain_error_not_a_traceback(status: int) -> None:
    async def portal(_: web.Request) -> web.StreamResponse:
        return web.Response(text=PORTAL, status=status, content_type="text/html")

    runner, url = await _serve(portal)
    try:
        async with GatewayClient(url) as client:
            for call in (client.models(), client.login("whatever-pass"), client.health()):
                with pytest.raises(GatewayApiError) as failed:
                    await call
                assert failed.value.status == 502
                assert "not as a Gambiarra hub does" in failed.value.message
                assert "<" not in failed.value.message
    finally:
        await runner.cleanup()


async def test_json_of_another_shape_is_refused() -> None:
    async def other(_: web.Request) -> web.StreamResponse:
        return web.json_response({"data": "not a list", "layers": [1], "token": 5})

    runner, url = await _serve(other)
    try:
        async with GatewayClient(url) as client:
            for call in (client.models(), client.layers(), client.login("x" * 8),
                         client.providers(), client.config()):
                with pytest.raises(GatewayApiError) as failed:
                    await call
                assert failed.value.status == 502 and "not a gateway" in failed.value.message
    finally:
        await runner.cleanup()


async def test_an_oversized_reply_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_client, "MAX_REPLY_BYTES", 1000)

    async def huge(_: web.Request) -> web.StreamResponse:
        return web.json_response({"data": ["x" * 5000]})

    runner, url = await _serve(huge)
    try:
        async with GatewayClient(url) as client:
            with pytest.raises(GatewayApiError) as failed:
                await client.models()
        assert failed.value.status == 502 and "larger than" in failed.value.message
    finally:
        await runner.cleanup()


async def test_unreachable_hub_is_one_error_type() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with GatewayClient(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(GatewayUnreachableError) as failed:
            await client.models()
    assert failed.value.status == 0
    assert failed.value.message == (f"Cannot reach 127.0.0.1:{port}: nothing answers there."
                                    " Check that the hub is running and that you are on the"
                                    " same network.")
    # The room client's handlers catch it as well.
    assert isinstance(failed.value, HubUnreachableError)
    assert isinstance(failed.value, HubApiError)


async def test_a_hub_that_never_answers_times_out() -> None:
    async def stuck(_: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)
        return web.json_response({})

    runner, url = await _serve(stuck)
    try:
        async with GatewayClient(url, timeout_s=0.3, chat_timeout_s=0.3) as client:
            started = time.monotonic()
            for call in (client.models(), client.chat({"model": "auto", "messages": []})):
                with pytest.raises(GatewayUnreachableError) as failed:
                    await call
                assert failed.value.status == 0
            assert time.monotonic() - started < 5
    finally:
        await runner.cleanup()
