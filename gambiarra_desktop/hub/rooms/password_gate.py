"""Room passwords at the door: argon2 checks, throttled per client address.

Why a gate rather than a bare ``verify_password`` call:
- argon2 costs tens of milliseconds of CPU on purpose. Fifty concurrent wrong guesses
  once made a legitimate join wait 6 s behind them. So each address may have only a few
  checks running and a few recent failures; beyond that it gets 429 *before* any argon2
  time is spent. Running checks count as failures until they succeed, so a burst that
  arrives all at once is cut off as surely as a slow stream of guesses.
- A password room's chat, models, participants and events need the password on every
  request (``Authorization: Bearer``). A password that verified once is remembered (its
  SHA-256, per room, compared with ``hmac.compare_digest``) so a busy room does not pay
  argon2 per chat request. An address over its failure limit gets 429 *before* that
  lookup, right password or not: otherwise the cheap lookup would answer 200 for the right
  guess among thousands of 429s, an oracle with no argon2 cost.
- Addresses are cheap (IPv6 gives an attacker endless ones), so argon2 work is also capped
  hub-wide: a few checks run at once and a few more may wait; beyond that, 429. A
  legitimate join waits behind a bounded queue instead of hundreds of guesses.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac

from gambiarra_desktop.hub.errors import InvalidPasswordError, TooManyPasswordFailuresError
from gambiarra_desktop.hub.failure_book import FailureBook, client_key
from gambiarra_desktop.hub.rooms.passwords import verify_password
from gambiarra_desktop.hub.rooms.room import Room

REMEMBERED_PER_ROOM = 8
"""Distinct correct passwords remembered per room (one is the rule; a few cover typos
in clients that were fixed later)."""


class PasswordGate:
    def __init__(self, max_failures: int = 5, window_s: float = 60.0,
                 max_running: int = 4, max_waiting: int = 16) -> None:
        self._max_admitted = max_running + max_waiting
        self._admitted = 0
        self._slots = asyncio.Semaphore(max_running)
        self._failures = FailureBook(max_failures, window_s)
        self._running: collections.Counter[str] = collections.Counter()
        self._remembered: dict[str, list[bytes]] = {}

    async def check(self, room: Room, password: str | None, peer: str | None) -> None:
        """Return when ``password`` opens ``room`` (always, for a room without one);
        raise :class:`InvalidPasswordError` or :class:`TooManyPasswordFailuresError`."""
        expected = room.stored.password_hash
        if expected is None:
            return
        if not password:
            raise InvalidPasswordError
        address = client_key(peer)  # An IPv6 host's whole /64 is one client.
        if self._failures.is_locked(address):  # Before the cache: no oracle.
            raise self._too_many(address)
        fingerprint = _fingerprint(room, password)
        if any(hmac.compare_digest(fingerprint, known)
               for known in self._remembered.get(room.code, ())):
            return
        # Checked and counted with no await in between: a burst cannot slip past.
        if self._failures.is_locked(address, self._running[address]):
            raise self._too_many(address)
        if self._admitted >= self._max_admitted:
            raise TooManyPasswordFailuresError(
                "The hub is busy checking passwords; retry in a moment", 1)
        self._running[address] += 1
        self._admitted += 1
        try:
            async with self._slots:
                correct = await verify_password(password, expected)
        finally:
            self._admitted -= 1
            self._running[address] -= 1
            if self._running[address] <= 0:
                del self._running[address]
        if not correct:
            self._failures.record(address)
            raise InvalidPasswordError
        self._failures.clear(address)
        remembered = self._remembered.setdefault(room.code, [])
        if fingerprint not in remembered:
            remembered.append(fingerprint)
            del remembered[:-REMEMBERED_PER_ROOM]

    def _too_many(self, address: str) -> TooManyPasswordFailuresError:
        return TooManyPasswordFailuresError(
            "Too many wrong passwords from this address; retry later",
            self._failures.retry_after_s(address))

    def forget_room(self, room_code: str) -> None:
        """A deleted room's remembered passwords go with it (a later room may reuse the
        code; its fingerprints differ anyway, as they include the room id)."""
        self._remembered.pop(room_code, None)


def _fingerprint(room: Room, password: str) -> bytes:
    """Per room, so one room's password never opens another with the same hash cache."""
    return hashlib.sha256(f"{room.stored.id}\0{password}".encode()).digest()
