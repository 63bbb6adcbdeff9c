"""The gateway's tables, kept in the hub's own SQLite file and written on its thread.

Model entries, the configuration block, provider settings (base URL and an admin-set API
key: the database file is owner-only) and the admin account (an argon2id hash and a token
epoch that a password change bumps, so older tokens stop working). Values are JSON, as
the API shows them, so a field added later needs no migration.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from gambiarra_desktop.hub.rooms.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_models (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS gateway_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS gateway_users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    token_epoch INTEGER NOT NULL DEFAULT 0
);
"""
CONFIGURATION = "configuration"
PROVIDER_PREFIX = "provider:"


@dataclass(frozen=True, slots=True)
class StoredUser:
    username: str
    role: str
    password_hash: str
    token_epoch: int


class GatewayStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def open(self) -> None:
        await self._store.run(lambda c: c.executescript(SCHEMA))

    async def load_models(self) -> list[dict[str, Any]]:
        rows = await self._store.run(
            lambda c: c.execute("SELECT data FROM gateway_models ORDER BY rowid").fetchall())
        return [value for (text,) in rows if isinstance(value := _loads(text), dict)]

    async def save_model(self, model_id: str, data: dict[str, Any]) -> None:
        text = json.dumps(data)
        await self._store.run(lambda c: c.execute(
            "INSERT INTO gateway_models (id, data) VALUES (?, ?)"
            " ON CONFLICT(id) DO UPDATE SET data = excluded.data", (model_id, text)))

    async def delete_model(self, model_id: str) -> None:
        await self._store.run(
            lambda c: c.execute("DELETE FROM gateway_models WHERE id = ?", (model_id,)))

    async def load_setting(self, name: str) -> dict[str, Any] | None:
        row = await self._store.run(lambda c: c.execute(
            "SELECT value FROM gateway_settings WHERE name = ?", (name,)).fetchone())
        value = _loads(row[0]) if row else None
        return value if isinstance(value, dict) else None

    async def save_setting(self, name: str, value: dict[str, Any]) -> None:
        text = json.dumps(value)
        await self._store.run(lambda c: c.execute(
            "INSERT INTO gateway_settings (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, text)))

    async def load_user(self, username: str) -> StoredUser | None:
        return await self._store.run(lambda c: read_user(c, username))

    async def save_user(self, user: StoredUser) -> None:
        await self._store.run(lambda c: write_user(c, user))


def read_user(connection: sqlite3.Connection, username: str) -> StoredUser | None:
    row = connection.execute(
        "SELECT username, role, password_hash, token_epoch FROM gateway_users"
        " WHERE username = ?", (username,)).fetchone()
    if row is None or not isinstance(row[2], str) or not isinstance(row[3], int):
        return None
    return StoredUser(*row)


def write_user(connection: sqlite3.Connection, user: StoredUser) -> None:
    connection.execute(
        "INSERT INTO gateway_users (username, role, password_hash, token_epoch)"
        " VALUES (?, ?, ?, ?) ON CONFLICT(username) DO UPDATE SET role = excluded.role,"
        " password_hash = excluded.password_hash, token_epoch = excluded.token_epoch",
        (user.username, user.role, user.password_hash, user.token_epoch))


def _loads(text: object) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
