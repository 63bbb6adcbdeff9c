"""Following one room's live events, through hub restarts and network blips.

Why a module of its own, and without Qt: the follow loop used to retry every 2 s forever
and log each try ("lost the room's live events … retrying" every 2 s for as long as a hub
stayed away), while the room page kept looking live. Here the loop is a small state
machine a test drives without a window:

=============  ===========================================  ==============================
state          entered when                                 then
=============  ===========================================  ==============================
connecting     the feed starts                              live, reconnecting, denied, gone
live           the hub's first event of a stream arrived    reconnecting (stream lost)
               (after ``on_connected`` re-read the room)
reconnecting   no answer, a cut stream, a 5xx, a 429        waits 1 s, 2 s, 4 s … 30 s (±20 %
                                                            jitter), then tries again
denied         401/403: the password is wrong or missing    the loop ends; asking the user
                                                            is the caller's job
gone           404: the room is no more                     the loop ends
=============  ===========================================  ==============================

``on_state`` and the log hear of a *change* of state only, never of each try, so a hub
that stays away for an hour costs one line, and its return one more.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gambiarra_desktop.backoff import Backoff
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError

log = logging.getLogger(__name__)

STREAM_ENDED = "The hub closed the connection: it may be stopping or restarting."


class FeedState(enum.Enum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    DENIED = "denied"
    GONE = "gone"


def is_final(exc: HubApiError) -> FeedState | None:
    """The state a refusal leaves the room in for good (retrying cannot fix it), if any."""
    if exc.status in (401, 403):
        return FeedState.DENIED
    if exc.status == 404:
        return FeedState.GONE
    return None


StateListener = Callable[[FeedState, str], None]
EventListener = Callable[[str, Any], None]
Resync = Callable[[HubClient], Awaitable[None]]


class RoomFeed:
    """One room's event stream for as long as :meth:`run` runs (cancel it to stop)."""

    def __init__(
        self, hub_url: str, code: str, password: Callable[[], str],
        on_event: EventListener, on_state: StateListener,
        on_connected: Resync | None = None, backoff: Backoff | None = None,
    ) -> None:
        """``password()`` is read at each connect, so a password typed again applies to
        the next try. ``on_connected(hub)`` runs once per (re)connection, before the state
        turns live: events missed while away are caught up by re-reading the room."""
        self.hub_url = hub_url
        self.code = code
        self.password = password
        self.on_event = on_event
        self.on_state = on_state
        self.on_connected = on_connected
        self.backoff = backoff or Backoff()
        self.state = FeedState.CONNECTING
        self.tries = 0
        """Connection attempts so far (for tests and the log: how hard it knocked)."""

    def _set(self, state: FeedState, detail: str) -> None:
        if state is self.state:
            return
        previous, self.state = self.state, state
        if state is FeedState.LIVE:
            log.info("room %s: live events %s", self.code,
                     "back" if previous is FeedState.RECONNECTING else "started")
        else:
            log.warning("room %s: live events %s: %s", self.code, state.value, detail)
        self.on_state(state, detail)

    async def run(self) -> FeedState:
        """Follow until the room is denied or gone (returning that state)."""
        failures = 0
        while True:
            self.tries += 1
            try:
                async with HubClient(self.hub_url, room_password=self.password() or None) as hub:
                    async for name, data in hub.events(self.code):
                        if self.state is not FeedState.LIVE:
                            if self.on_connected is not None:
                                await self.on_connected(hub)
                            self._set(FeedState.LIVE, "")
                            failures = 0
                        self.on_event(name, data)
                detail = STREAM_ENDED
            except HubApiError as exc:
                final = is_final(exc)
                if final is not None:
                    self._set(final, str(exc))
                    return final
                detail = str(exc)
            except HubUnreachableError as exc:
                detail = str(exc)
            self._set(FeedState.RECONNECTING, detail)
            await asyncio.sleep(self.backoff.delay(failures))
            failures += 1
