"""``/v1/keys`` from the admin's side: a key is shown once and never again (not its text,
not its hash), every bad field is named in a 400, revoking takes effect on the very next
request, keys survive a restart, and the live-key cap holds under a burst."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.accounting.api_keys import hash_key
from gambiarra_desktop.accounting.errors import TooManyKeysError
from gambiarra_desktop.accounting.key_store import KeyStore
from gambiarra_desktop.accounting.keys import KeyBook
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.rooms.store import SqliteStore
from tests.conftest import Api, HubFactory
from tests.gateway_testkit import ADMIN_PASSWORD, login

KEY_TEXT = re.compile(r"gk-[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


@pytest.fixture
async def gw_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return await make_hub()


async def call(http: aiohttp.ClientSession, hub: HubServer, method: str, path: str,
               body: Any = None, headers: dict[str, str] | None = None
               ) -> tuple[int, Any, str]:
    async with http.request(method, hub.url + path, json=body, headers=headers) as response:
        text = await response.text()
        return response.status, await response.json(), text


async def make_key(http: aiohttp.ClientSession, hub: HubServer, auth: dict[str, str],
                   **fields: Any) -> dict[str, Any]:
    status, body, _ = await call(http, hub, "POST", "/v1/keys", {"name": "ci", **fields}, auth)
    assert status == 201, body
    made: dict[str, Any] = body
    return made


async def test_a_key_is_shown_once_and_lists_never_show_it_or_its_hash(
    http: aiohttp.ClientSession, gw_hub: HubServer,
) -> None:
    auth = await login(http, gw_hub)
    code = (await Api(http, gw_hub).create_room())["code"]
    made = await make_key(http, gw_hub, auth, name="Ana's laptop", rpm=60, tpm=10_000,
                          budget=2.5, budgetPeriod="day", rooms=[code.lower()], priority=3)
    assert KEY_TEXT.fullmatch(made["key"])
    assert made == {"id": made["id"], "name": "Ana's laptop", "key": made["key"],
                    "prefix": f"gk-{made['id']}", "rpm": 60, "tpm": 10_000, "budget": 2.5,
                    "budgetPeriod": "day", "rooms": [code], "priority": 3,
                    "createdAt": made["createdAt"]}
    assert made["key"].startswith(made["prefix"] + "_")
    defaults = await make_key(http, gw_hub, auth)
    assert (defaults["rpm"], defaults["tpm"], defaults["budget"], defaults["budgetPeriod"],
            defaults["rooms"], defaults["priority"]) == (None, None, None, "month", [], 0)

    status, listed, text = await call(http, gw_hub, "GET", "/v1/keys", headers=auth)
    assert status == 200
    assert [k["id"] for k in listed["data"]] == [made["id"], defaults["id"]]
    first = listed["data"][0]
    assert "key" not in first
    assert first["revoked"] is False and first["lastUsedAt"] is None
    assert first["usage"] == {"requests": 0, "promptTokens": 0, "completionTokens": 0,
                              "cost": 0.0, "periodCost": 0.0}
    for secret in (made["key"], defaults["key"], hash_key(made["key"]),
                   made["key"].split("_", 1)[1]):
        assert secret not in text


async def test_only_the_admin_manages_keys(
    http: aiohttp.ClientSession, gw_hub: HubServer,
) -> None:
    auth = await login(http, gw_hub)
    made = await make_key(http, gw_hub, auth)
    for headers in (None, {"Authorization": "Bearer nonsense"},
                    {"Authorization": f"Bearer {made['key']}"}):  # A key is not the admin.
        for method, path, body in (("POST", "/v1/keys", {"name": "x"}),
                                   ("GET", "/v1/keys", None),
                                   ("DELETE", f"/v1/keys/{made['id']}", None)):
            status, reply, _ = await call(http, gw_hub, method, path, body, headers)
            assert status == 401, (method, path, headers, reply)
    status, listed, _ = await call(http, gw_hub, "GET", "/v1/keys", headers=auth)
    assert listed["data"][0]["revoked"] is False


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 65}, "name"),
    ({"name": "tab\there"}, "name"),
    ({"name": "bidi\u202eevil"}, "name"),
    ({"name": 7}, "name"),
    ({"name": "k", "rpm": 0}, "rpm"),
    ({"name": "k", "rpm": 1.5}, "rpm"),
    ({"name": "k", "rpm": True}, "rpm"),
    ({"name": "k", "rpm": "60"}, "rpm"),
    ({"name": "k", "tpm": 10**9 + 1}, "tpm"),
    ({"name": "k", "budget": -0.01}, "budget"),
    ({"name": "k", "budget": 1_000_001}, "budget"),
    ({"name": "k", "budget": "5"}, "budget"),
    ({"name": "k", "budget": False}, "budget"),
    ({"name": "k", "budgetPeriod": "week"}, "budgetPeriod"),
    ({"name": "k", "budgetPeriod": None}, "budgetPeriod"),
    ({"name": "k", "rooms": "ABCDEF"}, "rooms"),
    ({"name": "k", "rooms": ["ZZZZZZ"]}, "rooms"),
    ({"name": "k", "rooms": [1]}, "rooms"),
    ({"name": "k", "rooms": ["A"] * 65}, "rooms"),
    ({"name": "k", "priority": 11}, "priority"),
    ({"name": "k", "priority": -1}, "priority"),
    ({"name": "k", "owner": "me"}, "owner"),
])
async def test_bad_fields_are_named_in_a_400(
    http: aiohttp.ClientSession, gw_hub: HubServer, body: dict[str, Any], field: str,
) -> None:
    auth = await login(http, gw_hub)
    status, reply, _ = await call(http, gw_hub, "POST", "/v1/keys", body, auth)
    assert status == 400, reply
    assert reply["error"] == f"Invalid field: {field}"
    assert reply["details"]
    _, listed, _ = await call(http, gw_hub, "GET", "/v1/keys", headers=auth)
    assert listed["data"] == []


async def test_a_revoked_key_is_refused_on_its_next_request(
    http: aiohttp.ClientSession, gw_hub: HubServer,
) -> None:
    auth = await login(http, gw_hub)
    code = (await Api(http, gw_hub).create_room())["code"]
    made = await make_key(http, gw_hub, auth)
    bearer = {"Authorization": f"Bearer {made['key']}"}
    status, _, _ = await call(http, gw_hub, "GET", f"/rooms/{code}/v1/models", headers=bearer)
    assert status == 200

    status, reply, _ = await call(http, gw_hub, "DELETE", f"/v1/keys/{made['id']}",
                                  headers=auth)
    assert (status, reply) == (200, {"success": True, "id": made["id"]})
    chat = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    for method, path, body in (("GET", f"/rooms/{code}/v1/models", None),
                               ("POST", f"/rooms/{code}/v1/chat/completions", chat),
                               ("POST", "/v1/chat/completions", chat)):
        status, reply, _ = await call(http, gw_hub, method, path, body, bearer)
        assert (status, reply["error"]) == (401, "Invalid API key"), (path, reply)
    _, listed, _ = await call(http, gw_hub, "GET", "/v1/keys", headers=auth)
    assert listed["data"][0]["revoked"] is True
    assert listed["data"][0]["lastUsedAt"] is not None
    status, reply, _ = await call(http, gw_hub, "DELETE", "/v1/keys/0123456789ab",
                                  headers=auth)
    assert (status, reply["error"]) == (404, "API key not found")


async def test_keys_and_revocations_survive_a_restart(
    http: aiohttp.ClientSession, make_hub: HubFactory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    data_dir = tmp_path / "keys-hub"
    hub = await make_hub(data_dir=data_dir)
    code = (await Api(http, hub).create_room())["code"]
    auth = await login(http, hub)
    kept = await make_key(http, hub, auth, name="kept", rpm=5)
    gone = await make_key(http, hub, auth, name="gone")
    await call(http, hub, "DELETE", f"/v1/keys/{gone['id']}", headers=auth)
    await hub.stop()

    hub = await make_hub(data_dir=data_dir)
    auth = await login(http, hub)
    _, listed, _ = await call(http, hub, "GET", "/v1/keys", headers=auth)
    assert [(k["name"], k["rpm"], k["revoked"]) for k in listed["data"]] == [
        ("kept", 5, False), ("gone", None, True)]
    for made, expected in ((kept, 200), (gone, 401)):
        status, _, _ = await call(http, hub, "GET", f"/rooms/{code}/v1/models",
                                  headers={"Authorization": f"Bearer {made['key']}"})
        assert status == expected


async def test_the_live_key_cap_holds_under_a_burst(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "cap.sqlite3")
    await store.open()
    try:
        book = KeyBook(KeyStore(store), max_live=3)
        await book.open()
        results = await asyncio.gather(
            *(book.create({"name": f"k{i}"}, lambda _code: True) for i in range(10)),
            return_exceptions=True)
        made = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, TooManyKeysError)]
        assert (len(made), len(refused)) == (3, 7)
        await book.revoke(made[0].key.id)  # A revoked key frees its place.
        await book.create({"name": "again"}, lambda _code: True)
        with pytest.raises(TooManyKeysError):
            await book.create({"name": "over"}, lambda _code: True)
        assert (len(book.list()), book.live_count) == (4, 3)
    finally:
        await store.close()
