"""Every session opened or refused, every command run and every write to a terminal, in
the hub's SQLite file (security rule 6: every execution is audited).

What is kept: time, who (the actor and the socket's peer), what (session id, its type and
target), the command line of an ``execute`` (up to :data:`MAX_COMMAND_CHARS`), and for a
``send`` only its byte count: typed data may be a password. Rows are written before the
caller is answered (awaited, not batched): an audit that can lose the last rows at a crash
is no audit. Rows older than :data:`RETENTION_DAYS` go at open.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Literal

from gambiarra_desktop.hub.rooms.store import Store

AuditAction = Literal["open", "refused", "close", "execute", "send", "trust", "patch"]
MAX_COMMAND_CHARS = 4096
RETENTION_DAYS = 365
DAY_MS = 86_400_000
SCHEMA = """
CREATE TABLE IF NOT EXISTS command_audit (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    actor TEXT NOT NULL,
    peer TEXT NOT NULL,
    action TEXT NOT NULL,
    session_id TEXT,
    session_type TEXT,
    target TEXT,
    command TEXT,
    bytes INTEGER,
    exit_code INTEGER,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS command_audit_ts ON command_audit (ts);
"""
COLUMNS = ("ts", "actor", "peer", "action", "session_id", "session_type", "target",
           "command", "bytes", "exit_code", "outcome")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str
    """"admin" (a token), "desktop app", "agent"..."""
    peer: str
    action: AuditAction
    session_id: str | None = None
    session_type: str | None = None
    target: str | None = None
    command: str | None = None
    bytes: int | None = None
    exit_code: int | None = None
    outcome: str | None = None
    """"ok", "timed out", "truncated", or why it was refused."""


class AuditLog:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def open(self) -> None:
        cutoff = int(time.time() * 1000) - RETENTION_DAYS * DAY_MS

        def prepare(connection: sqlite3.Connection) -> None:
            connection.executescript(SCHEMA)
            connection.execute("DELETE FROM command_audit WHERE ts < ?", (cutoff,))

        await self._store.run(prepare)

    async def record(self, entry: AuditEntry) -> int:
        """Write the row; its id lets :meth:`finish` add how a command ended."""
        command = entry.command[:MAX_COMMAND_CHARS] if entry.command is not None else None
        values = (int(time.time() * 1000), entry.actor, entry.peer, entry.action,
                  entry.session_id, entry.session_type, entry.target, command, entry.bytes,
                  entry.exit_code, entry.outcome)
        sql = (f"INSERT INTO command_audit ({', '.join(COLUMNS)})"  # noqa: S608 - constants
               f" VALUES ({', '.join('?' * len(COLUMNS))})")
        row_id = await self._store.run(lambda c: c.execute(sql, values).lastrowid)
        return int(row_id or 0)

    async def finish(self, row_id: int, exit_code: int | None, outcome: str) -> None:
        """A command's row is written before it runs (a crash mid-command still leaves it);
        its exit code and outcome are filled in here once it ended."""
        await self._store.run(lambda c: c.execute(
            "UPDATE command_audit SET exit_code = ?, outcome = ? WHERE id = ?",
            (exit_code, outcome, row_id)))

    async def rows(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest rows first (tests and the app read them)."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM command_audit ORDER BY id DESC LIMIT ?"  # noqa: S608
        found = await self._store.run(lambda c: c.execute(sql, (limit,)).fetchall())
        return [dict(zip(COLUMNS, row, strict=True)) for row in found]
