"""Rooms survive a hub restart; participants come back offline until their next health call."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp

from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.config import DATABASE_FILE_NAME
from gambiarra_desktop.hub.rooms.store import SqliteStore
from tests.conftest import Api


async def test_restart_keeps_rooms_codes_and_passwords(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    data_dir = tmp_path / "data"
    async with HubServer(data_dir) as first:
        api = Api(http, first)
        open_room = await api.create_room("Open")
        locked = await api.create_room("Locked", password="hunter2")
        assert (await api.join(open_room["code"], id="alice"))[0] == 201
        assert (await api.join(locked["code"], id="bob", password="hunter2"))[0] == 201
        _, before = await api.call("GET", "/rooms")

    async with HubServer(data_dir) as second:
        api = Api(http, second)
        _, after = await api.call("GET", "/rooms")
        assert after == before
        _, listing = await api.call("GET", f"/rooms/{open_room['code']}/participants")
        assert [(p["id"], p["status"]) for p in listing["participants"]] == [("alice", "offline")]
        assert await api.call("POST", f"/rooms/{open_room['code']}/health", {"id": "alice"}) == (
            200, {"success": True})
        _, listing = await api.call("GET", f"/rooms/{open_room['code']}/participants")
        assert listing["participants"][0]["status"] == "online"
        assert await api.join(locked["code"], id="eve", password="wrong") == (
            401, {"error": "Invalid password"})
        assert (await api.join(locked["code"], id="eve", password="hunter2"))[0] == 201


async def test_database_lives_in_the_data_dir_and_holds_only_hashes(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    data_dir = tmp_path / "data"
    async with HubServer(data_dir) as hub:
        await Api(http, hub).create_room("Locked", password="hunter2")
    database = data_dir / DATABASE_FILE_NAME
    assert database.is_file()
    if os.name == "posix":  # Windows keeps %LOCALAPPDATA% private with ACLs instead.
        assert database.stat().st_mode & 0o077 == 0, "the database holds hashes: owner only"
    content = database.read_bytes()
    assert b"hunter2" not in content
    assert b"$argon2id$" in content


async def test_store_round_trip_and_deletes(tmp_path: Path) -> None:
    from gambiarra_desktop.hub.rooms.store import StoredRoom
    from gambiarra_desktop.protocol import ParticipantInfo

    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.open()
    room = StoredRoom("rid", "ABC234", "Lab", "host", 1, None, "hash-of-creator-secret")
    await store.save_room(room)
    await store.set_room_idle_since("rid", 1234)
    participant = ParticipantInfo(
        id="p", nickname="N", model="m", endpoint="http://h:1", specs={"ram": 8},
        config={"temperature": 0.5}, status="online", joinedAt=10, lastSeen=11,
        transport="tunnel",
    )
    await store.save_participant("rid", participant, "hash-of-token", "10.0.0.7")
    await store.update_presence("rid", "p", "offline", 99)
    await store.close()

    reopened = SqliteStore(tmp_path / "s.sqlite3")
    loaded = await reopened.load()
    assert [entry.room for entry in loaded] == [room]
    assert loaded[0].participants == [{**participant, "status": "offline", "lastSeen": 99}]
    assert loaded[0].secret_hashes == {"p": "hash-of-token"}
    assert loaded[0].joined_from == {"p": "10.0.0.7"}
    assert loaded[0].idle_since == 1234
    await reopened.delete_participant("rid", "p")
    assert (await reopened.load())[0].participants == []
    await reopened.save_participant("rid", participant, None, None)
    await reopened.delete_room("rid")
    assert await reopened.load() == []
    await reopened.close()
