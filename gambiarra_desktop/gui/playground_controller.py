"""The chat playground: stream a reply from the room, from any participant, a model name,
or one participant."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QTextCursor

from gambiarra_desktop.gui.models import RoomSession
from gambiarra_desktop.gui.room_view import PlaygroundTab
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError

ANY_LABEL = "Any participant (*)"


class PlaygroundController(QObject):
    def __init__(self, view: PlaygroundTab, tasks: TaskTracker) -> None:
        super().__init__()
        self.tasks = tasks
        self.view = view
        self.session: RoomSession | None = None
        self._task: asyncio.Task[None] | None = None
        view.send_clicked.connect(self.send)
        view.stop_clicked.connect(self.stop)
        view.refresh_button.clicked.connect(self.refresh)

    async def leave(self) -> None:
        """Forget the previous room: its reply in flight and what it showed."""
        await self._cancel()
        self.session = None
        self.view.output.clear()
        self.view.error.setText("")

    async def open(self, session: RoomSession) -> None:
        """Fill the model picker; a prompt sent meanwhile is not disturbed."""
        self.session = session
        await self._refresh()

    @tracked_slot()
    async def refresh(self) -> None:
        await self._refresh()

    async def _refresh(self) -> None:
        combo = self.view.model_combo
        current = combo.currentData()
        combo.clear()
        combo.addItem(ANY_LABEL, "*")
        if self.session is None:
            return
        try:
            async with HubClient(self.session.hub_url, timeout_s=5,
                                 room_password=self.session.password or None) as hub:
                data: dict[str, Any] = await hub.request(
                    "GET", f"/rooms/{self.session.code}/v1/models")
        except (HubApiError, HubUnreachableError) as exc:
            self.view.error.setText(f"Cannot list the room's models: {exc}")
            return
        for entry in data.get("data", []):
            info = entry.get("gambiarra")
            if info:
                combo.addItem(f"{info['nickname']} ({info['model']})", entry["id"])
            else:
                combo.addItem(f"Model: {entry['id']}", entry["id"])
        if current is not None:
            index = combo.findData(current)
            if index >= 0:
                combo.setCurrentIndex(index)

    def send(self) -> None:
        prompt = self.view.prompt.toPlainText().strip()
        if self.session is None or not prompt or self._task is not None:
            return
        model = str(self.view.model_combo.currentData() or "*")
        self.view.output.clear()
        self.view.error.setText("")
        self._task = self.tasks.spawn(self._run(model, prompt))

    async def _run(self, model: str, prompt: str) -> None:
        assert self.session is not None  # noqa: S101 - checked in send().
        self.view.send_button.setEnabled(False)
        self.view.stop_button.setEnabled(True)
        try:
            async with HubClient(self.session.hub_url,
                                 room_password=self.session.password or None) as hub:
                async for piece in hub.chat_stream(self.session.code, model, prompt):
                    self._append(piece)
        except (HubApiError, HubUnreachableError, ValueError) as exc:
            self.view.error.setText(str(exc) or type(exc).__name__)
        finally:
            self.view.send_button.setEnabled(True)
            self.view.stop_button.setEnabled(False)
            self._task = None

    def _append(self, piece: str) -> None:
        cursor = self.view.output.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(piece)
        self.view.output.setTextCursor(cursor)

    @tracked_slot()
    async def stop(self) -> None:
        await self._cancel()

    async def _cancel(self) -> None:
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._task = None
