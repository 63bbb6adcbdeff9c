"""What running one command produced."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommandResult:
    stdout: str
    stderr: str
    exit_code: int
    """The process's exit status; for a process killed by signal N, 128 + N (as a shell
    reports it); -1 when no status could be had (an SSH channel closed without one)."""
    timed_out: bool = False
    truncated: bool = False
    """Output went past the cap; the rest was read and thrown away, never buffered."""
    duration_ms: float = 0.0

    def to_json(self) -> dict[str, object]:
        """The seed's ``result`` object, plus our ``timedOut`` and ``truncated`` flags."""
        return {"stdout": self.stdout, "stderr": self.stderr, "exitCode": self.exit_code,
                "timedOut": self.timed_out, "truncated": self.truncated}
