"""Nobody can take over, silence or remove someone else's participant.

The "attacker" connects from 127.0.0.2: another peer address on the loopback network, so
the hub sees two different clients without leaving this machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.protocol import PARTICIPANT_SECRET_HEADER
from tests.conftest import Api

SECRET = PARTICIPANT_SECRET_HEADER


@pytest.fixture
async def other_address() -> AsyncIterator[aiohttp.ClientSession]:
    """A client whose sockets come from 127.0.0.2."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


async def _call(session: aiohttp.ClientSession, hub: HubServer, method: str, path: str,
                payload: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with session.request(method, hub.url + path, json=payload,
                               headers=headers or {}) as response:
        return response.status, await response.json()


async def test_join_reply_carries_a_participant_secret(api: Api) -> None:
    code = (await api.create_room())["code"]
    status, body = await api.join(code)
    assert status == 201
    assert isinstance(body["participantSecret"], str) and len(body["participantSecret"]) >= 32
    assert "participantSecret" not in body["participant"]
    _, listed = await api.call("GET", f"/rooms/{code}/participants")
    assert body["participantSecret"] not in str(listed)


async def test_rejoin_with_a_victims_id_from_elsewhere_is_refused_and_prompts_stay(
    api: Api, other_address: aiohttp.ClientSession,
) -> None:
    async with FakeOpenAIServer(("m",)) as victim, FakeOpenAIServer(("m",)) as attacker:
        code = (await api.create_room())["code"]
        status, _ = await api.join(code, id="victim", model="m", endpoint=victim.url)
        assert status == 201
        hijack = {"id": "victim", "nickname": "Mallory", "model": "m",
                  "endpoint": attacker.url}
        status, body = await _call(other_address, api.hub, "POST", f"/rooms/{code}/join",
                                   hijack)
        assert status == 403, body
        assert "belongs to someone else" in body["error"]
        for _ in range(5):
            status, _ = await api.call("POST", f"/rooms/{code}/v1/chat/completions",
                                       {"model": "m", "messages": []})
            assert status == 200
        assert len(victim.requests) == 5
        assert attacker.requests == []
        _, listed = await api.call("GET", f"/rooms/{code}/participants")
        assert [p["nickname"] for p in listed["participants"]] == ["Alice"]


async def test_leave_and_health_for_someone_else_are_refused(
    api: Api, other_address: aiohttp.ClientSession,
) -> None:
    code = (await api.create_room())["code"]
    await api.join(code, id="victim")
    status, body = await _call(other_address, api.hub, "DELETE", f"/rooms/{code}/leave/victim")
    assert (status, body) == (403, {"error": body["error"]})
    status, _ = await _call(other_address, api.hub, "POST", f"/rooms/{code}/health",
                            {"id": "victim", "loading": True})
    assert status == 403
    _, listed = await api.call("GET", f"/rooms/{code}/participants")
    assert [(p["id"], p["loading"]) for p in listed["participants"]] == [("victim", False)]


async def test_the_secret_works_from_any_address(
    api: Api, other_address: aiohttp.ClientSession,
) -> None:
    """A laptop that changed networks keeps its seat with the secret of its join."""
    code = (await api.create_room())["code"]
    _, joined = await api.join(code, id="roamer")
    secret = {SECRET: joined["participantSecret"]}
    status, _ = await _call(other_address, api.hub, "POST", f"/rooms/{code}/health",
                            {"id": "roamer"}, secret)
    assert status == 200
    payload = {"id": "roamer", "nickname": "Alice", "model": "m2",
               "endpoint": "http://127.0.0.1:9"}
    status, rejoined = await _call(other_address, api.hub, "POST", f"/rooms/{code}/join",
                                   payload, secret)
    assert status == 201 and rejoined["participant"]["model"] == "m2"
    # Every join rotates the secret and re-binds the address: back at the first address,
    # the old secret is void, the new one works.
    status, _ = await _call(api.http, api.hub, "DELETE", f"/rooms/{code}/leave/roamer",
                            headers=secret)
    assert status == 403
    status, _ = await _call(api.http, api.hub, "DELETE", f"/rooms/{code}/leave/roamer",
                            headers={SECRET: rejoined["participantSecret"]})
    assert status == 200


async def test_a_wrong_secret_from_elsewhere_is_refused(
    api: Api, other_address: aiohttp.ClientSession,
) -> None:
    code = (await api.create_room())["code"]
    await api.join(code, id="p")
    status, _ = await _call(other_address, api.hub, "DELETE", f"/rooms/{code}/leave/p",
                            headers={SECRET: "x" * 43})
    assert status == 403


async def test_original_clients_without_a_secret_keep_working_from_their_address(
    api: Api,
) -> None:
    """The TypeScript CLI knows no secret: same machine, same address, same rights."""
    code = (await api.create_room())["code"]
    assert (await api.join(code, id="cli"))[0] == 201
    assert (await api.call("POST", f"/rooms/{code}/health", {"id": "cli"}))[0] == 200
    assert (await api.join(code, id="cli", model="other"))[0] == 201
    assert (await api.call("DELETE", f"/rooms/{code}/leave/cli")) == (200, {"success": True})
    assert (await api.call("DELETE", f"/rooms/{code}/leave/cli"))[0] == 404


async def test_the_binding_survives_a_restart(make_hub: Any, http: aiohttp.ClientSession,
                                              other_address: aiohttp.ClientSession) -> None:
    hub = await make_hub()
    api = Api(http, hub)
    code = (await api.create_room())["code"]
    _, joined = await api.join(code, id="p")
    data_dir = hub.data_dir
    await hub.stop()
    hub = await make_hub(data_dir=data_dir)
    status, _ = await _call(other_address, hub, "POST", f"/rooms/{code}/health", {"id": "p"})
    assert status == 403
    status, _ = await _call(other_address, hub, "POST", f"/rooms/{code}/health", {"id": "p"},
                            {SECRET: joined["participantSecret"]})
    assert status == 200


EVIL_PAGE = {"Origin": "https://evil.example"}


async def test_a_web_page_in_the_victims_browser_cannot_act_for_the_victim(api: Api) -> None:
    """Same address, but the request comes from a page (it has an Origin): the address
    proves nothing then; only the participant secret would."""
    async with FakeOpenAIServer(("m",)) as victim:
        code = (await api.create_room())["code"]
        _, joined = await api.join(code, id="victim", model="m", endpoint=victim.url)
        hijack = {"id": "victim", "nickname": "Page", "model": "m",
                  "endpoint": "http://10.66.66.66:8080"}
        status, _ = await _call(api.http, api.hub, "POST", f"/rooms/{code}/join", hijack,
                                EVIL_PAGE)
        assert status == 403
        status, _ = await _call(api.http, api.hub, "POST", f"/rooms/{code}/health",
                                {"id": "victim", "loading": True}, EVIL_PAGE)
        assert status == 403
        status, _ = await _call(api.http, api.hub, "DELETE", f"/rooms/{code}/leave/victim",
                                headers=EVIL_PAGE)
        assert status == 403
        _, listed = await api.call("GET", f"/rooms/{code}/participants")
        assert [(p["endpoint"], p["loading"]) for p in listed["participants"]] == [
            (victim.url, False)]
        # A page that holds the secret (say, the hub's own page that joined) still may.
        status, _ = await _call(api.http, api.hub, "POST", f"/rooms/{code}/health",
                                {"id": "victim"},
                                {**EVIL_PAGE, SECRET: joined["participantSecret"]})
        assert status == 200


async def test_a_page_on_the_hubs_machine_is_not_local(api: Api) -> None:
    """Otherwise any page opened on the hub's machine could point a participant at the
    machine's loopback services."""
    async with FakeOpenAIServer(("m",)) as canary:
        code = (await api.create_room())["code"]
        payload = {"id": "page", "nickname": "Page", "model": "m", "endpoint": canary.url}
        status, body = await _call(api.http, api.hub, "POST", f"/rooms/{code}/join", payload,
                                   EVIL_PAGE)
        assert status == 400, body
        assert "loopback" in body["error"]
        assert canary.requests == []
