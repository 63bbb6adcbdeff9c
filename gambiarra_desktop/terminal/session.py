"""What every kind of terminal session offers the manager, whatever it talks to.

The manager (``manager.py``) owns the sessions' ids, count, idle timer and audit; a
session only talks to its shell, SSH server or Telnet device. Output the session produces
goes into its :class:`~gambiarra_desktop.terminal.output_ring.OutputRing` (bounded), which
``GET /v1/terminal/:id/output`` drains, and to ``on_output`` (the app's live view).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

from gambiarra_desktop.execution.result import CommandResult

SessionType = Literal["local", "ssh", "telnet"]
OutputListener = Callable[[str, str], None]
"""(session id, text chunk): called synchronously for every chunk, must not block."""


class TerminalSession(Protocol):
    id: str
    type: SessionType
    target: str
    """What it talks to, for people: "local", "user@host:port", "host:port"."""

    @property
    def connected(self) -> bool: ...

    async def execute(self, command: str, timeout_s: float) -> CommandResult:
        """Run one command to its end (local: a subprocess; SSH: an exec channel). Telnet
        raises :class:`~gambiarra_desktop.terminal.errors.NotSupportedHereError`."""
        ...

    async def send(self, data: str) -> None:
        """Write to the interactive stream (a PTY shell, the SSH shell, the Telnet link)."""
        ...

    def take_output(self) -> list[str]:
        """The chunks produced since the previous call (then forgotten)."""
        ...

    async def close(self) -> None:
        """End it: kill the shell's whole process group, close the connection. Twice is
        harmless."""
        ...
