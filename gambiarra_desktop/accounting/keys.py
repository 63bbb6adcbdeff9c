"""``KeyBook``: the hub's API keys, answered from memory and written through to SQLite.

Every keyed request authenticates, so the lookup is a dict read plus one SHA-256 compared
with ``hmac.compare_digest``, with no await: a revocation that has landed in memory is
seen by the very next request. A revocation is stored first and flipped in memory after,
so a key that the DELETE reported revoked is revoked on disk too, even across a crash.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from gambiarra_desktop.accounting.api_keys import (
    BUDGET_PERIODS,
    ApiKey,
    BudgetPeriod,
    hash_key,
    new_key_text,
    parse_key_id,
)
from gambiarra_desktop.accounting.errors import (
    ApiKeyNotFoundError,
    InvalidApiKeyError,
    TooManyKeysError,
)
from gambiarra_desktop.accounting.key_store import KeyStore
from gambiarra_desktop.gateway.errors import InvalidFieldError
from gambiarra_desktop.hub.api.validation import has_control_characters
from gambiarra_desktop.hub.rooms.identifiers import normalize_code

MAX_LIVE_KEYS = 1000
"""Live (unrevoked) keys per hub: ``GET /v1/keys`` lists them whole."""
MAX_REVOKED_KEYS = 1000
"""Revoked keys kept for ``GET /v1/keys``; the oldest beyond this are forgotten (their
ledger rows keep the key's name), or the list would grow with every revocation."""
MAX_NAME = 64
MAX_ROOMS = 64
MAX_RATE = 10**9
MAX_BUDGET = 1_000_000.0
MAX_PRIORITY = 10
FIELDS = ("name", "rpm", "tpm", "budget", "budgetPeriod", "rooms", "priority")

RoomExists = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class NewKey:
    key: ApiKey
    text: str
    """The key itself: returned once by ``POST /v1/keys``, never kept."""


class KeyBook:
    def __init__(self, store: KeyStore, max_live: int = MAX_LIVE_KEYS,
                 clock: Callable[[], float] = time.time,
                 max_revoked: int = MAX_REVOKED_KEYS) -> None:
        self._store = store
        self._max_live = max_live
        self._max_revoked = max_revoked
        self._clock = clock
        self._keys: dict[str, ApiKey] = {}
        self._creating = 0
        self._last_used_ms: dict[str, int] = {}

    async def open(self) -> None:
        await self._store.open()
        self._keys = {key.id: key for key in await self._store.load()}
        await self._purge_revoked()

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones too (the newest 1000: their usage stays readable),
        oldest first."""
        return list(self._keys.values())

    def get(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    def last_used_ms(self, key_id: str) -> int | None:
        """When the key last authenticated (since this hub started)."""
        return self._last_used_ms.get(key_id)

    @property
    def live_count(self) -> int:
        return sum(1 for key in self._keys.values() if not key.revoked)

    async def create(self, body: dict[str, Any], room_exists: RoomExists) -> NewKey:
        """A new key from a ``POST /v1/keys`` body; every field is checked first."""
        fields = checked_fields(body, room_exists)
        # Counted and reserved with no await in between: a burst cannot pass the cap.
        if self.live_count + self._creating >= self._max_live:
            raise TooManyKeysError(self._max_live)
        key_id, text = new_key_text()
        while key_id in self._keys:  # 48 random bits: a clash is rare, never a mix-up.
            key_id, text = new_key_text()
        key = ApiKey(id=key_id, key_hash=hash_key(text),
                     created_at_ms=int(self._clock() * 1000), **fields)
        self._creating += 1
        try:
            await self._store.save(key)
        finally:
            self._creating -= 1
        self._keys[key.id] = key
        return NewKey(key, text)

    async def revoke(self, key_id: str) -> ApiKey:
        key = self._keys.get(key_id)
        if key is None:
            raise ApiKeyNotFoundError(key_id)
        if key.revoked:
            return key
        revoked = replace(key, revoked=True)
        await self._store.save(revoked)
        self._keys[key_id] = revoked
        await self._purge_revoked()
        return revoked

    async def _purge_revoked(self) -> None:
        """Forget the oldest revoked keys beyond the cap. Chosen and dropped from memory
        with no await in between, so concurrent revocations never purge twice; a delete
        that fails on disk is redone at the next start (``open`` purges too)."""
        revoked = [key.id for key in self._keys.values() if key.revoked]
        excess = revoked[:max(0, len(revoked) - self._max_revoked)]
        if not excess:
            return
        for key_id in excess:
            del self._keys[key_id]
            self._last_used_ms.pop(key_id, None)
        await self._store.delete(excess)

    def require_live(self, key_id: str) -> None:
        """Raise :class:`InvalidApiKeyError` when the key was revoked meanwhile."""
        key = self._keys.get(key_id)
        if key is None or key.revoked:
            raise InvalidApiKeyError

    def authenticate(self, text: str) -> ApiKey:
        """The live key whose text this is, or :class:`InvalidApiKeyError`. Synchronous on
        purpose: the caller uses the answer with no await in which a revocation could land."""
        key_id = parse_key_id(text)
        key = self._keys.get(key_id) if key_id is not None else None
        if key is None or not key.matches(text) or key.revoked:
            raise InvalidApiKeyError
        self._last_used_ms[key.id] = int(self._clock() * 1000)
        return key


def checked_fields(body: dict[str, Any], room_exists: RoomExists) -> dict[str, Any]:
    """``ApiKey`` keyword arguments from a request body, or the first bad field named."""
    for name in body:
        if name not in FIELDS:
            raise InvalidFieldError(name, f"unknown field; known: {', '.join(FIELDS)}")
    return {
        "name": _name(body.get("name")),
        "rpm": _optional_int(body, "rpm", 1, MAX_RATE),
        "tpm": _optional_int(body, "tpm", 1, MAX_RATE),
        "budget": _budget(body.get("budget")),
        "budget_period": _period(body.get("budgetPeriod", "month")),
        "rooms": _rooms(body.get("rooms"), room_exists),
        "priority": _optional_int(body, "priority", 0, MAX_PRIORITY) or 0,
    }


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidFieldError("name", "is required: 1-64 printable characters")
    if len(value) > MAX_NAME or not value.isprintable() or has_control_characters(value):
        raise InvalidFieldError("name", "1-64 printable characters")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not _is_int(value) or not low <= value <= high:
        raise InvalidFieldError(name, f"an integer from {low} to {high}, or null")
    return int(value)


def _budget(value: object) -> float | None:
    if value is None:
        return None
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or not 0 <= value <= MAX_BUDGET):
        raise InvalidFieldError("budget", f"USD from 0 to {MAX_BUDGET:.0f}, or null")
    return float(value)


def _period(value: object) -> BudgetPeriod:
    for period in BUDGET_PERIODS:
        if value == period:
            return period
    raise InvalidFieldError("budgetPeriod", f"one of {', '.join(BUDGET_PERIODS)}")


def _rooms(value: object, room_exists: RoomExists) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_ROOMS:
        raise InvalidFieldError("rooms", f"a list of at most {MAX_ROOMS} room codes")
    codes: list[str] = []
    for item in value:
        if not isinstance(item, str) or not room_exists(code := normalize_code(item)):
            shown = item[:16] if isinstance(item, str) else type(item).__name__
            raise InvalidFieldError("rooms", f"no room {shown!r} on this hub")
        if code not in codes:
            codes.append(code)
    return tuple(codes)
