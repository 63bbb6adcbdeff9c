"""The gateway's admin account: no default password, only a hash stored, login throttled.

On first start the hub makes the ``admin`` user with a random password and writes that
password once to ``DATA_DIR/admin-password`` (owner-only); the log names the file, never
the password. ``GAMBIARRA_ADMIN_PASSWORD`` sets the password instead (headless hubs,
tests). A login checks the address's recent failures *before* spending argon2 time, and
counts checks still running as failures, so a burst of guesses is cut off at five.
Addresses are cheap (an IPv6 host owns a /64, counted as one), so argon2 work is also
capped hub-wide: a few checks run and a few wait; beyond that, 429 with no argon2 spent.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from gambiarra_desktop.gateway.errors import (
    InvalidCredentialsError,
    InvalidTokenError,
    LoginLockedError,
)
from gambiarra_desktop.gateway.store import GatewayStore, StoredUser
from gambiarra_desktop.gateway.tokens import TokenClaims, TokenSigner
from gambiarra_desktop.hub.config import DATABASE_FILE_NAME
from gambiarra_desktop.hub.data_files import replace_secret_file
from gambiarra_desktop.hub.errors import RetryLaterError
from gambiarra_desktop.hub.failure_book import FailureBook, client_key
from gambiarra_desktop.hub.rooms.passwords import hash_password, verify_password
from gambiarra_desktop.hub.rooms.store import SqliteStore

log = logging.getLogger(__name__)

ADMIN = "admin"
ADMIN_ROLE = "admin"
ADMIN_PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name.
ADMIN_PASSWORD_ENV = "GAMBIARRA_ADMIN_PASSWORD"  # noqa: S105 - a variable name.
LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW_S = 15 * 60.0
MAX_PASSWORD_CHARS = 1024
MIN_PASSWORD_CHARS = 8
MAX_CHECKS_RUNNING = 4
MAX_CHECKS_WAITING = 16
"""Logins checked at once and waiting, all addresses together (argon2 takes 64 MB and
tens of ms of CPU each, on the thread pool the hub's DNS look-ups share)."""


def password_file_notice(path: Path) -> str:
    """What the log says about a new admin account: where its password is, never what."""
    return f"Created the gateway's admin account; its password is in {path}"


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    username: str
    role: str
    expires_in_s: int


class AdminAccounts:
    def __init__(self, store: GatewayStore, signer: TokenSigner, data_dir: Path | None,
                 max_failures: int = LOGIN_MAX_FAILURES,
                 window_s: float = LOGIN_WINDOW_S) -> None:
        self._store = store
        self._signer = signer
        self._data_dir = data_dir
        self._failures = FailureBook(max_failures, window_s)
        self._running: collections.Counter[str] = collections.Counter()
        self._admitted = 0
        self._slots = asyncio.Semaphore(MAX_CHECKS_RUNNING)
        self._decoy_hash: str | None = None
        self.generated_password: str | None = None
        """The first-run password, when no data dir holds it (tests of a bare app)."""
        self.created_password_file: Path | None = None
        """Set when this start created the admin and wrote its password there, so the
        command line and the window can say where to find it."""

    @property
    def password_file(self) -> Path | None:
        return None if self._data_dir is None else self._data_dir / ADMIN_PASSWORD_FILE

    async def bootstrap(self) -> None:
        """Make sure the admin exists, with the environment's password if one is given."""
        self._decoy_hash = await hash_password(secrets.token_urlsafe(16))
        wanted = os.environ.get(ADMIN_PASSWORD_ENV)
        if wanted and not MIN_PASSWORD_CHARS <= len(wanted) <= MAX_PASSWORD_CHARS:
            log.error("%s is ignored: a password needs %d-%d characters", ADMIN_PASSWORD_ENV,
                      MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS)
            wanted = None
        user = await self._store.load_user(ADMIN)
        if wanted:
            if user is None or not await verify_password(wanted, user.password_hash):
                await self._save_password(user, wanted)
                log.info("admin password set from %s", ADMIN_PASSWORD_ENV)
                if self.password_file is not None:  # A first-run password, now wrong.
                    self.password_file.unlink(missing_ok=True)
            return
        if user is not None:
            return
        password = secrets.token_urlsafe(18)
        path = self.password_file
        if path is None:
            self.generated_password = password
        else:
            replace_secret_file(path, password)  # Before the hash: never a lost password.
        await self._save_password(None, password)
        self.created_password_file = path  # The embedding app logs where (after "listening").

    async def _save_password(self, user: StoredUser | None, password: str) -> None:
        epoch = 0 if user is None else user.token_epoch + 1
        await self._store.save_user(
            StoredUser(ADMIN, ADMIN_ROLE, await hash_password(password), epoch))

    async def login(self, username: object, password: object, address: str | None
                    ) -> LoginResult:
        peer = client_key(address)
        # Checked and counted with no await in between: a burst cannot slip past.
        if self._failures.is_locked(peer, self._running[peer]):
            raise LoginLockedError(self._failures.retry_after_s(peer))
        if self._admitted >= MAX_CHECKS_RUNNING + MAX_CHECKS_WAITING:
            raise RetryLaterError("The hub is busy checking passwords; retry in a moment", 1)
        self._running[peer] += 1
        self._admitted += 1
        try:
            async with self._slots:
                user = await self._check(username, password)
        finally:
            self._admitted -= 1
            self._running[peer] -= 1
            if self._running[peer] <= 0:
                del self._running[peer]
        if user is None:
            self._failures.record(peer)
            raise InvalidCredentialsError
        self._failures.clear(peer)
        token = self._signer.issue(user.username, user.role, user.token_epoch)
        return LoginResult(token, user.username, user.role, self._signer.lifetime_s)

    async def _check(self, username: object, password: object) -> StoredUser | None:
        if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_CHARS:
            return None
        user = await self._store.load_user(ADMIN)
        known = isinstance(username, str) and hmac.compare_digest(
            username.encode(), ADMIN.encode())
        # A wrong name costs the same argon2 time as a wrong password: no name oracle.
        expected = user.password_hash if user is not None and known else self._decoy_hash
        if expected is None or not await verify_password(password, expected):
            return None
        return user if known else None

    async def authenticate(self, token: str) -> TokenClaims:
        """The claims of a valid admin token whose epoch is the account's current one."""
        claims = self._signer.read(token)
        user = await self._store.load_user(claims.username)
        if user is None or user.token_epoch != claims.epoch:
            raise InvalidTokenError("the password changed since this token was issued")
        return claims


async def set_admin_password(data_dir: Path, password: str) -> None:
    """Change the admin password in ``data_dir`` (the hub may be running or not): the new
    hash is stored, every older token stops working, and the first-run password file,
    now stale, is removed."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise ValueError(
            f"the password must have {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters")
    database = SqliteStore(data_dir / DATABASE_FILE_NAME)
    try:
        await database.open()
        store = GatewayStore(database)
        await store.open()
        user = await store.load_user(ADMIN)
        epoch = 0 if user is None else user.token_epoch + 1
        await store.save_user(
            StoredUser(ADMIN, ADMIN_ROLE, await hash_password(password), epoch))
    finally:
        await database.close()
    (data_dir / ADMIN_PASSWORD_FILE).unlink(missing_ok=True)
