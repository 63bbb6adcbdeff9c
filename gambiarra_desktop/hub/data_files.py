"""Small values the hub makes once and keeps in its data dir (its id, the owner token).

Written with ``O_EXCL`` and the final mode from the start: a secret is never readable by
others, not even between creating and chmod-ing the file, and two hubs starting on one
data dir at once end up with the same value instead of overwriting each other's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], str], mode: int = 0o600) -> str:
    """The file's stripped text; if it is missing or empty, a new ``make()`` written there."""
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = make()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:  # Empty, or another hub on this data dir made it a moment ago.
        existing = path.read_text().strip()
        if existing:
            return existing
        descriptor = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(descriptor, "w") as file:
        file.write(value + "\n")
    return value


def replace_secret_file(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` (owner-only from the first byte), replacing any file
    there in one step: a reader sees the old value or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(value + "\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
