"""Join, leave, health and the participant list: every field, status and error of seed 001."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig
from gambiarra_desktop.hub.keys import PROXY
from tests.conftest import Api, HubFactory

SPECS = {"gpu": "NVIDIA RTX 4090", "vram": 24, "ram": 64, "cpu": "AMD Ryzen 9 7950X"}
CONFIG = {"temperature": 0.7, "max_tokens": 2048}


async def test_join_returns_201_with_participant_as_stored(api: Api) -> None:
    room = await api.create_room()
    before = int(time.time() * 1000)
    status, body = await api.join(
        room["code"], id="550e8400-e29b-41d4-a716-446655440000",
        endpoint="http://localhost:11434", specs=SPECS, config=CONFIG,
    )
    assert status == 201
    assert body["roomId"] == room["id"]
    participant = body["participant"]
    assert participant == {
        "id": "550e8400-e29b-41d4-a716-446655440000", "nickname": "Alice",
        "model": "llama3.2:3b", "endpoint": "http://localhost:11434", "specs": SPECS,
        "config": CONFIG, "status": "online",
        "joinedAt": participant["joinedAt"], "lastSeen": participant["lastSeen"],
        "transport": "direct",
    }
    assert "tunnelToken" not in body
    assert before <= participant["joinedAt"] == participant["lastSeen"] <= before + 5000


async def test_join_defaults_specs_and_config_to_empty_objects(api: Api) -> None:
    room = await api.create_room()
    status, body = await api.join(room["code"])
    assert status == 201
    assert body["participant"]["specs"] == {} and body["participant"]["config"] == {}


async def test_join_requires_the_four_fields(api: Api) -> None:
    room = await api.create_room()
    for missing in ("id", "nickname", "model", "endpoint"):
        status, body = await api.join(room["code"], **{missing: ""})
        assert (status, body) == (
            400, {"error": "Missing required fields: id, nickname, model, endpoint"}
        ), missing
    status, body = await api.call("POST", f"/rooms/{room['code']}/join", {})
    assert body == {"error": "Missing required fields: id, nickname, model, endpoint"}


async def test_join_rejects_wrong_types(api: Api) -> None:
    room = await api.create_room()
    status, body = await api.join(room["code"], nickname=123)
    assert (status, body) == (400, {"error": "Invalid field: nickname must be a string"})
    status, body = await api.join(room["code"], specs="fast")
    assert (status, body) == (400, {"error": "Invalid field: specs must be an object"})
    status, body = await api.join(room["code"], config=[1])
    assert (status, body) == (400, {"error": "Invalid field: config must be an object"})


@pytest.mark.parametrize("taken", ["*", "any", "model:llama3.2:3b", "model:"])
async def test_join_refuses_an_id_a_requests_model_field_would_pick(
        api: Api, upstream: FakeOpenAIServer, taken: str) -> None:
    """A request names a participant by id before anything else: a participant whose id
    is "*" or "model:NAME" would take every request for any model, or for that model,
    from the people really serving it (found by a review of the web page's picker)."""
    room = await api.create_room()
    status, _ = await api.join(room["code"], id="alice", endpoint=upstream.url)
    assert status == 201
    status, body = await api.join(room["code"], id=taken, nickname="Alice",
                                  endpoint=upstream.url)
    assert (status, body) == (400, {"error": 'Invalid field: id must not be "*" or "any", or'
                                             ' start with "model:" (a request\'s model field'
                                             ' uses those)'})
    status, listing = await api.call("GET", f"/rooms/{room['code']}/participants")
    assert [p["id"] for p in listing["participants"]] == ["alice"]
    status, _ = await api.join(room["code"], id="any-laptop", endpoint=upstream.url)
    assert status == 201  # Only the exact aliases and the prefix are taken.


async def test_an_id_named_after_a_model_others_serve_does_not_take_its_requests(
        api: Api, http: aiohttp.ClientSession) -> None:
    """Mallory joins as id "llama3" serving qwen: requests for "llama3" still go to the
    people serving llama3; Mallory's own requests, by an id no model has, reach her."""
    async with (FakeOpenAIServer(models=("llama3",)) as alice,
                FakeOpenAIServer(models=("qwen",)) as mallory):
        room = await api.create_room()
        code = room["code"]
        assert (await api.join(code, id="alice", model="llama3", endpoint=alice.url))[0] == 201
        assert (await api.join(code, id="llama3", nickname="Mallory", model="qwen",
                               endpoint=mallory.url))[0] == 201
        url = f"{api.hub.url}/rooms/{code}/v1/chat/completions"
        for _ in range(3):
            async with http.post(url, json={"model": "llama3", "messages": [
                    {"role": "user", "content": "hi"}]}) as answer:
                assert answer.status == 200
                assert answer.headers["X-Gambiarra-Participant"] == "alice"
        assert len(alice.requests) == 3 and mallory.requests == []
        assert (await api.call("DELETE", f"/rooms/{code}/leave/alice"))[0] == 200
        # Nobody else serves llama3 now: the id names Mallory again, as the seed says.
        async with http.post(url, json={"model": "llama3", "messages": [
                {"role": "user", "content": "hi"}]}) as answer:
            assert answer.headers["X-Gambiarra-Participant"] == "llama3"
        assert len(mallory.requests) == 1


async def test_join_accepts_only_http_and_https_endpoints(api: Api) -> None:
    room = await api.create_room()
    bad = ["file:///etc/passwd", "ftp://host/", "localhost:11434", "http://", "unix:/tmp/s",
           "http://user:pw@host:1", "javascript:alert(1)", "http://host:99999"]
    for endpoint in bad:
        status, body = await api.join(room["code"], endpoint=endpoint)
        assert (status, body) == (
            400, {"error": "Invalid endpoint: must be an http:// or https:// URL"}
        ), endpoint
    for endpoint in ("http://192.168.1.100:8080", "https://models.example/v1"):
        status, _ = await api.join(room["code"], endpoint=endpoint)
        assert status == 201, endpoint


async def test_password_room_wrong_missing_and_right(api: Api) -> None:
    room = await api.create_room("Locked", password="hunter2")
    assert await api.join(room["code"]) == (401, {"error": "Invalid password"})
    assert await api.join(room["code"], password="") == (401, {"error": "Invalid password"})
    assert await api.join(room["code"], password="Hunter2") == (401, {"error": "Invalid password"})
    status, body = await api.join(room["code"], password="hunter2")
    assert status == 201
    assert "password" not in body["participant"]


async def test_open_room_ignores_a_given_password(api: Api) -> None:
    room = await api.create_room()
    status, _ = await api.join(room["code"], password="whatever")
    assert status == 201


async def test_second_join_with_same_id_updates_without_duplicating(api: Api) -> None:
    room = await api.create_room()
    _, first = await api.join(room["code"], model="llama3.2:3b")
    await asyncio.sleep(0.01)
    status, second = await api.join(room["code"], model="qwen2.5:7b", nickname="Alice2")
    assert status == 201
    _, listing = await api.call("GET", f"/rooms/{room['code']}/participants")
    assert len(listing["participants"]) == 1
    stored = listing["participants"][0]
    assert stored["model"] == "qwen2.5:7b" and stored["nickname"] == "Alice2"
    assert stored["joinedAt"] == first["participant"]["joinedAt"]
    assert stored["lastSeen"] >= second["participant"]["joinedAt"]


async def test_leave_removes_the_participant(api: Api) -> None:
    room = await api.create_room()
    await api.join(room["code"], id="bob")
    status, body = await api.call("DELETE", f"/rooms/{room['code']}/leave/bob")
    assert (status, body) == (200, {"success": True})
    _, listing = await api.call("GET", f"/rooms/{room['code']}/participants")
    assert listing["participants"] == []
    status, body = await api.call("DELETE", f"/rooms/{room['code']}/leave/bob")
    assert (status, body) == (404, {"error": "Participant not found"})


async def test_health_check_errors_and_success(api: Api) -> None:
    room = await api.create_room()
    code = room["code"]
    assert await api.call("POST", f"/rooms/{code}/health", {}) == (
        400, {"error": "Participant ID is required"})
    assert await api.call("POST", f"/rooms/{code}/health", {"id": "ghost"}) == (
        404, {"error": "Participant not found"})
    _, joined = await api.join(code, id="p1")
    await asyncio.sleep(0.01)
    assert await api.call("POST", f"/rooms/{code}/health", {"id": "p1"}) == (
        200, {"success": True})
    _, listing = await api.call("GET", f"/rooms/{code}/participants")
    assert listing["participants"][0]["lastSeen"] > joined["participant"]["lastSeen"]


async def test_participants_list_keeps_join_order(api: Api) -> None:
    room = await api.create_room()
    for pid in ("a", "b", "c"):
        await api.join(room["code"], id=pid, nickname=pid.upper())
    _, listing = await api.call("GET", f"/rooms/{room['code']}/participants")
    assert [p["id"] for p in listing["participants"]] == ["a", "b", "c"]
    assert all(p["status"] == "online" for p in listing["participants"])


async def test_silent_participant_goes_offline_and_back_online(
    make_hub: HubFactory, http: aiohttp.ClientSession
) -> None:
    hub = await make_hub(HubConfig(health_check_interval_s=0.05, participant_timeout_s=0.3))
    api = Api(http, hub)
    room = await api.create_room()
    code = room["code"]
    await api.join(code, id="quiet")
    await api.join(code, id="chatty")

    async def status_of(pid: str) -> str:
        _, listing = await api.call("GET", f"/rooms/{code}/participants")
        return str({p["id"]: p["status"] for p in listing["participants"]}[pid])

    deadline = time.monotonic() + 5
    while await status_of("quiet") != "offline":
        assert time.monotonic() < deadline, "participant never went offline"
        await api.call("POST", f"/rooms/{code}/health", {"id": "chatty"})
        await asyncio.sleep(0.05)
    assert await status_of("chatty") == "online"
    assert await api.call("POST", f"/rooms/{code}/health", {"id": "quiet"}) == (
        200, {"success": True})
    assert await status_of("quiet") == "online"


async def test_endpoint_refusals_stop_the_hub_becoming_a_relay() -> None:
    from gambiarra_desktop.hub.proxy.endpoint_policy import EndpointPolicy

    endpoint_refusal = EndpointPolicy().join_refusal
    lan_peer, local_peer = "192.168.1.50", "127.0.0.1"
    for endpoint in ("http://169.254.169.254/latest", "http://[fe80::1]:80", "http://0.0.0.0:1",
                     "http://224.0.0.251:5353"):
        for peer in (lan_peer, local_peer):
            refusal = await endpoint_refusal(endpoint, peer)
            assert refusal and "not a model server" in refusal or (
                refusal and "unspecified address" in refusal), (endpoint, peer)
    for endpoint in ("http://localhost:11434", "http://127.0.0.1:8080", "http://[::1]:1234",
                     "http://127.8.9.10:1"):
        refusal = await endpoint_refusal(endpoint, lan_peer)
        assert refusal and "only works for a participant on the hub's machine" in refusal
        assert await endpoint_refusal(endpoint, local_peer) is None
        assert await endpoint_refusal(endpoint, "::1") is None
        assert await endpoint_refusal(endpoint, "::ffff:127.0.0.1") is None
    assert await endpoint_refusal("http://192.168.1.50:11434", lan_peer) is None
    assert await endpoint_refusal("https://models.example/v1", lan_peer) is None


async def test_join_refuses_the_metadata_address(api: Api) -> None:
    room = await api.create_room()
    status, body = await api.join(room["code"], endpoint="http://169.254.169.254/")
    assert (status, body) == (
        400, {"error": "Invalid endpoint: 169.254.169.254 is a link-local address (where cloud"
                       " metadata lives), not a model server"})


async def test_control_characters_in_join_fields_are_refused(api: Api) -> None:
    room = await api.create_room()
    for field in ("id", "nickname", "model"):
        # CR/LF (header injection), C1's CSI (terminal escapes), a bidi override (text that
        # reads backwards in a terminal or page).
        for bad in ("bad\r\nX-Evil: 1", "bad\x9b31m", "bad\u202egnp.exe"):
            status, body = await api.join(room["code"], **{field: bad})
            assert (status, body) == (
                400, {"error": f"Invalid field: {field} must not contain control characters"})


async def test_a_wrong_password_costs_no_endpoint_lookup(
    api: Api, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resolving a join's endpoint may take a DNS lookup: only for those who may join."""
    lookups: list[str] = []
    policy = api.hub.app[PROXY].policy
    original = policy.join_refusal

    async def counting(endpoint: str, joined_from: str | None) -> str | None:
        lookups.append(endpoint)
        return await original(endpoint, joined_from)

    monkeypatch.setattr(policy, "join_refusal", counting)
    code = (await api.create_room("Secret", password="right"))["code"]
    status, _ = await api.join(code, password="wrong", endpoint="http://model.example:1")
    assert status == 401
    assert lookups == []
    status, _ = await api.join(code, password="right", endpoint="http://10.1.2.3:1")
    assert status == 201
    assert lookups == ["http://10.1.2.3:1"]
