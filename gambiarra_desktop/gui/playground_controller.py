"""The chat playground: a conversation with the room (any participant, a model name, or one
participant), or with the hub's gateway (``auto``), showing who answered and how fast.

The turns live in a :class:`Conversation` and go out as ``messages`` each time. Each room
request carries an ``X-Request-Id``; the room's events (``bridge.room_event``, followed by the
room controller for the open room) name it in ``llm:queued`` and ``queue:changed``, so the
tab can say "waiting for a free model (position N)" while the hub holds the request."""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from typing import Any

import aiohttp
from PySide6.QtCore import QObject
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QLabel

from gambiarra_desktop.gateway_client import GatewayApiError, GatewayClient
from gambiarra_desktop.gui.models import RoomSession
from gambiarra_desktop.gui.playground_view import PlaygroundTab
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError
from gambiarra_desktop.protocol import MODEL_HEADER, PARTICIPANT_HEADER
from gambiarra_desktop.room_chat import Conversation, ReplyStats, new_request_id, stream_reply

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
        self.conversation = Conversation()
        self._notes: list[str] = []
        """Per turn: who answered and how fast (assistant turns), or "" (user turns)."""
        self._nicknames: dict[str, tuple[str, str]] = {}
        """Participant id -> (nickname, model), from the room's model list."""
        self._request_id = ""
        """The request in flight, as named in the room's queue events; "" when none."""
        view.send_clicked.connect(self.send)
        view.stop_clicked.connect(self.stop)
        view.new_chat_clicked.connect(self.new_chat)
        view.refresh_button.clicked.connect(self.refresh)
        view.model_combo.currentIndexChanged.connect(self._on_model_changed)

    def _on_model_changed(self, _index: int) -> None:
        self.view.cross_check.setVisible(self.view.model_combo.currentData() == GATEWAY_AUTO)

    async def leave(self) -> None:
        """Forget the previous room: its reply in flight and what it showed."""
        await self._cancel()
        self.session = None
        self._clear()

    async def open(self, session: RoomSession) -> None:
        """Fill the model picker; a prompt sent meanwhile is not disturbed."""
        self.session = session
        await self._refresh()

    @tracked_slot()
    async def refresh(self) -> None:
        await self._refresh()

    async def _refresh(self) -> None:
        """Ask first, then fill the picker in one step with no await in between: two
        refreshes at once (the room opening, a click on Refresh) once interleaved their
        items and listed every choice twice."""
        session = self.session
        choices: list[tuple[str, object]] = [(ANY_LABEL, "*")]
        problem = ""
        if session is not None:
            try:
                async with HubClient(session.hub_url, timeout_s=5,
                                     room_password=session.password or None) as hub:
                    data: dict[str, Any] = await hub.request(
                        "GET", f"/rooms/{session.code}/v1/models")
            except (HubApiError, HubUnreachableError) as exc:
                problem = f"Cannot list the room's models: {exc}"
            else:
                if await self._has_gateway(session.hub_url):
                    choices.append((AUTO_LABEL, GATEWAY_AUTO))
                choices += self._room_choices(data)
        if session is not self.session:
            return  # Another room opened meanwhile: its own refresh fills the picker.
        if problem:
            self.view.error.setText(problem)
        combo = self.view.model_combo
        current = combo.currentData()
        combo.clear()
        for label, value in choices:
            combo.addItem(label, value)
        if current is not None:
            index = combo.findData(current)
            if index >= 0:
                combo.setCurrentIndex(index)

    def _room_choices(self, data: dict[str, Any]) -> list[tuple[str, object]]:
        choices: list[tuple[str, object]] = []
        for entry in data.get("data", []):
            info = entry.get("gambiarra")
            # The hub lists each participant (by id), then each model name; a model-name
            # entry carries its first server's block too, so it is told by its id.
            if info and entry["id"] != info.get("model"):
                self._nicknames[str(entry["id"])] = (str(info["nickname"]), str(info["model"]))
                choices.append((f"{info['nickname']} ({info['model']})", entry["id"]))
            else:
                owners = entry.get("owned_by")
                served = f" (served by {owners})" if isinstance(owners, str) and owners else ""
                choices.append((f"Model: {entry['id']}{served}", entry["id"]))
        return choices

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
        _say(self.view.answered_by, "")
        _say(self.view.reply_numbers, "")
        self.view.prompt.clear()
        self.conversation.add("user", prompt)
        self._notes.append("")
        self._render_transcript()
        self._set_busy(True)
        if chosen == GATEWAY_AUTO:
            run = self._run_auto(self.view.cross_check.isChecked())
        else:
            run = self._run(str(chosen or "*"))
        self._task = self.tasks.spawn(run)

    @tracked_slot()
    async def new_chat(self) -> None:
        """Forget the conversation (a reply in flight is stopped first)."""
        await self._cancel()
        self._clear()

    def on_room_event(self, name: str, data: Any) -> None:
        """Our request's place in the room's queue, from the room's live events."""
        rid = self._request_id
        if not rid or not isinstance(data, dict):
            return
        if name == "llm:queued" and data.get("requestId") == rid:
            self._show_place(data.get("position"))
        elif name == "queue:changed" and isinstance(data.get("positions"), dict):
            self._show_place(data["positions"].get(rid))
        elif name == "llm:request" and data.get("requestId") == rid:
            self._show_place(None)

    def _show_place(self, position: object) -> None:
        if isinstance(position, int) and position > 0:
            self.view.waiting.setText(f"Waiting for a free model (position {position})…")
            self.view.waiting.show()
        else:
            self.view.waiting.hide()

    async def _run(self, model: str) -> None:
        assert self.session is not None  # noqa: S101 - checked in send().
        stats = ReplyStats()
        reply: list[str] = []
        self._request_id = new_request_id()
        try:
            async with aiohttp.ClientSession() as http:
                async for piece in stream_reply(
                        http, self.session.hub_url, self.session.code, self.session.password,
                        model, list(self.conversation.messages), self._request_id, stats):
                    if not reply:
                        self._show_place(None)
                        _say(self.view.answered_by, self._who(stats))
                    reply.append(piece)
                    self._append(piece)
        except (HubApiError, HubUnreachableError, ValueError) as exc:
            self.view.error.setText(str(exc) or type(exc).__name__)
        finally:
            self._request_id = ""
            self._show_place(None)
            self._finish_turn("".join(reply), self._who(stats), stats.numbers_text()
                              if reply else "")
            self._task = None

    async def _run_auto(self, cross_check: bool) -> None:
        """One whole answer from the gateway (not streamed: a cross-checked answer is held
        until its verdict anyway), then who answered and what the reviewer said."""
        assert self.session is not None  # noqa: S101 - checked in send().
        body: dict[str, Any] = {"model": "auto", "messages": list(self.conversation.messages)}
        if cross_check:
            body["crossCheck"] = True
        started = time.monotonic()
        text, who, numbers = "", "", ""
        try:
            async with GatewayClient(self.session.hub_url) as gateway:
                data, headers = await gateway.chat(body)
            choices = data.get("choices")
            first = choices[0] if isinstance(choices, list) and choices else {}
            message = first.get("message") if isinstance(first, dict) else None
            text = str(message.get("content") or "") if isinstance(message, dict) else ""
            self._append(text)
            who = answered_by_text(data, headers)
            _say(self.view.answered_by, who)
            numbers = auto_numbers_text(data, time.monotonic() - started)
        except GatewayApiError as exc:
            self.view.error.setText(
                f"{exc.message}: {exc.details}" if exc.details else exc.message)
        finally:
            self._finish_turn(text, who, numbers)
            self._task = None

    def _finish_turn(self, reply: str, who: str, numbers: str) -> None:
        """Keep the reply as the assistant's turn; with no reply (an error, or stopped
        before a word), the unanswered prompt goes back to the prompt box instead."""
        self._set_busy(False)
        _say(self.view.reply_numbers, numbers)
        if reply:
            self.conversation.add("assistant", reply)
            self._notes.append(" · ".join(part for part in (who, numbers) if part))
        elif self.conversation.messages and self.conversation.messages[-1]["role"] == "user":
            prompt = self.conversation.messages.pop()["content"]
            self._notes.pop()
            if not self.view.prompt.toPlainText().strip():
                self.view.prompt.setPlainText(prompt)
            self._render_transcript()

    def _who(self, stats: ReplyStats) -> str:
        if not stats.participant_id:
            return ""
        nickname, model = self._nicknames.get(stats.participant_id,
                                              (stats.participant_id, stats.model))
        return f"Answered by {nickname} ({model or stats.model or 'a model'})"

    def _set_busy(self, busy: bool) -> None:
        if busy and self.view.send_button.hasFocus():
            # Disabling the focused Send would pass focus down the window's chain, to the
            # sidebar's Stop hosting: the prompt is where the next keystroke belongs.
            self.view.prompt.setFocus()
        self.view.stop_button.setEnabled(busy)
        self.view.send_button.setEnabled(not busy)

    def _render_transcript(self) -> None:
        """Every turn so far but the reply streaming below it; replies with their note."""
        blocks = []
        for message, note in zip(self.conversation.messages, self._notes, strict=True):
            who = "You" if message["role"] == "user" else "Reply"
            body = html.escape(message["content"]).replace("\n", "<br>")
            meta = f"<br><small>{html.escape(note)}</small>" if note else ""
            blocks.append(f"<p><b>{who}</b><br>{body}{meta}</p>")
        self.view.transcript.setHtml("".join(blocks))
        self.view.transcript.setVisible(bool(blocks))
        bar = self.view.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _clear(self) -> None:
        self.conversation.clear()
        self._notes.clear()
        self._render_transcript()
        self.view.output.clear()
        self.view.error.setText("")
        _say(self.view.answered_by, "")
        _say(self.view.reply_numbers, "")
        self._show_place(None)

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


def _say(label: QLabel, text: str) -> None:
    """An empty line takes no room: the reply area gets it."""
    label.setText(text)
    label.setVisible(bool(text))


def auto_numbers_text(data: dict[str, Any], seconds: float) -> str:
    """"Whole answer after 1.20 s · 16 tokens" for a gateway answer (not streamed, so no
    first-token time)."""
    usage = data.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    text = f"Whole answer after {seconds:.2f} s"
    if isinstance(tokens, int):
        text += f" · {tokens} tokens · {tokens / seconds if seconds > 0 else 0:.1f} tokens/s"
    return text


def answered_by_text(data: dict[str, Any], headers: dict[str, str]) -> str:
    """ "Answered by room-abc-llama (L0), Alice's machine. Cross-check by …: agree (why)"."""
    model = headers.get(MODEL_HEADER) or str(data.get("model") or "an unnamed model")
    layer = headers.get("X-Gambiarra-Layer")
    text = f"Answered by {model}" + (f" ({layer})" if layer else "")
    participant = headers.get(PARTICIPANT_HEADER)
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
