"""The ``usage`` table: one row per upstream call, in the hub's own SQLite file.

Written through ``Store.run`` on the hub's one database thread (like ``gateway/store.py``),
in batches: one ``executemany`` inside one transaction per batch, because the connection
runs in autocommit mode and a commit per row would make a busy hub wait on its disk.
Indexed on ``ts`` (time windows, the retention sweep) and ``key_id`` (a key reading its
own usage, the budget totals loaded at start).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gambiarra_desktop.hub.rooms.store import Store

if TYPE_CHECKING:
    from gambiarra_desktop.accounting.ledger import UsageRow

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    key_id TEXT,
    key_name TEXT,
    address TEXT NOT NULL,
    person TEXT NOT NULL,
    room TEXT,
    participant TEXT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    layer TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost REAL NOT NULL,
    latency_ms REAL NOT NULL,
    ttft_ms REAL,
    status INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);
CREATE INDEX IF NOT EXISTS usage_key_ts ON usage (key_id, ts);
CREATE INDEX IF NOT EXISTS usage_room_participant ON usage (room, participant);
CREATE TABLE IF NOT EXISTS usage_alerts (
    day TEXT PRIMARY KEY
);
"""
_INSERT = (
    "INSERT INTO usage (ts, key_id, key_name, address, person, room, participant, provider,"
    " model, layer, prompt_tokens, completion_tokens, cost, latency_ms, ttft_ms, status)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class LedgerStore:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.batches_written = 0
        """``executemany`` calls so far: the benchmark and tests read how rows were batched."""

    async def open(self) -> None:
        await self._store.run(lambda c: c.executescript(SCHEMA))

    async def insert(self, rows: Sequence[UsageRow], alert_days: Sequence[str] = ()) -> None:
        values = [_values(row) for row in rows]
        days = [(day,) for day in alert_days]

        def write(connection: sqlite3.Connection) -> None:
            connection.execute("BEGIN")
            try:
                if values:
                    connection.executemany(_INSERT, values)
                if days:
                    connection.executemany(
                        "INSERT OR IGNORE INTO usage_alerts (day) VALUES (?)", days)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

        await self._store.run(write)
        if values:
            self.batches_written += 1

    async def delete_before(self, ts_ms: int) -> int:
        """Rows older than ``ts_ms`` go (the retention sweep); returns how many."""
        def delete(connection: sqlite3.Connection) -> int:
            cursor = connection.execute("DELETE FROM usage WHERE ts < ?", (ts_ms,))
            connection.execute("DELETE FROM usage_alerts WHERE day < date(? / 1000, 'unixepoch')",
                               (ts_ms,))
            return cursor.rowcount

        return await self._store.run(delete)

    async def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read of the usage table (``usage_queries.py`` writes the SQL)."""
        params = tuple(parameters)
        return await self._store.run(lambda c: c.execute(sql, params).fetchall())

    async def alerted(self, day: str) -> bool:
        row = await self._store.run(lambda c: c.execute(
            "SELECT 1 FROM usage_alerts WHERE day = ?", (day,)).fetchone())
        return row is not None


def _values(row: UsageRow) -> tuple[Any, ...]:
    return (row.ts_ms, row.key_id, row.key_name, row.address, row.person, row.room,
            row.participant, row.provider, row.model, row.layer, row.prompt_tokens,
            row.completion_tokens, row.cost, row.latency_ms, row.ttft_ms, row.status)
