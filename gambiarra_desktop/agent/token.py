"""The agent API's token: made on first run, kept owner-only in the data dir.

The agent runs commands, so a program on this machine must also prove it may (security
rule 2: the loopback check alone would let any local user's program, or a browser
extension, drive it). Whoever can read the data dir owns the agent anyway, so the token
lives there, as the hub's owner token does; the server keeps only its SHA-256 and compares
digests with ``hmac.compare_digest``. It is never printed or logged, only the file's path.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from gambiarra_desktop.hub.data_files import read_or_create
from gambiarra_desktop.hub.rooms.room import new_secret

AGENT_TOKEN_FILE = "agent-token"  # noqa: S105 - a file name, not a secret.


def load_or_create_agent_token(data_dir: Path) -> str:
    return read_or_create(data_dir / AGENT_TOKEN_FILE, new_secret, mode=0o600)


class TokenCheck:
    def __init__(self, token: str) -> None:
        self._digest = hashlib.sha256(token.encode()).digest()

    def matches(self, presented: str | None) -> bool:
        if not presented:
            return False
        return hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), self._digest)
