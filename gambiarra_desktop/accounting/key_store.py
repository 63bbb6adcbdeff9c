"""The ``api_keys`` table, in the hub's own SQLite file and written on its thread.

One row per key: its id and its record as JSON (like ``gateway/store.py``), so a field
added later needs no migration. Only the key's SHA-256 is stored, never its text.
"""

from __future__ import annotations

import json
from typing import Any

from gambiarra_desktop.accounting.api_keys import BUDGET_PERIODS, ApiKey
from gambiarra_desktop.hub.rooms.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
"""


class KeyStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def open(self) -> None:
        await self._store.run(lambda c: c.executescript(SCHEMA))

    async def load(self) -> list[ApiKey]:
        rows = await self._store.run(
            lambda c: c.execute("SELECT data FROM api_keys ORDER BY rowid").fetchall())
        keys = (key_from_stored(_loads(text)) for (text,) in rows)
        return [key for key in keys if key is not None]

    async def save(self, key: ApiKey) -> None:
        key_id, text = key.id, json.dumps(key_to_stored(key))
        await self._store.run(lambda c: c.execute(
            "INSERT INTO api_keys (id, data) VALUES (?, ?)"
            " ON CONFLICT(id) DO UPDATE SET data = excluded.data", (key_id, text)))


    async def delete(self, key_ids: list[str]) -> None:
        rows = [(key_id,) for key_id in key_ids]
        await self._store.run(lambda c: c.executemany("DELETE FROM api_keys WHERE id = ?", rows))


def key_to_stored(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "keyHash": key.key_hash, "rpm": key.rpm,
            "tpm": key.tpm, "budget": key.budget, "budgetPeriod": key.budget_period,
            "rooms": list(key.rooms), "priority": key.priority,
            "createdAt": key.created_at_ms, "revoked": key.revoked}


def key_from_stored(data: Any) -> ApiKey | None:
    """A stored record, or ``None`` for one that is damaged (skipped, never half-trusted)."""
    if not isinstance(data, dict):
        return None
    try:
        key_id, name, key_hash = data["id"], data["name"], data["keyHash"]
        rooms = data.get("rooms") or []
        period = data.get("budgetPeriod", "month")
        if not (isinstance(key_id, str) and isinstance(name, str) and isinstance(key_hash, str)
                and isinstance(rooms, list) and all(isinstance(r, str) for r in rooms)
                and period in BUDGET_PERIODS):
            return None
        budget = data.get("budget")
        return ApiKey(id=key_id, name=name, key_hash=key_hash,
                      rpm=_int_or_none(data.get("rpm")), tpm=_int_or_none(data.get("tpm")),
                      budget=float(budget) if isinstance(budget, (int, float)) else None,
                      budget_period=period, rooms=tuple(rooms),
                      priority=_int_or_none(data.get("priority")) or 0,
                      created_at_ms=_int_or_none(data.get("createdAt")) or 0,
                      revoked=data.get("revoked") is True)
    except (KeyError, TypeError, ValueError):
        return None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _loads(text: object) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
