"""Every network failure a user can meet through the hub client, the gateway client and the
model-server probe reads as a sentence with what to do, never the library's text.

All servers are real ones on 127.0.0.1; only DNS is stubbed (an aiohttp resolver that
fails the way the system's does), since a real lookup would leave the machine.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from gambiarra_desktop.gateway_client import GatewayApiError, GatewayClient
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError
from gambiarra_desktop.room_chat import ReplyStats, stream_reply
from gambiarra_desktop.share.local_servers import (
    ModelServerError,
    detect_local_servers,
    list_models,
    same_server_key,
)

RAW_LIBRARY_TEXT = ("ssl:default", "<html", "TransferEncodingError", "ClientConnectorError",
                    "Errno", "Name or service not known", "404: Not Found", "Traceback",
                    "ClientPayloadError", "ServerDisconnectedError")

HTML_404 = "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"


def assert_plain(message: str) -> None:
    for raw in RAW_LIBRARY_TEXT:
        assert raw not in message, (raw, message)
    assert message[:1].isupper() and message.rstrip().endswith("."), message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FailingResolver(AbstractResolver):
    """Resolves nothing, with the error the system resolver gives for an unknown name."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None


async def serve(routes: Callable[[web.Application], None]) -> tuple[web.AppRunner, str]:
    app = web.Application()
    routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def foreign() -> AsyncIterator[str]:
    """Another program's web server: an HTML 404 page for every path."""
    async def page(_request: web.Request) -> web.Response:
        return web.Response(status=404, text=HTML_404, content_type="text/html")

    runner, url = await serve(lambda app: app.router.add_route("*", "/{tail:.*}", page))
    yield url
    await runner.cleanup()


@pytest.fixture(params=["garbled", "cut"])
async def cutter(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A server that starts a chunked reply, then sends a chunk that is not one
    ("garbled": aiohttp's "TransferEncodingError: 400") or half a chunk ("cut"), and
    hangs up."""
    tail = b"zz\r\nnot a chunk" if request.param == "garbled" else b"40\r\ndata: {\"a\""

    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"data: {}\n\n")
        transport = request.transport
        assert transport is not None
        transport.write(tail)
        await asyncio.sleep(0.05)
        transport.close()
        return response

    runner, url = await serve(lambda app: app.router.add_route("*", "/{tail:.*}", cut))
    yield url
    await runner.cleanup()


async def failure_of(call: Awaitable[Any]) -> HubApiError | HubUnreachableError:
    try:
        with pytest.raises((HubApiError, HubUnreachableError)) as caught:
            await call
    finally:
        if asyncio.iscoroutine(call):
            call.close()  # Not awaited when an earlier assertion failed.
    return caught.value


async def drain(stream: AsyncIterator[Any]) -> None:
    async for _ in stream:
        pass


def chat(hub: HubClient, text: str) -> AsyncIterator[str]:
    """The Playground's streaming chat with room ABC123, over ``hub``'s session."""
    return stream_reply(hub.session, hub.base_url, "ABC123", "", "*",
                        [{"role": "user", "content": text}], "t-1", ReplyStats())


async def test_closed_port_says_nothing_answers_and_what_to_check() -> None:
    port = closed_port()
    async with HubClient(f"http://127.0.0.1:{port}", timeout_s=5) as hub:
        for call in (hub.list_rooms(), drain(hub.events("ABC123")),
                     drain(chat(hub, "hi"))):
            failure = await failure_of(call)
            assert isinstance(failure, HubUnreachableError)
            assert str(failure) == (f"Cannot reach 127.0.0.1:{port}: nothing answers there."
                                    " Check that the hub is running and that you are on the"
                                    " same network.")


async def test_unknown_name_says_it_cannot_be_found() -> None:
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=FailingResolver())) as session:
        hub = HubClient("http://gambiarra-hub.invalid:3000", session, timeout_s=5)
        failure = await failure_of(hub.list_rooms())
        gateway = GatewayClient("http://gambiarra-hub.invalid:3000", session, timeout_s=5)
        with pytest.raises(GatewayApiError) as gateway_failure:
            await gateway.models()
        with pytest.raises(ModelServerError) as model_failure:
            await list_models(session, "http://gambiarra-hub.invalid:11434", timeout_s=5)
    for message in (str(failure), gateway_failure.value.message, str(model_failure.value)):
        assert message.startswith("Cannot find gambiarra-hub.invalid: no computer answers"
                                  " to that name. Check the address for typos"), message
        assert_plain(message)


async def test_another_servers_html_404_is_not_shown(foreign: str) -> None:
    async with HubClient(foreign, timeout_s=5) as hub:
        for call in (hub.list_rooms(), hub.participants("ABC123"),
                     drain(hub.events("ABC123")), drain(chat(hub, "x"))):
            failure = await failure_of(call)
            assert isinstance(failure, HubApiError) and failure.status == 404
            assert_plain(str(failure))
            assert "not as a Gambiarra hub does (HTTP 404)" in str(failure)
    async with GatewayClient(foreign, timeout_s=5) as gateway:
        with pytest.raises(GatewayApiError) as caught:
            await gateway.models()
    assert_plain(str(caught.value))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ModelServerError) as model_failure:
            await list_models(session, foreign, timeout_s=5)
    assert_plain(str(model_failure.value))
    assert "not as a model server does (HTTP 404)" in str(model_failure.value)


async def test_a_cut_stream_says_the_connection_broke_off(cutter: str) -> None:
    async with HubClient(cutter, timeout_s=5) as hub:
        for call in (drain(hub.events("ABC123")), drain(chat(hub, "x")),
                     hub.list_rooms()):
            failure = await failure_of(call)
            assert isinstance(failure, HubUnreachableError), failure
            assert str(failure).startswith("The reply from 127.0.0.1:"), failure
            assert "broke off or arrived garbled. Try again" in str(failure)
            assert_plain(str(failure))


async def test_the_hubs_own_error_text_is_kept(hub: HubServer) -> None:
    async with HubClient(hub.url, timeout_s=5) as client:
        failure = await failure_of(client.participants("NOSUCH"))
        room = (await client.create_room("Secret", "right"))["room"]
        async with HubClient(hub.url, timeout_s=5, room_password="wrong") as wrong:
            denied = await failure_of(wrong.participants(room["code"]))
    assert isinstance(failure, HubApiError) and failure.status == 404
    assert str(failure) == "Room not found"
    assert isinstance(denied, HubApiError) and (denied.status, str(denied)) == (
        401, "Invalid password")


async def test_a_model_server_that_is_not_running_is_named() -> None:
    port = closed_port()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ModelServerError) as caught:
            await list_models(session, f"http://127.0.0.1:{port}", timeout_s=2)
    assert str(caught.value) == (f"No model server answers at 127.0.0.1:{port}. Start Ollama,"
                                 " LM Studio or llama.cpp's server, or check the address and"
                                 " port.")


def test_one_server_spelled_many_ways_has_one_key() -> None:
    spellings = ["http://localhost:11434", "http://127.0.0.1:11434/", "HTTP://LocalHost:11434",
                 "http://127.0.0.1:11434/v1", "http://[::1]:11434/v1/"]
    assert {same_server_key(s) for s in spellings} == {"http://127.0.0.1:11434"}
    assert same_server_key("http://127.0.0.1") == same_server_key("http://127.0.0.1:80")
    assert same_server_key("http://127.0.0.1:8080") != same_server_key("http://127.0.0.1:8081")
    assert same_server_key("http://10.0.0.5:8080") != same_server_key("http://127.0.0.1:8080")


async def test_detection_lists_a_server_typed_again_once() -> None:
    from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer

    async with FakeOpenAIServer(models=("llama3.2:3b",)) as server:
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        found = await detect_local_servers(
            extra_endpoints=[f"http://localhost:{port}", f"http://127.0.0.1:{port}/v1"],
            known=[("LM Studio", port)])
    assert [(s.name, s.models) for s in found] == [("LM Studio", ("llama3.2:3b",))]
