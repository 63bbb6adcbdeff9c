"""The host's yes or no before a terminal session opens, while the desktop app hosts.

Why a desk and not a callback into the GUI: the core must not know Qt, and a request must
end even when nobody answers. ``ask`` waits for :meth:`answer` or the timeout, and a
timeout is a "no" (security rule 4: a pending approval times out as denied). Listeners
are told when a request waits and when it is settled, so a dialog the host did not click
closes itself. Pending requests are bounded: past :data:`MAX_PENDING` the next is refused
at once rather than queued.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from gambiarra_desktop.terminal.session import SessionType

log = logging.getLogger(__name__)

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
    def __init__(self, timeout_s: float = APPROVAL_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._pending: dict[str, tuple[ApprovalRequest, asyncio.Future[bool]]] = {}
        self._listeners: list[tuple[Asked, Settled]] = []

    def subscribe(self, on_asked: Asked, on_settled: Settled) -> Callable[[], None]:
        pair = (on_asked, on_settled)
        self._listeners.append(pair)
        for request, _ in list(self._pending.values()):  # A window opened late still asks.
            self._call(on_asked, request)
        return lambda: self._listeners.remove(pair) if pair in self._listeners else None

    def pending(self) -> list[ApprovalRequest]:
        return [request for request, _ in self._pending.values()]

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(6)

    async def ask(self, request: ApprovalRequest) -> bool:
        """True only when the host allowed it in time; no listener, a full desk, a timeout
        or a cancelled caller all mean no."""
        if not self._listeners or len(self._pending) >= MAX_PENDING:
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[request.id] = (request, future)  # Checked and taken with no await.
        for on_asked, _ in list(self._listeners):
            self._call(on_asked, request)
        try:
            async with asyncio.timeout(self.timeout_s):
                return await asyncio.shield(future)
        except TimeoutError:
            return False
        finally:
            self._settle(request.id, False)

    def answer(self, request_id: str, allow: bool) -> None:
        """The host's answer; an unknown or already settled id is ignored."""
        self._settle(request_id, allow)

    def _settle(self, request_id: str, allow: bool) -> None:
        entry = self._pending.pop(request_id, None)
        if entry is None:
            return
        if not entry[1].done():
            entry[1].set_result(allow)
        for _, on_settled in list(self._listeners):
            self._call(on_settled, request_id)

    @staticmethod
    def _call(listener: Callable[..., None], argument: object) -> None:
        try:
            listener(argument)
        except Exception:  # A broken window must not leave the caller waiting.
            log.exception("approval listener failed")
