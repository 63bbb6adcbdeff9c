"""The hub owner's token: made on first run, kept owner-only in the data dir.

Whoever can read the hub's data dir owns the hub (it holds the database too), so the token
lives there: ``gambiarra`` commands and the desktop app on that machine read it, and the
hub keeps only its hash in memory. No default secret exists anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from gambiarra_desktop.hub.rooms.room import new_secret

OWNER_TOKEN_FILE = "owner-token"  # noqa: S105 - a file name, not a secret.


def load_or_create_owner_token(data_dir: Path) -> str:
    path = data_dir / OWNER_TOKEN_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = new_secret()
    # O_EXCL with 0600 from the start: the token is never readable by others, not even
    # for the moment between creating and chmod-ing the file.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # Another hub on this data dir made it a moment ago.
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    return token
