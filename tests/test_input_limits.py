"""Bad input at the door: deep JSON, compressed bodies, oversized specs/config, control
characters in room names, and the CLI never printing hub text raw to a terminal."""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gambiarra_desktop.commands.terminal_text import terminal_safe
from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub.api.body_checks import json_depth_exceeds
from tests.conftest import Api

TOO_DEEP = {"error": "JSON nested too deeply (limit 32 levels)"}


def nested(depth: int) -> Any:
    """``depth`` levels of alternating lists and objects, innermost a string with brackets
    (which must not count)."""
    value: Any = "[[{{"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def nested_text(depth: int) -> str:
    """The JSON text of :func:`nested`, built without recursion (``json.dumps`` of 1,000
    levels overflows Python's stack, which is the point of the limit)."""
    opening = "".join("[" if level % 2 else '{"k":' for level in reversed(range(depth)))
    closing = "".join("]" if level % 2 else "}" for level in range(depth))
    return opening + '"[[{{"' + closing


@pytest.mark.parametrize("depth", [33, 254, 1000, 5000])
async def test_deep_json_in_specs_config_and_messages_is_a_400(
    api: Api, upstream: FakeOpenAIServer, depth: int
) -> None:
    room = await api.create_room()
    code = room["code"]
    for payload_field in ("specs", "config"):
        raw = json.dumps({"id": "p", "nickname": "N", "model": "m", "endpoint": upstream.url,
                          payload_field: {"deep": "DEEP"}}).replace('"DEEP"', nested_text(depth))
        status, body = await api.call("POST", f"/rooms/{code}/join", raw=raw.encode())
        assert (status, body) == (400, TOO_DEEP), payload_field
    raw = json.dumps({"model": "*", "messages": [{"role": "user", "content": "DEEP"}]}
                     ).replace('"DEEP"', nested_text(depth))
    status, body = await api.call("POST", f"/rooms/{code}/v1/chat/completions", raw=raw.encode())
    assert (status, body) == (400, TOO_DEEP)
    status, body = await api.call("GET", f"/rooms/{code}/participants")
    assert status == 200 and body["participants"] == []


async def test_json_32_levels_deep_is_accepted(api: Api) -> None:
    # The body is level 1, so 31 more levels below it make 32.
    status, body = await api.call("POST", "/rooms", {"name": "Deep", "extra": nested(31)})
    assert status == 201, body
    status, body = await api.call("POST", "/rooms", {"name": "Deep", "extra": nested(32)})
    assert (status, body) == (400, TOO_DEEP)


def test_depth_check_ignores_brackets_in_strings_and_is_linear() -> None:
    assert nested_text(5) == json.dumps(nested(5), separators=(",", ":"))
    assert not json_depth_exceeds(json.dumps({"s": "[" * 10_000 + "{" * 10_000}).encode())
    assert not json_depth_exceeds(json.dumps([[1]] * 100_000).encode())
    assert not json_depth_exceeds(json.dumps({"a": '\\"[[[[' * 1000}).encode())
    assert json_depth_exceeds(b"[" * 33 + b"]" * 33)
    assert not json_depth_exceeds(b"[" * 32 + b"]" * 32)
    started = time.perf_counter()
    big = json.dumps([nested(30)] * 20_000).encode()  # ~4 MB, 20k 31-deep branches.
    assert not json_depth_exceeds(big)
    assert json_depth_exceeds(b"[" * 2_000_000 + b"]" * 2_000_000)
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-gzip", "zstd", "gzip, br"])
async def test_compressed_request_bodies_are_refused(
    http: aiohttp.ClientSession, api: Api, encoding: str
) -> None:
    plain = b'{"name": "Zipped"}'
    body = zlib.compress(plain) if encoding == "deflate" else gzip.compress(plain)
    async with http.post(api.hub.url + "/rooms", data=body,
                         headers={"Content-Type": "application/json",
                                  "Content-Encoding": encoding}) as response:
        assert response.status == 415
        assert await response.json() == {
            "error": "Content-Encoding is not supported; send an uncompressed JSON body"}
    status, listing = await api.call("GET", "/rooms")
    assert listing["rooms"] == []


async def test_identity_encoding_is_accepted(http: aiohttp.ClientSession, api: Api) -> None:
    async with http.post(api.hub.url + "/rooms", data=b'{"name": "Plain"}',
                         headers={"Content-Type": "application/json",
                                  "Content-Encoding": "identity"}) as response:
        assert response.status == 201


@pytest.mark.parametrize("field", ["specs", "config"])
async def test_specs_and_config_are_capped_at_16_kb(
    api: Api, upstream: FakeOpenAIServer, field: str
) -> None:
    room = await api.create_room()
    base = '{"note":""}'
    fits = {"note": "x" * (16 * 1024 - len(base))}
    assert len(json.dumps(fits, separators=(",", ":"))) == 16 * 1024
    status, body = await api.join(room["code"], endpoint=upstream.url, **{field: fits})
    assert status == 201, body
    status, body = await api.join(room["code"], id="p2", endpoint=upstream.url,
                                  **{field: {"note": "x" * 8_000_000}})
    assert (status, body) == (
        400, {"error": f"Invalid field: {field} is too large (max 16384 bytes)"})
    status, body = await api.call("GET", f"/rooms/{room['code']}/participants")
    assert [p["id"] for p in body["participants"]] == ["p1"]


@pytest.mark.parametrize(
    "name", ["\x1b[2J\x1b[31mPwned", "tab\tname", "bell\x07", "del\x7f", "c1\x9bm",
             "rtl\u202eevil", "isolate\u2066x\u2069", "nul\x00", "line\nbreak"])
async def test_room_names_with_control_characters_are_refused(api: Api, name: str) -> None:
    status, body = await api.call("POST", "/rooms", {"name": name})
    assert (status, body) == (
        400, {"error": "Invalid field: name must not contain control characters"})


async def test_unicode_room_names_are_still_fine(api: Api) -> None:
    status, body = await api.call("POST", "/rooms", {"name": "Laboratório 🦙 東京 مرحبا"})
    assert status == 201, body


def test_terminal_safe_escapes_only_what_is_not_printable() -> None:
    assert terminal_safe("Lab 🦙 ação") == "Lab 🦙 ação"
    assert terminal_safe("\x1b[2Jx\x9b\u202e\U000e0001\n") == (
        "\\x1b[2Jx\\x9b\\u202e\\U000e0001\\x0a")


@pytest.fixture
async def hostile_hub() -> AsyncIterator[str]:
    """A real HTTP server that answers like a hub, with escape sequences in every name
    (a hub is somebody else's machine: the CLI must not trust its text)."""
    evil = "\x1b]0;owned\x07\x1b[2JEvil\u202eroom"
    app = web.Application()

    async def rooms(request: web.Request) -> web.Response:
        return web.json_response({"rooms": [
            {"id": "r1", "code": "ABC123", "name": evil, "hasPassword": False,
             "participantCount": 1, "createdAt": 1_700_000_000_000}]})

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        data = json.dumps({"participant": {"id": "p"}, "id": "p", "nickname": evil,
                           "model": "m\x1b[5m", "transport": "direct"})
        await response.write(f"event: participant:joined\ndata: {data}\n\n".encode())
        await response.write_eof()
        return response

    app.router.add_get("/rooms", rooms)
    app.router.add_get("/rooms/{code}/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _run_cli(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gambiarra_desktop.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode()


async def test_cli_list_and_monitor_escape_hub_text(hostile_hub: str) -> None:
    code, out = await _run_cli("list", "--hub", hostile_hub)
    assert code == 0, out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07\\x1b[2JEvil\\u202eroom" in out
    code, out = await _run_cli("monitor", "--code", "ABC123", "--hub", hostile_hub)
    assert code == 0, out
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[2JEvil\\u202eroom joined with m\\x1b[5m" in out
