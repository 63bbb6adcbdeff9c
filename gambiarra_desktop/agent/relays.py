"""Permission relays: a tool call waiting for a person's yes or no.

Two people can answer the same relay: the client that opened the ``/chat`` stream (``POST
/chat/relay/:relayId``) and the desktop app's approval card. The first answer wins; the
other side is told the relay is settled, so a card nobody clicked closes itself. A relay
nobody answers is denied with reason "timed out" after ``timeout_s`` (security rule 4), and
one whose stream went away is settled as denied too: nothing waits forever.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gambiarra_desktop.agent.errors import RelayNotFoundError
from gambiarra_desktop.agent.permissions import Rule

log = logging.getLogger(__name__)

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
        self.timeout_s = timeout_s
        self._pending: dict[str, tuple[PermissionRequest, asyncio.Future[RelayAnswer]]] = {}
        self._listeners: list[tuple[Asked, Settled]] = []

    @staticmethod
    def new_id() -> str:
        return "relay_" + secrets.token_hex(8)

    def subscribe(self, on_asked: Asked, on_settled: Settled) -> Callable[[], None]:
        """Tell the app about every relay; those already waiting are told at once."""
        pair = (on_asked, on_settled)
        self._listeners.append(pair)
        for request, _ in list(self._pending.values()):
            _call(on_asked, request)
        return lambda: self._listeners.remove(pair) if pair in self._listeners else None

    def pending(self) -> list[PermissionRequest]:
        return [request for request, _ in self._pending.values()]

    async def ask(self, request: PermissionRequest) -> RelayAnswer:
        """The first answer, or a denial on timeout, a full desk or cancellation."""
        if len(self._pending) >= MAX_PENDING:
            return RelayAnswer(False, reason="too many permission requests are waiting")
        future: asyncio.Future[RelayAnswer] = asyncio.get_running_loop().create_future()
        self._pending[request.relay_id] = (request, future)  # Checked and taken, no await.
        for on_asked, _ in list(self._listeners):
            _call(on_asked, request)
        answer = RelayAnswer(False, reason=STREAM_CLOSED)
        try:
            async with asyncio.timeout(self.timeout_s):
                answer = await asyncio.shield(future)
        except TimeoutError:
            answer = RelayAnswer(False, reason=TIMED_OUT)
        finally:
            self._settle(request.relay_id, answer)
        return answer

    def answer(self, relay_id: str, answer: RelayAnswer, session_id: str | None = None) -> None:
        """Settle a waiting relay. ``session_id`` (an HTTP client's) must be the relay's own:
        one session cannot answer another's. Raises :class:`RelayNotFoundError`."""
        entry = self._pending.get(relay_id)
        if entry is None or (session_id is not None and entry[0].session_id != session_id):
            raise RelayNotFoundError
        self._settle(relay_id, answer)

    def _settle(self, relay_id: str, answer: RelayAnswer) -> None:
        entry = self._pending.pop(relay_id, None)
        if entry is None:
            return
        if not entry[1].done():
            entry[1].set_result(answer)
        for _, on_settled in list(self._listeners):
            _call(on_settled, relay_id, answer)


def _call(listener: Callable[..., None], *arguments: object) -> None:
    try:
        listener(*arguments)
    except Exception:  # A broken window must not leave a tool call waiting.
        log.exception("relay listener failed")
