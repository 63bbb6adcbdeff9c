"""The chat playground: stream a reply from the room, from any participant, a model name,
or one participant."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from PySide6.QtCore import QObject
from PySide6.QtGui import QTextCursor

from gambiarra_desktop.gui.models import RoomSession
from gambiarra_desktop.gui.room_view import PlaygroundTab
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot

ANY_LABEL = "Any participant (*)"


async def stream_reply(
    base_url: str, model: str, prompt: str
) -> AsyncIterator[str]:
    """The reply's text pieces as the room streams them; errors in the seed format raise."""
    payload = {"model": model, "stream": True,
               "messages": [{"role": "user", "content": prompt}]}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
        f"{base_url}/chat/completions", json=payload
    ) as response:
        if response.status >= 400:
            text = await response.text()
            try:
                message = json.loads(text).get("error", text)
            except ValueError:
                message = text
            if isinstance(message, dict):
                message = message.get("message", str(message))
            raise RuntimeError(str(message))
        async for raw in response.content:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            chunk = json.loads(data)
            if "error" in chunk:
                error = chunk["error"]
                raise RuntimeError(error.get("message", str(error)) if isinstance(error, dict)
                                   else str(error))
            for choice in chunk.get("choices", []):
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece


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

    async def open(self, session: RoomSession) -> None:
        await self._cancel()
        self.session = session
        self.view.output.clear()
        self.view.error.setText("")
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
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s, \
                    s.get(f"{self.session.openai_base_url}/models") as response:
                data: dict[str, Any] = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
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
            async for piece in stream_reply(self.session.openai_base_url, model, prompt):
                cursor = self.view.output.textCursor()
                cursor.movePosition(QTextCursor.MoveOperation.End)
                cursor.insertText(piece)
                self.view.output.setTextCursor(cursor)
        except (RuntimeError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.view.error.setText(str(exc) or type(exc).__name__)
        finally:
            self.view.send_button.setEnabled(True)
            self.view.stop_button.setEnabled(False)
            self._task = None

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
