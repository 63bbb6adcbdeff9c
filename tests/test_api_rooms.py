"""Black-box tests of /health, /rooms, CORS and bad input, against a real hub socket."""

from __future__ import annotations

import re

import aiohttp

from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.protocol import ROOM_CODE_ALPHABET
from tests.conftest import Api, HubFactory


async def test_health_reports_ok_with_a_millisecond_timestamp(api: Api) -> None:
    status, body = await api.call("GET", "/health")
    assert status == 200
    assert body["status"] == "ok"
    assert isinstance(body["timestamp"], int) and body["timestamp"] > 1_700_000_000_000


async def test_create_room_returns_201_with_room_and_host_id(api: Api) -> None:
    status, body = await api.call("POST", "/rooms", {"name": "Friday hack"})
    assert status == 201
    room = body["room"]
    assert set(room) == {"id", "code", "name", "hostId", "createdAt", "hasPassword"}
    assert room["name"] == "Friday hack"
    assert room["hostId"] == body["hostId"]
    assert room["hasPassword"] is False
    assert re.fullmatch(f"[{ROOM_CODE_ALPHABET}]{{6}}", room["code"])
    assert len(room["id"]) == 21


async def test_list_rooms_counts_participants(api: Api) -> None:
    first = await api.create_room("One")
    second = await api.create_room("Two", password="s3cret")
    await api.join(first["code"])
    status, body = await api.call("GET", "/rooms")
    assert status == 200
    by_code = {room["code"]: room for room in body["rooms"]}
    assert by_code[first["code"]]["participantCount"] == 1
    assert by_code[second["code"]]["participantCount"] == 0
    assert by_code[second["code"]]["hasPassword"] is True
    assert by_code[first["code"]]["hasPassword"] is False


async def test_password_hash_never_appears_in_any_response(api: Api) -> None:
    room = await api.create_room("Locked", password="hunter2")
    texts = []
    for method, path in (("GET", "/rooms"), ("GET", f"/rooms/{room['code']}/participants")):
        async with api.http.request(method, api.hub.url + path) as response:
            texts.append(await response.text())
    status, created = await api.call("POST", "/rooms", {"name": "x", "password": "hunter2"})
    texts.append(str(created))
    for text in texts:
        assert "argon2" not in text
        assert "hunter2" not in text
        assert "passwordHash" not in text


async def test_room_name_is_required(api: Api) -> None:
    for payload in ({}, {"name": ""}, {"name": "   "}):
        status, body = await api.call("POST", "/rooms", payload)
        assert (status, body) == (400, {"error": "Name is required"})


async def test_wrong_types_get_clear_400s(api: Api) -> None:
    status, body = await api.call("POST", "/rooms", {"name": 42})
    assert (status, body) == (400, {"error": "Invalid field: name must be a string"})
    status, body = await api.call("POST", "/rooms", {"name": "ok", "password": ["x"]})
    assert (status, body) == (400, {"error": "Invalid field: password must be a string"})
    status, body = await api.call("POST", "/rooms", {"name": "n" * 101})
    assert status == 400 and "too long" in body["error"]


async def test_malformed_json_and_non_objects_get_400(api: Api) -> None:
    for raw in (b"{not json", b"", b"[1,2]", b'"text"', b"\xff\xfe"):
        status, body = await api.call("POST", "/rooms", raw=raw)
        assert status == 400, raw
        assert body["error"] in ("Invalid JSON body", "Request body must be a JSON object")


async def test_oversized_body_gets_413_json(
    make_hub: HubFactory, http: aiohttp.ClientSession
) -> None:
    from gambiarra_desktop.hub import HubConfig

    hub = await make_hub(HubConfig(max_body_bytes=1024))
    api = Api(http, hub)
    status, body = await api.call("POST", "/rooms", {"name": "x" * 2000})
    assert status == 413
    assert body == {"error": "Request body too large (limit is 1024 bytes)"}


async def test_unknown_paths_get_404_json_with_cors(
    http: aiohttp.ClientSession, hub: HubServer
) -> None:
    async with http.get(hub.url + "/no/such/path") as response:
        assert response.status == 404
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.content_type == "application/json"
        assert await response.json() == {"error": "Not found"}


async def test_wrong_method_gets_405_json(api: Api) -> None:
    status, body = await api.call("PUT", "/rooms", {"name": "x"})
    assert (status, body) == (405, {"error": "Method not allowed"})


async def test_every_response_carries_cors_even_errors(
    http: aiohttp.ClientSession, hub: HubServer
) -> None:
    requests = [
        ("GET", "/health", None), ("GET", "/rooms", None),
        ("POST", "/rooms", {"name": ""}), ("GET", "/rooms/ZZZZZZ/participants", None),
        ("POST", "/rooms/ZZZZZZ/join", {}),
    ]
    for method, path, payload in requests:
        async with http.request(method, hub.url + path, json=payload) as response:
            assert response.headers.get("Access-Control-Allow-Origin") == "*", path


async def test_preflight_on_any_path_is_204_with_seed_headers(
    http: aiohttp.ClientSession, hub: HubServer
) -> None:
    for path in ("/rooms", "/rooms/ABCDEF/v1/chat/completions", "/anything/at/all"):
        async with http.options(hub.url + path) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE, OPTIONS"
            assert response.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization"
            assert "Access-Control-Allow-Private-Network" not in response.headers


async def test_private_network_preflight_is_allowed_for_private_origins_only(
    http: aiohttp.ClientSession, hub: HubServer
) -> None:
    headers = {"Access-Control-Request-Private-Network": "true", "Origin": "http://10.0.0.7"}
    async with http.options(hub.url + "/rooms", headers=headers) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Private-Network"] == "true"
    # A page on the internet must not drive a LAN hub through a visitor's browser.
    headers["Origin"] = "https://example.org"
    async with http.options(hub.url + "/rooms", headers=headers) as response:
        assert response.status == 204
        assert "Access-Control-Allow-Private-Network" not in response.headers


async def test_room_codes_match_case_insensitively(api: Api) -> None:
    room = await api.create_room()
    status, body = await api.call("GET", f"/rooms/{room['code'].lower()}/participants")
    assert (status, body["participants"]) == (200, [])


async def test_unknown_room_is_404_room_not_found_everywhere(api: Api) -> None:
    calls = [
        ("POST", "/rooms/NOPE42/join", {"id": "a"}),
        ("DELETE", "/rooms/NOPE42/leave/a", None),
        ("POST", "/rooms/NOPE42/health", {"id": "a"}),
        ("GET", "/rooms/NOPE42/participants", None),
        ("GET", "/rooms/NOPE42/v1/models", None),
        ("POST", "/rooms/NOPE42/v1/chat/completions", {"model": "*"}),
        ("GET", "/rooms/NOPE42/events", None),
    ]
    for method, path, payload in calls:
        status, body = await api.call(method, path, payload)
        assert (status, body) == (404, {"error": "Room not found"}), path


async def test_room_and_participant_caps(make_hub: HubFactory, http: aiohttp.ClientSession) -> None:
    from gambiarra_desktop.hub import HubConfig

    hub = await make_hub(HubConfig(max_rooms=2, max_participants_per_room=1))
    api = Api(http, hub)
    room = await api.create_room("a")
    await api.create_room("b")
    assert await api.call("POST", "/rooms", {"name": "c"}) == (
        429, {"error": "This hub already holds its limit of 2 rooms"})
    assert (await api.join(room["code"], id="first"))[0] == 201
    assert (await api.join(room["code"], id="first", nickname="again"))[0] == 201
    assert await api.join(room["code"], id="second") == (
        429, {"error": "This room already holds its limit of 1 participants"})
