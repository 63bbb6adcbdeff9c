"""The one folder the agent's file tools may touch, and the check that keeps them in it.

A path the model names is resolved the way the kernel will open it (symlinks followed,
``..`` applied) and must land inside the workspace's own resolved path. Relative paths are
taken from the workspace; an absolute path is accepted only when it already points inside.
Opening then re-checks the file actually opened (``fstat`` against the resolved path), so a
symlink swapped in between the check and the open is caught rather than followed out.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from gambiarra_desktop.agent.errors import ToolError

MAX_PATH_CHARS = 4096


class Workspace:
    def __init__(self, root: Path, off_limits: Sequence[Path] = ()) -> None:
        self.root = root.resolve(strict=True)
        if not self.root.is_dir():
            raise NotADirectoryError(str(root))
        self.off_limits = tuple(path.resolve() for path in off_limits)
        """Folders inside the workspace the file tools still refuse: the agent's own data
        dir (its token, its rules) when someone keeps it in the project folder."""

    def resolve(self, file_path: object) -> Path:
        """The real path of ``file_path`` inside the workspace, or a :class:`ToolError`."""
        if not isinstance(file_path, str) or not file_path.strip():
            raise ToolError("filePath must be a non-empty string")
        if len(file_path) > MAX_PATH_CHARS or "\x00" in file_path:
            raise ToolError("filePath is not a usable path")
        candidate = Path(file_path)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        real = Path(os.path.realpath(candidate))
        if real != self.root and not real.is_relative_to(self.root):
            raise ToolError(f"{file_path} is outside the workspace ({self.root}); only files"
                            " inside it can be used")
        if any(real == limit or real.is_relative_to(limit) for limit in self.off_limits):
            raise ToolError(f"{file_path} is the agent's own data (its token and rules);"
                            " the tools may not use it")
        return real

    def relative(self, path: Path) -> str:
        """How a resolved path is named to the model, the user and the rules."""
        return path.relative_to(self.root).as_posix() or "."

    def read_bytes(self, path: Path, limit: int) -> tuple[bytes, int]:
        """At most ``limit`` bytes of a resolved regular file, and its whole size. The file
        opened must still be the one :meth:`resolve` checked."""
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever;
        # it is refused below as not a regular file (regular files ignore the flag).
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            descriptor = os.open(path, flags)
        except FileNotFoundError as exc:
            raise ToolError(f"{self.relative(path)} does not exist") from exc
        except IsADirectoryError as exc:
            raise ToolError(f"{self.relative(path)} is a folder, not a file") from exc
        except OSError as exc:
            raise ToolError(f"cannot open {self.relative(path)}: {exc.strerror}") from exc
        try:
            opened = os.fstat(descriptor)
            try:
                checked = os.stat(path)
            except OSError as exc:
                raise ToolError(f"{self.relative(path)} changed while being opened") from exc
            if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
                raise ToolError(f"{self.relative(path)} changed while being opened")
            if stat.S_ISDIR(opened.st_mode):
                raise ToolError(f"{self.relative(path)} is a folder, not a file")
            if not stat.S_ISREG(opened.st_mode):
                raise ToolError(f"{self.relative(path)} is not a regular file")
            with os.fdopen(os.dup(descriptor), "rb") as file:
                return file.read(limit), opened.st_size
        finally:
            os.close(descriptor)
