"""Revoked keys stay listed (their usage readable) but not forever: past the cap the
oldest revoked ones are forgotten, in memory and on disk, so ``GET /v1/keys`` and the
``api_keys`` table stop growing with every revocation. Live keys are never purged."""

from __future__ import annotations

from pathlib import Path

import pytest

from gambiarra_desktop.accounting.errors import ApiKeyNotFoundError, InvalidApiKeyError
from gambiarra_desktop.accounting.key_store import KeyStore
from gambiarra_desktop.accounting.keys import MAX_REVOKED_KEYS, KeyBook
from gambiarra_desktop.hub.rooms.store import SqliteStore


def anywhere(_code: str) -> bool:
    return True


async def test_only_the_newest_revoked_keys_are_kept(tmp_path: Path) -> None:
    assert MAX_REVOKED_KEYS == 1000
    store = SqliteStore(tmp_path / "keys.sqlite3")
    await store.open()
    try:
        book = KeyBook(KeyStore(store), max_revoked=3)
        await book.open()
        made = [await book.create({"name": f"k{i}"}, anywhere) for i in range(8)]
        ids = [m.key.id for m in made]
        for key_id in ids[:6]:
            await book.revoke(key_id)
        # The 3 newest revoked and the 2 live ones, in their order.
        assert [k.id for k in book.list()] == ids[3:]
        assert [k.revoked for k in book.list()] == [True, True, True, False, False]
        with pytest.raises(ApiKeyNotFoundError):
            await book.revoke(ids[0])
        with pytest.raises(InvalidApiKeyError):  # Forgotten is still refused.
            book.authenticate(made[0].text)
        assert book.authenticate(made[7].text).id == ids[7]

        # Gone from disk too; a smaller cap at start purges what is over it.
        again = KeyBook(KeyStore(store), max_revoked=3)
        await again.open()
        assert [k.id for k in again.list()] == ids[3:]
        smaller = KeyBook(KeyStore(store), max_revoked=1)
        await smaller.open()
        assert [k.id for k in smaller.list()] == ids[5:]
        assert [k.id for k in await KeyStore(store).load()] == ids[5:]
    finally:
        await store.close()
