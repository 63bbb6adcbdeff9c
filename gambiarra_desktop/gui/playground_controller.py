"""The chat playground: stream a reply from the room, from any participant, a model name,
or one participant; or ask the hub's gateway with ``auto`` and show who answered."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QTextCursor

from gambiarra_desktop.gateway_client import GatewayApiError, GatewayClient
from gambiarra_desktop.gui.models import RoomSession
from gambiarra_desktop.gui.playground_view import PlaygroundTab
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError

ANY_LABEL = "Any participant (*)"
AUTO_LABEL = "auto: the hub's gateway picks a model by layer"
GATEWAY_AUTO = ("gateway", "auto")
"""The picker's data for ``auto``: not a string, so no room model name can be taken for it."""


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
        view.model_combo.currentIndexChanged.connect(self._on_model_changed)

    def _on_model_changed(self, _index: int) -> None:
        self.view.cross_check.setVisible(self.view.model_combo.currentData() == GATEWAY_AUTO)

    async def leave(self) -> None:
        """Forget the previous room: its reply in flight and what it showed."""
        await self._cancel()
        self.session = None
        self.view.output.clear()
        self.view.error.setText("")
        self.view.answered_by.setText("")

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
        if await self._has_gateway(self.session.hub_url):
            combo.addItem(AUTO_LABEL, GATEWAY_AUTO)
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

    @staticmethod
    async def _has_gateway(hub_url: str) -> bool:
        """Whether the hub serves the gateway's model list at its root (the hub this app
        hosts does; an older hub answers 404)."""
        try:
            async with GatewayClient(hub_url, timeout_s=5) as gateway:
                await gateway.models()
        except GatewayApiError:
            return False
        return True

    def send(self) -> None:
        prompt = self.view.prompt.toPlainText().strip()
        if self.session is None or not prompt or self._task is not None:
            return
        chosen = self.view.model_combo.currentData()
        self.view.output.clear()
        self.view.error.setText("")
        self.view.answered_by.setText("")
        if chosen == GATEWAY_AUTO:
            run = self._run_auto(prompt, self.view.cross_check.isChecked())
        else:
            run = self._run(str(chosen or "*"), prompt)
        self._task = self.tasks.spawn(run)

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

    async def _run_auto(self, prompt: str, cross_check: bool) -> None:
        """One whole answer from the gateway (not streamed: a cross-checked answer is held
        until its verdict anyway), then who answered and what the reviewer said."""
        assert self.session is not None  # noqa: S101 - checked in send().
        self.view.send_button.setEnabled(False)
        self.view.stop_button.setEnabled(True)
        body: dict[str, Any] = {"model": "auto",
                                "messages": [{"role": "user", "content": prompt}]}
        if cross_check:
            body["crossCheck"] = True
        try:
            async with GatewayClient(self.session.hub_url) as gateway:
                data, headers = await gateway.chat(body)
        except GatewayApiError as exc:
            self.view.error.setText(
                f"{exc.message}: {exc.details}" if exc.details else exc.message)
            return
        finally:
            self.view.send_button.setEnabled(True)
            self.view.stop_button.setEnabled(False)
            self._task = None
        choices = data.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else {}
        message = first.get("message") if isinstance(first, dict) else None
        self._append(str(message.get("content") or "") if isinstance(message, dict) else "")
        self.view.answered_by.setText(answered_by_text(data, headers))

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


def answered_by_text(data: dict[str, Any], headers: dict[str, str]) -> str:
    """ "Answered by room-abc-llama (L0), Alice's machine. Cross-check by …: agree (why)"."""
    model = headers.get("X-Gambiarra-Model") or str(data.get("model") or "an unnamed model")
    layer = headers.get("X-Gambiarra-Layer")
    text = f"Answered by {model}" + (f" ({layer})" if layer else "")
    participant = headers.get("X-Gambiarra-Participant")
    if participant:
        text += f", participant {participant}"
    review = data.get("crossCheck")
    if isinstance(review, dict):
        text += (f". Cross-check by {review.get('reviewer') or 'no reviewer'}:"
                 f" {review.get('verdict', 'unclear')}")
        if review.get("reason"):
            text += f" ({review['reason']})"
    elif headers.get("X-Gambiarra-Cross-Check"):
        text += f". Cross-check: {headers['X-Gambiarra-Cross-Check']}"
    return text + "."
