"""Permission relays: a tool call waiting for a person's yes or no.

Two people can answer the same relay: the client that opened the ``/chat`` stream (``POST
/chat/relay/:relayId``) and the desktop app's approval card. The first answer wins; the
other side is told the relay is settled, so a card nobody clicked closes itself. A relay
nobody answers is denied with reason "timed out" after ``timeout_s`` (security rule 4), and
one whose stream went away is settled as denied too: nothing waits forever.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gambiarra_desktop.agent.errors import RelayNotFoundError
from gambiarra_desktop.agent.permissions import Rule
from gambiarra_desktop.approval_desk import Desk

MAX_PENDING = 64
TIMED_OUT = "timed out"
STREAM_CLOSED = "the client went away"


@dataclass(frozen=True, slots=True)
class PermissionRequest:
    relay_id: str
    session_id: str
    tool_call_id: str
    tool: str
    params: Any
    rule: Rule | None
    """What "Always allow" would store; None: this call can only be allowed once."""
    proposed_by: str | None
    """Which machine's model asked for it (the hub's ``X-Gambiarra-*`` headers)."""
    agent_id: str
    workspace: str


@dataclass(frozen=True, slots=True)
class RelayAnswer:
    approved: bool
    always: bool = False
    reason: str | None = None


Asked = Callable[[PermissionRequest], None]
Settled = Callable[[str, RelayAnswer], None]


class RelayDesk:
    def __init__(self, timeout_s: float) -> None:
        self._desk: Desk[PermissionRequest, RelayAnswer] = Desk(timeout_s, MAX_PENDING)

    @property
    def timeout_s(self) -> float:
        return self._desk.timeout_s

    @staticmethod
    def new_id() -> str:
        return "relay_" + secrets.token_hex(8)

    def subscribe(self, on_asked: Asked, on_settled: Settled) -> Callable[[], None]:
        """Tell the app about every relay; those already waiting are told at once."""
        return self._desk.listen(on_asked, on_settled)

    def pending(self) -> list[PermissionRequest]:
        return self._desk.pending()

    async def ask(self, request: PermissionRequest) -> RelayAnswer:
        """The first answer, or a denial on timeout, a full desk or cancellation."""
        return await self._desk.wait(
            request.relay_id, request, timed_out=RelayAnswer(False, reason=TIMED_OUT),
            full=RelayAnswer(False, reason="too many permission requests are waiting"),
            gone=RelayAnswer(False, reason=STREAM_CLOSED))

    def answer(self, relay_id: str, answer: RelayAnswer, session_id: str | None = None) -> None:
        """Settle a waiting relay. ``session_id`` (an HTTP client's) must be the relay's own:
        one session cannot answer another's. Raises :class:`RelayNotFoundError`."""
        request = self._desk.waiting(relay_id)
        if request is None or (session_id is not None and request.session_id != session_id):
            raise RelayNotFoundError
        self._desk.settle(relay_id, answer)
