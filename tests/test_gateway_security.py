"""Attacks on the gateway (issue 10) that once worked, one test each.

Each test plays a hostile party against a real hub on 127.0.0.1: a LAN client (many
source addresses: every 127.x.y.z is loopback on Linux), a participant whose model server
answers with hostile JSON, a provider that echoes the API key it was sent.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gambiarra_desktop.gateway.accounts import AdminAccounts
from gambiarra_desktop.gateway.errors import InvalidCredentialsError, LoginLockedError
from gambiarra_desktop.gateway.store import GatewayStore
from gambiarra_desktop.gateway.tokens import TokenSigner
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.errors import InvalidPasswordError, TooManyPasswordFailuresError
from gambiarra_desktop.hub.rooms.password_gate import PasswordGate
from gambiarra_desktop.hub.rooms.passwords import hash_password
from gambiarra_desktop.hub.rooms.room import Room
from gambiarra_desktop.hub.rooms.store import SqliteStore, StoredRoom
from tests.conftest import Api, HubFactory
from tests.gateway_testkit import ScriptedModel

ADMIN_PASSWORD = "a long admin password"  # noqa: S105 - the test hub's own.
SECRET_KEY = "sk-test-0123456789abcdefSECRET"  # noqa: S105 - a fake key for a fake provider.


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

    async with ScriptedModel(chat=chat) as hostile:
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


# --- the admin login ------------------------------------------------------------------


async def _login_from(hub: HubServer, source: str, password: str) -> int:
    """One login over a raw connection from ``source`` (any 127.x.y.z on Linux)."""
    body = json.dumps({"username": "admin", "password": password}).encode()
    reader, writer = await asyncio.open_connection(hub.host, hub.port, local_addr=(source, 0))
    try:
        writer.write(b"POST /v1/auth/login HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 60)
    finally:
        writer.close()
    return int(status_line.split()[1])


@pytest.mark.skipif(sys.platform != "linux", reason="sources in 127/8 other than .1: Linux")
async def test_wrong_logins_from_many_addresses_are_capped_hub_wide(
    admin_hub: HubServer,
) -> None:
    """Hole: the lockout counts per address, and addresses are cheap, so a burst of wrong
    logins from many addresses each ran argon2 (64 MB, tens of ms of CPU) at once: a queue
    with no bound on the shared thread pool. Now a few checks run and a few wait, hub-wide;
    beyond that, 429 before any argon2 time is spent (as room passwords already do)."""
    sources = [f"127.0.{index // 250}.{2 + index % 250}" for index in range(80)]
    statuses = await asyncio.gather(*(_login_from(admin_hub, s, "wrong") for s in sources))
    assert set(statuses) <= {401, 429}
    assert statuses.count(429) > 0, "every one of 80 guesses ran argon2"


async def _accounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AdminAccounts:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    database = SqliteStore(tmp_path / "hub.sqlite3")
    await database.open()
    store = GatewayStore(database)
    await store.open()
    accounts = AdminAccounts(store, TokenSigner("k" * 48), tmp_path)
    await accounts.bootstrap()
    return accounts


async def test_ipv6_addresses_of_one_host_share_its_login_lockout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hole: failures were counted per IPv6 address, but a LAN host picks any address of
    its /64 at will (SLAAC, privacy addresses), so a fresh address reset the lockout:
    endless guesses. Failures are now counted per /64 (and IPv4-mapped = IPv4)."""
    accounts = await _accounts(tmp_path, monkeypatch)
    for index in range(1, 6):
        with pytest.raises(InvalidCredentialsError):
            await accounts.login("admin", "wrong", f"2001:db8:1:2::{index:x}")
    with pytest.raises(LoginLockedError):
        await accounts.login("admin", "wrong", "2001:db8:1:2:aaaa:bbbb:cccc:dddd")
    with pytest.raises(LoginLockedError):  # Right password, same host: still locked.
        await accounts.login("admin", ADMIN_PASSWORD, "2001:db8:1:2::99")
    # Another /64 is another host, and a mapped IPv4 address is that IPv4 host.
    assert (await accounts.login("admin", ADMIN_PASSWORD, "2001:db8:1:3::1")).token
    for _ in range(5):
        with pytest.raises(InvalidCredentialsError):
            await accounts.login("admin", "wrong", "::ffff:10.0.0.7")
    with pytest.raises(LoginLockedError):
        await accounts.login("admin", "wrong", "10.0.0.7")


async def test_ipv6_addresses_of_one_host_share_its_room_password_lockout() -> None:
    """The same hole at a room password's door (its gate counts failures the same way)."""
    gate = PasswordGate(max_failures=3, window_s=60.0)
    room = Room(StoredRoom("r1", "ABCDEF", "Private", "host", 0,
                           await hash_password("the room password")))
    for index in range(1, 4):
        with pytest.raises(InvalidPasswordError):
            await gate.check(room, "wrong", f"fd00:1:2:3::{index:x}")
    with pytest.raises(TooManyPasswordFailuresError):
        await gate.check(room, "wrong", "fd00:1:2:3:ffff::1")
    await gate.check(room, "the room password", "fd00:1:2:4::1")  # Another host.


# --- a provider that echoes its key -----------------------------------------------------


async def test_a_provider_echoing_its_key_in_an_answer_does_not_show_it_to_clients(
    http: aiohttp.ClientSession, make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hole: the key was blanked out of a provider's error answers only, so a provider (or
    a debugging proxy set as its base URL) that quotes the request's headers in a 200
    answer handed the admin's API key to any client at the hub's root."""

    async def echo(request: web.Request) -> web.Response:
        quoted = request.headers.get("Authorization", "")
        return web.json_response(_answer(f"you sent {quoted}", usage={"note": quoted}))

    async with ScriptedModel(chat=echo) as provider:
        monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        monkeypatch.setenv("OPENAI_BASE_URL", provider.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
        hub = await make_hub()
        await _add_model(http, hub, {"id": "cloud", "provider": "openai",
                                     "apiModelName": "gpt-x", "layer": "L3"})
        async with http.post(f"{hub.url}/v1/chat/completions", json={
                "model": "cloud", "messages": [{"role": "user", "content": "hi"}]}) as response:
            text = await response.text()
            headers = str(response.headers)
    assert response.status == 200, text
    assert "you sent Bearer" in text  # The provider did answer, and did echo it.
    assert SECRET_KEY not in text
    assert SECRET_KEY not in headers


async def test_a_provider_streaming_its_key_back_split_over_chunks_is_redacted(
    http: aiohttp.ClientSession, make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same hole in a stream, which nothing redacted: the key is cut in two chunks,
    so blanking each chunk alone would not do either."""

    async def echo(request: web.Request) -> web.StreamResponse:
        quoted = request.headers.get("Authorization", "").encode()
        event = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                            "model": "m", "choices": [{"index": 0, "delta": {
                                "content": quoted.decode()}, "finish_reason": None}]})
        data = f"data: {event}\n\n".encode()
        cut = data.index(quoted) + len(quoted) // 2
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for part in (data[:cut], data[cut:], b"data: [DONE]\n\n"):
            await response.write(part)
            await asyncio.sleep(0.05)  # Separate reads on the hub's side.
        await response.write_eof()
        return response

    async with ScriptedModel(chat=echo) as provider:
        monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        monkeypatch.setenv("OPENAI_BASE_URL", provider.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
        hub = await make_hub()
        await _add_model(http, hub, {"id": "cloud", "provider": "openai",
                                     "apiModelName": "gpt-x", "layer": "L3"})
        async with http.post(f"{hub.url}/v1/chat/completions", json={
                "model": "cloud", "stream": True,
                "messages": [{"role": "user", "content": "hi"}]}) as response:
            text = await response.text()
    assert response.status == 200, text
    assert "Bearer [redacted]" in text and text.endswith("data: [DONE]\n\n")
    assert SECRET_KEY not in text
