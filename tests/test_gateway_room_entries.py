"""Gateway entries for rooms: they open a room to everyone at the hub's root, so only a
room of this hub, and for a password room only with its password (checked, not stored)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.hub import HubServer
from tests.conftest import Api

PASSWORD = "correct horse battery"


@pytest.fixture
async def token(http: aiohttp.ClientSession, hub: HubServer) -> str:
    password = (hub.data_dir / "admin-password").read_text().strip()
    async with http.post(f"{hub.url}/v1/auth/login",
                         json={"username": "admin", "password": password}) as response:
        assert response.status == 200
        return str((await response.json())["token"])


async def _call(http: aiohttp.ClientSession, hub: HubServer, method: str, path: str,
                body: dict[str, Any], token: str) -> tuple[int, Any]:
    async with http.request(method, hub.url + path, json=body,
                            headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


def _entry(code: str, **extra: Any) -> dict[str, Any]:
    return {"id": "room-entry", "provider": "gambiarra", "apiModelName": "llama3.2:3b",
            "layer": "L0", "room": code, **extra}


async def test_an_entry_for_a_password_room_needs_its_password(
    http: aiohttp.ClientSession, hub: HubServer, api: Api, token: str
) -> None:
    code = (await api.create_room("Private", password=PASSWORD))["code"]
    status, body = await _call(http, hub, "POST", "/v1/models", _entry(code), token)
    assert (status, body["error"]) == (400, "Invalid field: roomPassword")
    status, body = await _call(http, hub, "POST", "/v1/models",
                               _entry(code, roomPassword="wrong guess"), token)
    assert (status, body) == (401, {"error": "Invalid password"})
    status, body = await _call(http, hub, "POST", "/v1/models",
                               _entry(code, roomPassword=PASSWORD), token)
    assert status == 201
    assert "roomPassword" not in body and PASSWORD not in str(body)
    # Moving an entry to a password room needs that room's password as well.
    open_code = (await api.create_room("Open"))["code"]
    moved = _entry(open_code, id="other")
    assert (await _call(http, hub, "POST", "/v1/models", moved, token))[0] == 201
    status, body = await _call(http, hub, "PUT", "/v1/models/other", {"room": code}, token)
    assert (status, body["error"]) == (400, "Invalid field: roomPassword")
    status, _ = await _call(http, hub, "PUT", "/v1/models/other", {"priority": 4}, token)
    assert status == 200  # Other changes need no password.


async def test_an_entry_must_name_a_room_of_this_hub(
    http: aiohttp.ClientSession, hub: HubServer, token: str
) -> None:
    status, body = await _call(http, hub, "POST", "/v1/models", _entry("ZZZZZZ"), token)
    assert status == 400
    assert body == {"error": "Invalid field: room", "details": "no room ZZZZZZ on this hub"}


async def test_a_web_page_of_another_origin_cannot_log_in_nor_lock_the_admin_out(
    http: aiohttp.ClientSession, hub: HubServer
) -> None:
    password = (hub.data_dir / "admin-password").read_text().strip()
    for _ in range(8):  # More than the lockout's five.
        async with http.post(f"{hub.url}/v1/auth/login",
                             json={"username": "admin", "password": "guess"},
                             headers={"Origin": "http://evil.example"}) as response:
            assert response.status == 403
            assert (await response.json())["error"] == "Cross-origin login refused"
    # The hub's own page (same origin) and the app (no Origin) still log in.
    own = hub.url.removeprefix("http://")
    for headers in ({"Origin": f"http://{own}"}, {}):
        async with http.post(f"{hub.url}/v1/auth/login", headers=headers,
                             json={"username": "admin", "password": password}) as response:
            assert response.status == 200, await response.text()


async def test_layers_is_not_a_model_id(
    http: aiohttp.ClientSession, hub: HubServer, token: str
) -> None:
    entry = {"id": "layers", "provider": "oss-local", "apiModelName": "m", "layer": "L0"}
    status, body = await _call(http, hub, "POST", "/v1/models", entry, token)
    assert (status, body["error"]) == (400, "Invalid field: id")
