"""Persistence of rooms and participants behind a small interface.

The in-memory :class:`~gambiarra_desktop.hub.rooms.lifecycle.RoomRegistry` answers every read; the
store is written through on each change so a restarted hub keeps its rooms, codes and
password hashes. SQLite runs on one dedicated thread: writes stay ordered, and the event
loop (the GUI's, too) never waits on disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast, get_args

import orjson

from gambiarra_desktop.hub.rooms.store_errors import classify
from gambiarra_desktop.hub.rooms.store_identity import check_ownership, mark_ours
from gambiarra_desktop.protocol import ParticipantInfo, ParticipantStatus, Transport

T = TypeVar("T")
log = logging.getLogger(__name__)

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
    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T: ...


class SqliteStore:
    """The embedded default store: one SQLite file, accessed from one worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gambiarra-db")
        self._connection: sqlite3.Connection | None = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the database thread (the gateway keeps its tables here too, so
        one file holds everything a hub must remember and one thread orders its writes)."""
        try:
            return await self._run(work)
        except (OSError, sqlite3.Error) as exc:
            raise classify(exc, self.path) from exc

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
            try:
                unmarked = check_ownership(connection, self.path)  # Before any write.
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute("PRAGMA foreign_keys=ON")
                connection.executescript(SCHEMA)
                _add_missing_columns(connection)
                if unmarked:
                    mark_ours(connection)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    async def open(self) -> None:
        """Open (or create) the database. Raises a :class:`StoreError` subclass that says
        what is wrong and what to do: a dir that cannot be written, a damaged or foreign
        file (kept as it is), a full disk."""
        try:
            await self._run(lambda _connection: None)
        except (OSError, sqlite3.Error) as exc:
            raise classify(exc, self.path) from exc

    async def close(self) -> None:
        def close_connection(connection: sqlite3.Connection) -> None:
            connection.close()
            self._connection = None

        if self._connection is not None:
            await self._run(close_connection)
        self._executor.shutdown(wait=True)

    async def load(self) -> list[LoadedRoom]:
        """Every room and participant that reads back whole; a bad row is skipped with a
        warning, so one damaged row never keeps the hub and the other rooms down."""
        try:
            return await self._run(lambda connection: _load_all(connection, self.path))
        except (OSError, sqlite3.Error) as exc:
            raise classify(exc, self.path) from exc

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


class BadRowError(ValueError):
    """A stored row that does not read back as a room or participant."""


def _load_all(connection: sqlite3.Connection, path: Path) -> list[LoadedRoom]:
    rooms: list[StoredRoom] = []
    idle: dict[str, int | None] = {}
    for row in connection.execute(
        "SELECT id, code, name, host_id, created_at, password_hash, creator_secret_hash,"
        " idle_since FROM rooms ORDER BY created_at, rowid"
    ):
        try:
            room, idle_since = _room_from_row(row)
        except BadRowError as exc:
            log.warning("Skipped room %r (id %r) stored in %s, and its participants: %s",
                        row[1], row[0], path, exc)
            continue
        rooms.append(room)
        idle[room.id] = idle_since
    codes = {room.id: room.code for room in rooms}
    by_room: dict[str, list[ParticipantInfo]] = {room.id: [] for room in rooms}
    tokens: dict[str, dict[str, str]] = {room.id: {} for room in rooms}
    peers: dict[str, dict[str, str]] = {room.id: {} for room in rooms}
    for row in connection.execute(
        "SELECT room_id, id, nickname, model, endpoint, specs, config, status, joined_at,"
        " last_seen, transport, tunnel_token_hash, joined_from FROM participants"
        " ORDER BY joined_at, rowid"
    ):
        room_id, pid, token_hash, joined_from = row[0], row[1], row[11], row[12]
        if room_id not in by_room:
            continue  # Its room is gone or was skipped (and reported) above.
        try:
            participant = _participant_from_row(row)
            if not isinstance(token_hash, str | None) or not isinstance(joined_from, str | None):
                raise BadRowError("its secret hash or address is not text")
        except BadRowError as exc:
            log.warning("Skipped participant %r of room %r stored in %s: %s",
                        pid, codes[room_id], path, exc)
            continue
        by_room[room_id].append(participant)
        if token_hash:
            tokens[room_id][pid] = token_hash
        if joined_from:
            peers[room_id][pid] = joined_from
    return [LoadedRoom(room, by_room[room.id], tokens[room.id], peers[room.id], idle[room.id])
            for room in rooms]


def _room_from_row(row: tuple[Any, ...]) -> tuple[StoredRoom, int | None]:
    *fields, idle_since = row
    room_id, code, name, host_id, created_at, password_hash, creator_secret_hash = fields
    if not all(isinstance(text, str) for text in (room_id, code, name, host_id)):
        raise BadRowError("its id, code, name or host is not text")
    if not all(isinstance(text, str | None) for text in (password_hash, creator_secret_hash)):
        raise BadRowError("a secret hash is not text")
    if not _is_int(created_at) or not (idle_since is None or _is_int(idle_since)):
        raise BadRowError("a time is not a whole number")
    return StoredRoom(*fields), idle_since


def _participant_from_row(row: tuple[Any, ...]) -> ParticipantInfo:
    (_, pid, nickname, model, endpoint, specs, config, status, joined, seen, transport) = row[:11]
    if not all(isinstance(text, str) for text in (pid, nickname, model, endpoint)):
        raise BadRowError("its id, nickname, model or endpoint is not text")
    if status not in get_args(ParticipantStatus) or transport not in get_args(Transport):
        raise BadRowError(f"unknown status {status!r} or transport {transport!r}")
    if not _is_int(joined) or not _is_int(seen):
        raise BadRowError("a time is not a whole number")
    return ParticipantInfo(
        id=pid, nickname=nickname, model=model, endpoint=endpoint,
        specs=_json_object(specs, "specs"), config=_json_object(config, "config"),
        status=cast(ParticipantStatus, status), joinedAt=joined, lastSeen=seen,
        transport=cast(Transport, transport),
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_object(text: object, field: str) -> dict[str, Any]:
    """A stored JSON object, which must also serialize back out: one nested deeper than
    orjson writes would fail every response that lists the participant."""
    try:
        value = json.loads(text) if isinstance(text, str | bytes) else None
        orjson.dumps(value)
    except (ValueError, RecursionError, orjson.JSONEncodeError) as exc:
        raise BadRowError(f"its {field} is not valid JSON ({type(exc).__name__})") from None
    return value if isinstance(value, dict) else {}
