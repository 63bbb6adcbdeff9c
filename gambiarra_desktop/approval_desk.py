"""Questions that wait for a person's answer, shared by the terminal's session approvals
and the agent's permission relays.

Why one desk: both must end even when nobody answers (a timeout is a "no": security rule 4),
both let several parties answer (the first answer wins, the others are told it is settled,
so a dialog nobody clicked closes itself), both are bounded (past ``max_pending`` the next
question gets the "full" answer at once rather than queueing), and a listener that raises
must never leave a caller waiting. The answer type is the caller's: a bool for a terminal
session, an approve/always/reason triple for a tool call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

R = TypeVar("R")
A = TypeVar("A")


class Desk(Generic[R, A]):
    def __init__(self, timeout_s: float, max_pending: int) -> None:
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self._pending: dict[str, tuple[R, asyncio.Future[A]]] = {}
        self._listeners: list[tuple[Callable[[R], None], Callable[[str, A], None]]] = []

    def listen(self, on_asked: Callable[[R], None],
               on_settled: Callable[[str, A], None]) -> Callable[[], None]:
        """Be told of every question and every settlement; questions already waiting are
        told at once (a window opened late still asks). Returns the unsubscribe call."""
        pair = (on_asked, on_settled)
        self._listeners.append(pair)
        for request, _ in list(self._pending.values()):
            _call(on_asked, request)
        return lambda: self._listeners.remove(pair) if pair in self._listeners else None

    @property
    def listened(self) -> bool:
        return bool(self._listeners)

    def pending(self) -> list[R]:
        return [request for request, _ in self._pending.values()]

    def waiting(self, request_id: str) -> R | None:
        entry = self._pending.get(request_id)
        return None if entry is None else entry[0]

    async def wait(self, request_id: str, request: R, *, full: A, timed_out: A, gone: A) -> A:
        """The first answer to ``request``; ``full`` when too many wait already,
        ``timed_out`` after :attr:`timeout_s`, ``gone`` when the caller is cancelled."""
        if len(self._pending) >= self.max_pending:
            return full
        future: asyncio.Future[A] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (request, future)  # Checked and taken with no await.
        for on_asked, _ in list(self._listeners):
            _call(on_asked, request)
        answer = gone
        try:
            async with asyncio.timeout(self.timeout_s):
                answer = await asyncio.shield(future)
        except TimeoutError:
            answer = timed_out
        finally:
            self.settle(request_id, answer)
        return answer

    def settle(self, request_id: str, answer: A) -> bool:
        """Answer a waiting question; False when it is unknown or already settled."""
        entry = self._pending.pop(request_id, None)
        if entry is None:
            return False
        if not entry[1].done():
            entry[1].set_result(answer)
        for _, on_settled in list(self._listeners):
            _call(on_settled, request_id, answer)
        return True


def _call(listener: Callable[..., None], *arguments: object) -> None:
    try:
        listener(*arguments)
    except Exception:  # A broken window must not leave the caller waiting.
        log.exception("approval listener failed")
