"""Is this SQLite file the hub's own? Asked before anything is written to it.

``CREATE TABLE IF NOT EXISTS`` and ``PRAGMA journal_mode=WAL`` would quietly add our
tables to, and change the journal of, any SQLite file that happens to sit at the
database's path (another program's, or one copied there by mistake). SQLite's header has
a field for exactly this question, ``application_id``: the hub stamps its databases with
its own, and recognises the ones written before it did by their tables' columns.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gambiarra_desktop.hub.rooms.store_errors import ForeignDatabaseError

APPLICATION_ID = 0x47414D42
"""``PRAGMA application_id`` of a hub database: "GAMB" in ASCII."""

FIRST_SCHEMA_COLUMNS = {
    "rooms": {"id", "code", "name", "host_id", "created_at", "password_hash"},
    "participants": {"room_id", "id", "nickname", "model", "endpoint", "specs", "config",
                     "status", "joined_at", "last_seen"},
}
"""The columns every hub database has had, since before the application id was set."""


def check_ownership(connection: sqlite3.Connection, path: Path) -> bool:
    """Raise :class:`ForeignDatabaseError` unless the database is ours or empty.

    Returns whether it still needs our application id (new, or from before it was set);
    reading the header first also surfaces a damaged file as ``SQLITE_NOTADB``.
    """
    application_id = connection.execute("PRAGMA application_id").fetchone()[0]
    if application_id == APPLICATION_ID:
        return False
    if application_id != 0:
        raise ForeignDatabaseError(path, f"its application id is {application_id:#010x}")
    tables = {name for (name,) in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    if not tables:
        return True
    for table, columns in FIRST_SCHEMA_COLUMNS.items():
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if not columns <= present:
            found = ", ".join(repr(name) for name in sorted(tables)[:8])  # Not ours: quoted.
            what = (f"its {table!r} table lacks {', '.join(sorted(columns - present))}"
                    if present else f"it has no {table!r} table")
            raise ForeignDatabaseError(path, f"{what}; its tables: {found}")
    return True


def mark_ours(connection: sqlite3.Connection) -> None:
    connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
