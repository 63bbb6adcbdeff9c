"""Rooms end: deleted by their creator or the hub's owner, or expired when idle; and the
hub's caps hold under concurrent requests."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.hub import HubConfig
from gambiarra_desktop.hub.errors import LimitReachedError
from gambiarra_desktop.hub.keys import STORE
from gambiarra_desktop.hub.rooms import lifecycle
from gambiarra_desktop.hub.rooms.identifiers import now_ms
from gambiarra_desktop.hub.rooms.owner_token import OWNER_TOKEN_FILE
from tests.conftest import Api, HubFactory, eventually
from tests.sse_client import SseReader


async def _delete(api: Api, code: str, bearer: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    async with api.http.delete(f"{api.hub.url}/rooms/{code}", headers=headers) as response:
        return response.status, await response.json()


async def test_the_creator_deletes_a_room_with_its_creator_secret(api: Api) -> None:
    status, created = await api.call("POST", "/rooms", {"name": "Temp"})
    assert status == 201
    code, secret = created["room"]["code"], created["creatorSecret"]
    assert secret not in str(await api.call("GET", "/rooms"))
    await api.join(code)
    async with api.http.get(f"{api.hub.url}/rooms/{code}/events") as events:
        reader = SseReader(events)
        assert (await reader.next_event())[0] == "connected"
        for wrong in (None, "", "x" * 43, created["room"]["hostId"]):
            status, body = await _delete(api, code, wrong)
            assert status == 403, wrong
            assert "creator" in body["error"]
        assert await _delete(api, code, secret) == (200, {"success": True})
        name, data = await reader.next_event()
        assert (name, data["code"]) == ("room:deleted", code)
        with pytest.raises(EOFError):  # The deleted room's stream ends after saying so.
            await reader.next_event(within_s=5)
    assert await api.call("GET", f"/rooms/{code}/participants") == (
        404, {"error": "Room not found"})
    assert await _delete(api, code, secret) == (404, {"error": "Room not found"})
    _, listed = await api.call("GET", "/rooms")
    assert listed["rooms"] == []


async def test_the_hub_owner_deletes_any_room_and_the_deletion_lasts(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    hub = await make_hub()
    api = Api(http, hub)
    keep = (await api.create_room("Keep"))["code"]
    gone = (await api.create_room("Gone"))["code"]
    await api.join(gone)
    token_file = hub.data_dir / OWNER_TOKEN_FILE
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert hub.owner_token == token
    assert (await _delete(api, gone, token))[0] == 200
    data_dir = hub.data_dir
    await hub.stop()
    hub = await make_hub(data_dir=data_dir)
    assert hub.owner_token == token  # The same owner after a restart.
    _, listed = await Api(http, hub).call("GET", "/rooms")
    assert [room["code"] for room in listed["rooms"]] == [keep]


async def test_rooms_nobody_is_online_in_expire(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    hub = await make_hub(HubConfig(health_check_interval_s=0.05, participant_timeout_s=0.2,
                                   room_idle_ttl_s=0.4))
    api = Api(http, hub)
    busy = (await api.create_room("Busy"))["code"]
    idle = (await api.create_room("Idle"))["code"]
    await api.join(busy, id="alive")
    registry = hub.registry
    for _ in range(60):  # Keep "alive" online while "Idle" runs out its time.
        await api.call("POST", f"/rooms/{busy}/health", {"id": "alive"})
        if registry.get(idle) is None:
            break
        await asyncio.sleep(0.05)
    assert registry.get(idle) is None
    assert registry.get(busy) is not None


async def test_an_idle_clock_survives_a_restart(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    """A desktop hub restarted every day must still expire rooms idle for a week."""
    hub = await make_hub()
    api = Api(http, hub)
    code = (await api.create_room("Old"))["code"]
    room = hub.registry.get(code)
    assert room is not None and room.idle_since is not None
    week_ago = now_ms() - 8 * 24 * 3600 * 1000
    await hub.app[STORE].set_room_idle_since(room.stored.id, week_ago)
    data_dir = hub.data_dir
    await hub.stop()
    hub = await make_hub(data_dir=data_dir)
    restored = hub.registry.get(code)
    assert restored is not None and restored.idle_since == week_ago
    assert await hub.registry.expire_idle_rooms() == 1
    assert hub.registry.get(code) is None


async def test_concurrent_creations_never_pass_the_room_cap(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    hub = await make_hub(HubConfig(max_rooms=20))
    api = Api(http, hub)

    async def create(i: int) -> int:
        return (await api.call("POST", "/rooms", {"name": f"r{i}", "password": "pw"}))[0]

    statuses = await asyncio.gather(*(create(i) for i in range(60)))
    assert statuses.count(201) == 20
    assert set(statuses) == {201, 429}
    assert len(hub.registry) == 20


async def test_a_burst_of_creations_hashes_only_the_passwords_of_rooms_it_can_make(
    make_hub: HubFactory, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Creations still hashing their password count against the cap: 60 at once on a hub
    with room for 20 spend argon2 time on 20, and the other 40 are refused at once."""
    hashed: list[str] = []
    real_hash = lifecycle.hash_password

    async def counting_hash(password: str) -> str:
        hashed.append(password)
        return await real_hash(password)

    monkeypatch.setattr(lifecycle, "hash_password", counting_hash)
    hub = await make_hub(HubConfig(max_rooms=20, max_rooms_per_address=15))
    api = Api(http, hub)

    async def create(i: int) -> int:
        return (await api.call("POST", "/rooms", {"name": f"r{i}", "password": "pw"}))[0]

    statuses = await asyncio.gather(*(create(i) for i in range(60)))
    assert statuses.count(201) == 15  # The per-address quota, reserved the same way.
    assert len(hashed) == 15
    assert len(hub.registry) == 15
    assert await create(99) == 429  # Nothing left reserved by the finished burst.


async def test_a_hash_still_running_for_a_client_that_left_still_counts(
    make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Leaving does not stop an argon2 thread: until it ends, its creation holds its place,
    so clients that connect, ask and leave cannot keep every hashing thread busy."""
    gate = asyncio.Event()

    async def slow_hash(password: str) -> str:
        await gate.wait()
        return "not-a-real-hash"

    monkeypatch.setattr(lifecycle, "hash_password", slow_hash)
    hub = await make_hub(HubConfig(max_rooms_per_address=2))
    left = [asyncio.create_task(hub.registry.create(f"r{i}", "pw", "10.0.0.9"))
            for i in range(2)]
    await asyncio.sleep(0.01)
    for task in left:
        task.cancel()
    for task in left:
        with pytest.raises(asyncio.CancelledError):
            await task
    with pytest.raises(LimitReachedError):  # Both hashes still run: both still count.
        await hub.registry.create("third", None, "10.0.0.9")
    gate.set()
    await eventually(lambda: not hub.registry._creating)
    created = await hub.registry.create("now", None, "10.0.0.9")
    assert created.room.stored.name == "now"
    assert len(hub.registry) == 1  # The creations that were left made no room.


async def test_concurrent_joins_never_pass_the_participant_cap(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    hub = await make_hub(HubConfig(max_participants_per_room=16))
    api = Api(http, hub)
    code = (await api.create_room())["code"]
    statuses = await asyncio.gather(*(api.join(code, id=f"p{i}") for i in range(80)))
    assert [status for status, _ in statuses].count(201) == 16, [
        (status, body.get("error")) for status, body in statuses if status != 201]
    room = hub.registry.get(code)
    assert room is not None and len(room.participants) == 16
    status, body = statuses[-1]
    assert (status, body["error"]) == (429, "This room already holds its limit of 16"
                                            " participants")


def _from(address: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))


async def test_one_address_cannot_take_every_room(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    hub = await make_hub(HubConfig(max_rooms_per_address=3))
    api = Api(http, hub)
    created = [await api.call("POST", "/rooms", {"name": f"r{i}"}) for i in range(4)]
    assert [status for status, _ in created] == [201, 201, 201, 429]
    assert created[3][1]["error"] == "Your address already holds 3 rooms; delete one first"
    async with _from("127.0.0.2") as other, other.post(
            f"{hub.url}/rooms", json={"name": "mine"}) as response:
        assert response.status == 201
    first = created[0][1]
    assert (await _delete(api, first["room"]["code"], first["creatorSecret"]))[0] == 200
    assert (await api.call("POST", "/rooms", {"name": "again"}))[0] == 201


async def test_one_address_cannot_fill_someone_elses_room(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    hub = await make_hub(HubConfig(max_participants_per_address=2))
    api = Api(http, hub)
    code = (await api.create_room())["code"]
    assert (await api.join(code, id="a"))[0] == 201
    assert (await api.join(code, id="b"))[0] == 201
    assert (await api.join(code, id="b"))[0] == 201  # Re-joining a seat takes no new one.
    status, body = await api.join(code, id="c")
    assert (status, body["error"]) == (429, "Your address already holds 2 seats in this room")
    # A web page from the same address counts against the same quota.
    async with http.post(f"{hub.url}/rooms/{code}/join", headers={"Origin": "https://x.example"},
                         json={"id": "d", "nickname": "N", "model": "m",
                               "endpoint": "http://10.1.2.3:1"}) as response:
        assert response.status == 429
    async with _from("127.0.0.2") as owner, owner.post(
            f"{hub.url}/rooms/{code}/join",
            json={"id": "owner", "nickname": "O", "model": "m",
                  "endpoint": "http://127.0.0.1:9"}) as response:
        assert response.status == 201
    assert (await api.call("DELETE", f"/rooms/{code}/leave/a"))[0] == 200
    assert (await api.join(code, id="c"))[0] == 201  # The freed seat is usable again.


async def test_participants_offline_for_too_long_leave_their_seat(
    make_hub: HubFactory, http: aiohttp.ClientSession,
) -> None:
    hub = await make_hub(HubConfig(health_check_interval_s=0.05, participant_timeout_s=0.2,
                                   participant_forget_s=0.4))
    api = Api(http, hub)
    code = (await api.create_room())["code"]
    async with http.get(f"{hub.url}/rooms/{code}/events") as events:
        reader = SseReader(events)
        assert (await reader.next_event())[0] == "connected"
        assert (await api.join(code, id="gone"))[0] == 201
        names = [name for name, _ in await reader.events_until("participant:left")]
    assert names == ["participant:joined", "participant:offline", "participant:left"]
    _, listed = await api.call("GET", f"/rooms/{code}/participants")
    assert listed["participants"] == []
