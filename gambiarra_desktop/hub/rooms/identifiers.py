"""Room codes and ids from a CSPRNG: a guessable code would let strangers join a room."""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Container

from gambiarra_desktop.protocol import ROOM_CODE_ALPHABET, ROOM_CODE_LENGTH

ROOM_ID_ALPHABET = string.ascii_letters + string.digits + "_-"
ROOM_ID_LENGTH = 21  # Same shape as the nanoid ids of the TypeScript hub.
MAX_CODE_ATTEMPTS = 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def new_room_id() -> str:
    return "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(ROOM_ID_LENGTH))


def new_room_code(taken: Container[str]) -> str:
    """A fresh code not in ``taken``. 32**6 codes make a clash rare; the bound keeps it finite."""
    for _ in range(MAX_CODE_ATTEMPTS):
        code = "".join(secrets.choice(ROOM_CODE_ALPHABET) for _ in range(ROOM_CODE_LENGTH))
        if code not in taken:
            return code
    raise RuntimeError("could not find a free room code")


def normalize_code(code: str) -> str:
    """Codes are matched case-insensitively (seed 001)."""
    return code.strip().upper()
