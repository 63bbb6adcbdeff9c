"""The host's yes or no before a terminal session opens, while the desktop app hosts.

Why a desk and not a callback into the GUI: the core must not know Qt, and a request must
end even when nobody answers. The waiting, the timeout (a "no": security rule 4), the
listeners and the bound live in :mod:`gambiarra_desktop.approval_desk`, shared with the
agent's permission relays; this module says what a terminal request is.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from gambiarra_desktop.approval_desk import Desk
from gambiarra_desktop.terminal.session import SessionType

APPROVAL_TIMEOUT_S = 60.0
MAX_PENDING = 8


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    id: str
    session_type: SessionType
    target: str
    peer: str
    """The caller's socket address (always this machine's: the routes refuse the rest)."""

    @property
    def words(self) -> str:
        kind = {"local": "a local terminal (a shell on this computer)",
                "ssh": f"an SSH session to {self.target}",
                "telnet": f"a Telnet session to {self.target}"}[self.session_type]
        return f"A program on this computer wants to open {kind}."


Asked = Callable[[ApprovalRequest], None]
Settled = Callable[[str], None]


class ApprovalDesk:
    """The host's yes or no to a new terminal session (see :mod:`approval_desk`); with no
    window listening there is nobody to ask, and the answer is no."""

    def __init__(self, timeout_s: float = APPROVAL_TIMEOUT_S) -> None:
        self._desk: Desk[ApprovalRequest, bool] = Desk(timeout_s, MAX_PENDING)

    @property
    def timeout_s(self) -> float:
        return self._desk.timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        self._desk.timeout_s = value

    def subscribe(self, on_asked: Asked, on_settled: Settled) -> Callable[[], None]:
        return self._desk.listen(on_asked, lambda request_id, _allow: on_settled(request_id))

    def pending(self) -> list[ApprovalRequest]:
        return self._desk.pending()

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(6)

    async def ask(self, request: ApprovalRequest) -> bool:
        """True only when the host allowed it in time; no listener, a full desk, a timeout
        or a cancelled caller all mean no."""
        if not self._desk.listened:
            return False
        return await self._desk.wait(request.id, request, full=False, timed_out=False,
                                     gone=False)

    def answer(self, request_id: str, allow: bool) -> None:
        """The host's answer; an unknown or already settled id is ignored."""
        self._desk.settle(request_id, allow)
