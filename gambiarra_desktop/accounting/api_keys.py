"""API keys as the hub stores them: an id, a name, limits, and only a hash of the key.

The key text is ``gk-{id}_{secret}``: the id finds the stored record without scanning, the
secret is 256 random bits. Such a key cannot be guessed, so one SHA-256 is as good as a
slow password hash and costs microseconds per request instead of argon2's milliseconds.
The text is shown once, when the key is made, and never logged or returned again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

KEY_PREFIX = "gk-"
BudgetPeriod = Literal["day", "month"]
BUDGET_PERIODS: tuple[BudgetPeriod, ...] = ("day", "month")
_KEY = re.compile(r"gk-([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    key_hash: str
    rpm: int | None = None
    tpm: int | None = None
    budget: float | None = None
    """USD per ``budget_period``; ``None`` is no budget."""
    budget_period: BudgetPeriod = "month"
    rooms: tuple[str, ...] = ()
    """Room codes this key is limited to; empty: every open room and the gateway root."""
    priority: int = 0
    created_at_ms: int = 0
    revoked: bool = False

    @property
    def prefix(self) -> str:
        """Enough to recognise a key in a list, nothing that helps guess it."""
        return f"{KEY_PREFIX}{self.id}"

    def matches(self, key_text: str) -> bool:
        return hmac.compare_digest(hash_key(key_text), self.key_hash)


def new_key_text() -> tuple[str, str]:
    """A fresh ``(id, key text)``."""
    key_id = secrets.token_hex(6)
    while True:  # token_urlsafe(32) is 43 characters; one with a leading '-' reads badly.
        secret = secrets.token_urlsafe(32)
        if secret[0] != "-":
            return key_id, f"{KEY_PREFIX}{key_id}_{secret}"


def parse_key_id(key_text: str) -> str | None:
    """The id inside a well-formed key text, else ``None``."""
    match = _KEY.fullmatch(key_text)
    return match.group(1) if match else None


def looks_like_key(value: str) -> bool:
    """Bearer values starting ``gk-`` are meant as keys (and fail loudly when wrong); any
    other value is something else (a room password, the openai SDK's placeholder)."""
    return value.startswith(KEY_PREFIX)


def hash_key(key_text: str) -> str:
    return hashlib.sha256(key_text.encode()).hexdigest()
