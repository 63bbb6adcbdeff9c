"""The door of an open room and its line to the hub, kept true on the room page itself.

Why: a room used to open its tabs whatever the hub said (a wrong password showed a grey
"Invalid password" in the activity log and no field to retype it; an unreachable hub
opened an empty room), and a lost hub was retried every 2 s with a log line per try. Here:

- :meth:`RoomAccess.enter` lets a session in only once the hub answers it: a missing or
  wrong password is asked for again in place (field focused, text selected), a hub that
  does not answer is said in place and retried with backoff. The tabs stay hidden until
  then, and the password that worked is kept in the :class:`RoomSession`, which every tab
  shares, so each of the room's API calls sends it.
- Once in, :class:`~gambiarra_desktop.room_feed.RoomFeed` follows the events; its state
  changes (not its tries) show in the notice bar and the activity log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer

from gambiarra_desktop.backoff import Backoff
from gambiarra_desktop.gui.models import RoomSession
from gambiarra_desktop.gui.room_view import RoomPage
from gambiarra_desktop.gui.tasks import TaskTracker
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError
from gambiarra_desktop.room_feed import FeedState, RoomFeed, is_final

ACCESS_TIMEOUT_S = 5.0
BACK_NOTICE_MS = 5000
"""How long "the hub is back" stays before the notice bar goes away by itself."""
ASK_PASSWORD = "This room has a password: type it to open the room."  # noqa: S105 - a prompt.
WRONG_PASSWORD = "Wrong password for this room: type it again."  # noqa: S105 - a prompt.


class RoomAccess(QObject):
    def __init__(
        self, view: RoomPage, tasks: TaskTracker,
        on_event: Callable[[str, Any], None],
        on_participants: Callable[[list[dict[str, Any]]], None],
        log: Callable[[str], None], backoff: Backoff | None = None,
    ) -> None:
        super().__init__()
        self.view = view
        self.tasks = tasks
        self.on_event = on_event
        self.on_participants = on_participants
        self.log = log
        self.backoff = backoff or Backoff()
        self.session: RoomSession | None = None
        self.feed: RoomFeed | None = None
        self.on_live_changed: Callable[[], None] | None = None
        """Called after each change of the feed's state (the table marks stale rows)."""
        self._typed: asyncio.Queue[str] = asyncio.Queue()
        self._task: asyncio.Task[Any] | None = None
        view.notice.password_entered.connect(self._typed.put_nowait)

    # The door.

    async def enter(self, session: RoomSession) -> bool:
        """True once the hub lets ``session`` in (then the tabs show and the feed runs);
        False when the room was left, or is gone, before that."""
        await self.leave()
        self.session = session
        self._show_tabs(False)
        task = self.tasks.spawn(self._admit(session))
        self._task = task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.cancelled() or task.exception() is not None or not task.result():
            return False
        self._let_in(session)
        return True

    async def _admit(self, session: RoomSession) -> bool:
        """Knock until the hub answers this session's room: ask for the password in place
        when it says no, wait with backoff while it does not answer."""
        password, failures = session.password, 0
        while not self._typed.empty():  # What was typed for an earlier room is not for this.
            self._typed.get_nowait()
        while True:
            try:
                async with HubClient(session.hub_url, timeout_s=ACCESS_TIMEOUT_S,
                                     room_password=password or None) as hub:
                    people = await hub.participants(session.code)
            except HubApiError as exc:
                final = is_final(exc)
                if final is FeedState.GONE:
                    self.view.notice.gone(str(exc))
                    return False
                if final is FeedState.DENIED or (exc.status == 429 and password):
                    # 429: too many wrong guesses; the hub's own words say when to retry.
                    self.view.notice.ask_password(
                        str(exc) if exc.status == 429
                        else WRONG_PASSWORD if password else ASK_PASSWORD)
                    password = await self._typed.get()
                    self.view.notice.checking()
                    continue
                self.view.notice.reconnecting(str(exc))
            except HubUnreachableError as exc:
                self.view.notice.reconnecting(str(exc))
            else:
                session.password = password
                session.has_password = session.has_password or bool(password)
                self.on_participants(people)
                return True
            await asyncio.sleep(self.backoff.delay(failures))
            failures += 1

    def _let_in(self, session: RoomSession) -> None:
        self.view.notice.clear()
        self._show_tabs(True)
        self.view.tabs.setFocus()  # Somewhere harmless: never the sidebar's Stop hosting.
        self.feed = RoomFeed(session.hub_url, session.code, lambda: session.password,
                             self.on_event, self._on_state, self._resync, self.backoff)
        self._task = self.tasks.spawn(self._follow(self.feed, session))

    async def _follow(self, feed: RoomFeed, session: RoomSession) -> None:
        if await feed.run() is FeedState.DENIED and await self._admit_again(session):
            self._let_in(session)

    async def _admit_again(self, session: RoomSession) -> bool:
        self._show_tabs(False)
        return await self._admit(session)

    async def _resync(self, hub: HubClient) -> None:
        """Events missed while away: the room is re-read at each (re)connection."""
        assert self.session is not None  # noqa: S101 - the feed runs only while in a room.
        self.on_participants(await hub.participants(self.session.code))

    # The line.

    @property
    def live(self) -> bool:
        """Whether what the room page shows is current: the feed is connected."""
        return self.feed is not None and self.feed.state is FeedState.LIVE

    def _on_state(self, state: FeedState, detail: str) -> None:
        self._say_state(state, detail)
        if self.on_live_changed is not None:
            self.on_live_changed()

    def _say_state(self, state: FeedState, detail: str) -> None:
        notice = self.view.notice
        if state is FeedState.RECONNECTING:
            notice.reconnecting(detail)
            self.log(f"the hub is not answering; reconnecting ({detail})")
        elif state is FeedState.LIVE and notice.isVisible():
            notice.back()
            self.log("the hub is back; the room is live again")
            QTimer.singleShot(BACK_NOTICE_MS, self._hide_back)
        elif state is FeedState.DENIED:
            self.log(f"the hub asks for this room's password again ({detail})")
        elif state is FeedState.GONE:
            self._show_tabs(False)
            notice.gone(detail)
            self.log(f"this room is no longer on the hub ({detail})")

    def _hide_back(self) -> None:
        if self.feed is not None and self.feed.state is FeedState.LIVE:
            self.view.notice.clear()

    def _show_tabs(self, shown: bool) -> None:
        self.view.tabs.setVisible(shown)

    async def leave(self) -> None:
        task, self._task = self._task, None
        self.feed = None
        self.session = None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # Our own caller is cancelled too (the window is closing).
            except Exception:  # noqa: BLE001, S110 - the tracker logged it already.
                pass
        self.view.notice.clear()
