"""Why the hub's database cannot be opened, as domain errors with a message for people.

``gambiarra serve`` turns each into its own paragraph and exit code, and the desktop
app shows the same text where it says whether hosting started. The raw causes (an
``OSError`` from creating the data dir, a ``sqlite3`` error code) are classified here, in
one place, so a read-only dir is never mistaken for a busy port and a damaged file never
becomes a traceback. Nothing here touches the file: a database we cannot read is kept as
it is, for its owner to look at or move aside.
"""

from __future__ import annotations

import errno
import shlex
import shutil
import sqlite3
from pathlib import Path

LOW_SPACE_BYTES = 1 << 20
"""Below this much free space, an I/O error while opening the database is a full disk."""


class StoreError(Exception):
    """The database cannot be opened or read. ``str()`` is a paragraph for the user."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(self.explain())

    def explain(self) -> str:
        return f"Cannot use the hub's database {self.path}: {self.detail}."


class DataDirNotWritableError(StoreError):
    def explain(self) -> str:
        return (f"Cannot write the hub's data dir {self.path.parent} ({self.detail}). The hub"
                f" keeps its rooms in {self.path.name} there. Make that dir writable, or"
                f" choose another one with --data-dir.")


class DatabaseCorruptError(StoreError):
    def explain(self) -> str:
        return (f"The hub's database {self.path} is damaged or is not a SQLite database"
                f" ({self.detail}). It has been left as it is. To start with an empty"
                f" database, move it aside and start again:\n"
                f"    {_move_aside(self.path)}")


class ForeignDatabaseError(StoreError):
    def explain(self) -> str:
        return (f"The file {self.path} is a SQLite database, but not one of Gambiarra's"
                f" ({self.detail}). It has been left as it is. If it is not needed here,"
                f" move it aside and start again (or choose another --data-dir):\n"
                f"    {_move_aside(self.path)}")


class DiskFullError(StoreError):
    def explain(self) -> str:
        return (f"The disk holding the hub's data dir {self.path.parent} is full"
                f" ({self.detail}). Free some space there, or choose another dir with"
                f" --data-dir, and start again.")


def _move_aside(path: Path) -> str:
    return f"mv {shlex.quote(str(path))} {shlex.quote(f'{path}.bad')}"


_NOT_WRITABLE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST,
                        errno.ELOOP, errno.EISDIR, errno.ENAMETOOLONG}
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def _disk_is_full(path: Path) -> bool:
    for folder in (path.parent, *path.parent.parents):
        try:
            return shutil.disk_usage(folder).free < LOW_SPACE_BYTES
        except OSError:
            continue
    return False


def classify(exc: Exception, path: Path) -> StoreError:
    """The domain error for ``exc``, raised while opening or loading ``path``."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
        if exc.errno in _FULL_ERRNOS:
            return DiskFullError(path, detail)
        if exc.errno in _NOT_WRITABLE_ERRNOS:
            return DataDirNotWritableError(path, detail)
        return StoreError(path, detail)
    if isinstance(exc, sqlite3.DatabaseError):
        name = getattr(exc, "sqlite_errorname", "") or ""
        detail = str(exc)
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return DatabaseCorruptError(path, detail)
        if name.startswith("SQLITE_FULL") or (name.startswith("SQLITE_IOERR")
                                              and _disk_is_full(path)):
            return DiskFullError(path, detail)
        if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
            return DataDirNotWritableError(path, detail)
        if "malformed" in detail or "not a database" in detail:
            return DatabaseCorruptError(path, detail)
        return StoreError(path, detail)
    return StoreError(path, f"{type(exc).__name__}: {exc}")
