"""Persistence of rooms and participants behind a small interface.

The in-memory :class:`~gambiarra_desktop.hub.rooms.RoomRegistry` answers every read; the
store is written through on each change so a restarted hub keeps its rooms, codes and
password hashes. SQLite runs on one dedicated thread: writes stay ordered, and the event
loop (the GUI's, too) never waits on disk.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

from gambiarra_desktop.protocol import ParticipantInfo, ParticipantStatus, Transport

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    host_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    password_hash TEXT,
    creator_secret_hash TEXT,
    idle_since INTEGER
);
CREATE TABLE IF NOT EXISTS participants (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    nickname TEXT NOT NULL,
    model TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    specs TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    transport TEXT NOT NULL DEFAULT 'direct',
    tunnel_token_hash TEXT,
    joined_from TEXT,
    PRIMARY KEY (room_id, id)
);
"""
ADDED_COLUMNS = {
    "participants": {
        "transport": "TEXT NOT NULL DEFAULT 'direct'",
        # The participant secret's SHA-256 (named for the tunnel token, its first use).
        "tunnel_token_hash": "TEXT",
        "joined_from": "TEXT",
    },
    "rooms": {
        "creator_secret_hash": "TEXT",
        "idle_since": "INTEGER",
    },
}
"""Columns added after the first schema, added to older databases when they open."""


@dataclass(frozen=True, slots=True)
class StoredRoom:
    """A room with its secret parts; only the registry ever sees ``password_hash``."""

    id: str
    code: str
    name: str
    host_id: str
    created_at: int
    password_hash: str | None
    creator_secret_hash: str | None = None
    """SHA-256 of the secret ``POST /rooms`` gave its creator, who may delete the room."""


@dataclass(frozen=True, slots=True)
class LoadedRoom:
    room: StoredRoom
    participants: list[ParticipantInfo]
    secret_hashes: dict[str, str]
    joined_from: dict[str, str]
    idle_since: int | None


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def load(self) -> list[LoadedRoom]: ...
    async def save_room(self, room: StoredRoom) -> None: ...
    async def delete_room(self, room_id: str) -> None: ...
    async def set_room_idle_since(self, room_id: str, idle_since: int | None) -> None: ...
    async def save_participant(
        self, room_id: str, participant: ParticipantInfo, secret_hash: str | None,
        joined_from: str | None,
    ) -> None: ...
    async def delete_participant(self, room_id: str, participant_id: str) -> None: ...
    async def update_presence(
        self, room_id: str, participant_id: str, status: ParticipantStatus, last_seen: int
    ) -> None: ...


class SqliteStore:
    """The embedded default store: one SQLite file, accessed from one worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gambiarra-db")
        self._connection: sqlite3.Connection | None = None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the database thread.

        Shielded: a client that disconnects mid-request cancels its handler, and the write
        it started must still land, or memory and disk would disagree.
        """
        loop = asyncio.get_running_loop()

        def call() -> T:
            return work(self._connect())

        return await asyncio.shield(loop.run_in_executor(self._executor, call))

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.path.touch(mode=0o600, exist_ok=True)  # Password hashes: owner only.
            connection = sqlite3.connect(self.path, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.executescript(SCHEMA)
            _add_missing_columns(connection)
            self._connection = connection
        return self._connection

    async def open(self) -> None:
        await self._run(lambda _connection: None)

    async def close(self) -> None:
        def close_connection(connection: sqlite3.Connection) -> None:
            connection.close()
            self._connection = None

        if self._connection is not None:
            await self._run(close_connection)
        self._executor.shutdown(wait=True)

    async def load(self) -> list[LoadedRoom]:
        return await self._run(_load_all)

    async def save_room(self, room: StoredRoom) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO rooms (id, code, name, host_id, created_at,"
                " password_hash, creator_secret_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (room.id, room.code, room.name, room.host_id, room.created_at,
                 room.password_hash, room.creator_secret_hash),
            )
        )

    async def delete_room(self, room_id: str) -> None:
        """The room and (by ``ON DELETE CASCADE``) its participants."""
        await self._run(lambda c: c.execute("DELETE FROM rooms WHERE id = ?", (room_id,)))

    async def set_room_idle_since(self, room_id: str, idle_since: int | None) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE rooms SET idle_since = ? WHERE id = ?", (idle_since, room_id))
        )

    async def save_participant(
        self, room_id: str, participant: ParticipantInfo, secret_hash: str | None,
        joined_from: str | None,
    ) -> None:
        p = participant
        row = (room_id, p["id"], p["nickname"], p["model"], p["endpoint"],
               json.dumps(p["specs"]), json.dumps(p["config"]), p["status"],
               p["joinedAt"], p["lastSeen"], p["transport"], secret_hash, joined_from)
        await self._run(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO participants (room_id, id, nickname, model, endpoint,"
                " specs, config, status, joined_at, last_seen, transport, tunnel_token_hash,"
                " joined_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row
            )
        )

    async def delete_participant(self, room_id: str, participant_id: str) -> None:
        await self._run(
            lambda c: c.execute(
                "DELETE FROM participants WHERE room_id = ? AND id = ?", (room_id, participant_id)
            )
        )

    async def update_presence(
        self, room_id: str, participant_id: str, status: ParticipantStatus, last_seen: int
    ) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE participants SET status = ?, last_seen = ? WHERE room_id = ? AND id = ?",
                (status, last_seen, room_id, participant_id),
            )
        )


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    for table, columns in ADDED_COLUMNS.items():
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for column, declaration in columns.items():
            if column not in present:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def _load_all(connection: sqlite3.Connection) -> list[LoadedRoom]:
    rooms: list[StoredRoom] = []
    idle: dict[str, int | None] = {}
    for *fields, idle_since in connection.execute(
        "SELECT id, code, name, host_id, created_at, password_hash, creator_secret_hash,"
        " idle_since FROM rooms ORDER BY created_at, rowid"
    ):
        rooms.append(StoredRoom(*fields))
        idle[fields[0]] = idle_since
    by_room: dict[str, list[ParticipantInfo]] = {room.id: [] for room in rooms}
    tokens: dict[str, dict[str, str]] = {room.id: {} for room in rooms}
    peers: dict[str, dict[str, str]] = {room.id: {} for room in rooms}
    for row in connection.execute(
        "SELECT room_id, id, nickname, model, endpoint, specs, config, status, joined_at,"
        " last_seen, transport, tunnel_token_hash, joined_from FROM participants"
        " ORDER BY joined_at, rowid"
    ):
        (room_id, pid, nickname, model, endpoint, specs, config, status, joined, seen,
         transport, token_hash, joined_from) = row
        if room_id not in by_room:
            continue
        by_room[room_id].append(
            ParticipantInfo(
                id=pid, nickname=nickname, model=model, endpoint=endpoint,
                specs=_json_object(specs), config=_json_object(config),
                status=cast(ParticipantStatus, status), joinedAt=joined, lastSeen=seen,
                transport=cast(Transport, transport),
            )
        )
        if token_hash:
            tokens[room_id][pid] = token_hash
        if joined_from:
            peers[room_id][pid] = joined_from
    return [LoadedRoom(room, by_room[room.id], tokens[room.id], peers[room.id], idle[room.id])
            for room in rooms]


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
