"""The hub owner's token: made on first run, kept owner-only in the data dir.

Whoever can read the hub's data dir owns the hub (it holds the database too), so the token
lives there: ``gambiarra`` commands and the desktop app on that machine read it, and the
hub keeps only its hash in memory. No default secret exists anywhere.
"""

from __future__ import annotations

from pathlib import Path

from gambiarra_desktop.hub.data_files import read_or_create
from gambiarra_desktop.hub.rooms.room import new_secret

OWNER_TOKEN_FILE = "owner-token"  # noqa: S105 - a file name, not a secret.


def load_or_create_owner_token(data_dir: Path) -> str:
    return read_or_create(data_dir / OWNER_TOKEN_FILE, new_secret, mode=0o600)
