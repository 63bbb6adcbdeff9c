"""What every tool call of one agent session shares: the workspace, the files it has read
(a patch needs them), the audit, and the limits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from gambiarra_desktop.agent.workspace import Workspace
from gambiarra_desktop.execution.audit import AuditLog

MAX_TRACKED_READS = 1000


@dataclass(slots=True)
class ReadLedger:
    """The content hash of each file as this session last read or wrote it. A patch to a
    file the model never read, or that changed since (the user edited it, a command
    rewrote it), is refused: the model would be editing from a picture that is not true."""

    seen: dict[Path, str] = field(default_factory=dict)

    def note(self, path: Path, content: bytes) -> None:
        if path not in self.seen and len(self.seen) >= MAX_TRACKED_READS:
            self.seen.pop(next(iter(self.seen)))
        self.seen[path] = digest(content)

    def unchanged(self, path: Path, content: bytes) -> bool | None:
        """None: never read in this session; else whether it is as it was then."""
        known = self.seen.get(path)
        return None if known is None else known == digest(content)


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(slots=True)
class ToolContext:
    workspace: Workspace
    session_id: str
    peer: str
    audit: AuditLog | None
    bash_timeout_cap_s: float
    bash_max_output_bytes: int
    reads: ReadLedger = field(default_factory=ReadLedger)
