"""The Terminal page and the approval dialogs, wired to the hosted hub's terminal manager.

The GUI calls the core in-process (``hosted.server.app[TERMINAL]``): no HTTP, no token;
the host at this window is the admin. Sessions made here are ``approved`` (the host
clicked the button), every other one waits for the host's answer in an
:class:`ApprovalDialog`, and no answer is a no (the desk's timeout).

Output arrives through ``CoreBridge.terminal_output`` for every chunk of every session and
is kept per session, bounded to :data:`MAX_OUTPUT_CHARS`. The page never calls
``manager.output()``: that drains the chunks a program reading ``GET .../output`` waits for.

An SSH request refused for an unknown host key leaves the key waiting in the manager; the
page lists those keys and the host trusts one after comparing its fingerprint, so the
program's unchanged request then logs in (no fingerprint to paste into a program).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.gui.approval_dialog import ApprovalDialog
from gambiarra_desktop.gui.bridge import CoreBridge
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.gui.terminal_view import TerminalPage
from gambiarra_desktop.hub.errors import HubError
from gambiarra_desktop.terminal.approvals import ApprovalDesk, ApprovalRequest
from gambiarra_desktop.terminal.manager import TERMINAL, TerminalManager

log = logging.getLogger(__name__)

ACTOR = "desktop app"
"""Who the audit names for what the host does on this page."""
MAX_OUTPUT_CHARS = 200_000
"""Kept per session (at most 8 sessions): a noisy command cannot grow the app forever."""
FLUSH_MS = 30
"""Output is painted at most this often: a flood of chunks is one repaint, not thousands."""
REFRESH_MS = 2000
"""The list is redrawn this often while shown: a shell that exited says so."""
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]"
                      r"|[\x00-\x08\x0b-\x1f\x7f]")


def printable(chunk: str) -> str:
    """A terminal's bytes as plain text: line ends kept, escape codes (colours, titles,
    cursor moves sent by remote shells despite TERM=dumb) and other controls dropped."""
    return _ESCAPES.sub("", chunk.replace("\r\n", "\n"))


def _nothing() -> None:
    """Unsubscribing when no hub is hosted."""


class TerminalController(QObject):
    def __init__(self, view: TerminalPage, bridge: CoreBridge, settings: AppSettings,
                 tasks: TaskTracker) -> None:
        super().__init__()
        self.view = view
        self.settings = settings
        self.tasks = tasks
        self.manager: TerminalManager | None = None
        self.desk: ApprovalDesk | None = None
        self.outputs: dict[str, str] = {}
        self.dialogs: dict[str, ApprovalDialog] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self._painted = ""
        """The session whose output the pane shows."""
        self._unpainted = ""
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(FLUSH_MS)
        self._flush.timeout.connect(self._paint)
        self._refresher = QTimer(self)
        self._refresher.setInterval(REFRESH_MS)
        self._refresher.timeout.connect(self._refresh_if_shown)

        bridge.terminal_output.connect(self.on_output)
        bridge.terminal_sessions.connect(self.refresh)
        bridge.approval_asked.connect(self.on_asked)
        bridge.approval_settled.connect(self.on_settled)
        self._bridge = bridge
        view.enable_toggled.connect(self.set_enabled)
        view.skip_local_toggled.connect(self.set_skip_local)
        view.new_local_clicked.connect(self.new_local)
        view.end_confirmed.connect(self.end)
        view.trust_confirmed.connect(self.trust)
        view.line_submitted.connect(self.send_line)
        view.session_chosen.connect(self.show_session)
        view.set_settings(settings.terminal_enabled, settings.terminal_skip_local_approval)
        view.show_state(hosting=False, enabled=settings.terminal_enabled)
        self._refresher.start()

    # --- the hosted hub --------------------------------------------------------------
    def on_hosting_changed(self, hosted: HostedHub | None) -> None:
        """Attach to the new hub's manager (or to none); the settings apply at once."""
        self._detach()
        if hosted is not None:
            manager = hosted.server.app[TERMINAL]
            manager.enabled = self.settings.terminal_enabled
            manager.ask_for_local = not self.settings.terminal_skip_local_approval
            if manager.approvals is None:  # HostedHub gives one; any hosted hub must ask.
                manager.approvals = ApprovalDesk()
            self.manager, self.desk = manager, manager.approvals
            bridge = self._bridge
            self._unsubscribe = [
                manager.subscribe(bridge.on_terminal_output, bridge.on_terminal_sessions),
                self.desk.subscribe(bridge.on_approval_asked, bridge.on_approval_settled),
            ]
        self.view.error.setText("")
        self.refresh()

    def _detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        desk, self.desk, self.manager = self.desk, None, None
        for request_id, dialog in list(self.dialogs.items()):  # Nobody left to ask: no.
            self.dialogs.pop(request_id, None)
            dialog.settle()
            if desk is not None:
                desk.answer(request_id, False)
        self.outputs.clear()

    def close(self) -> None:
        """The window closes: every open question is answered no, timers stop."""
        self._refresher.stop()
        self._flush.stop()
        self._detach()

    # --- settings --------------------------------------------------------------------
    @tracked_slot(bool)
    async def set_enabled(self, on: bool) -> None:
        self.settings.terminal_enabled = on
        manager = self.manager
        if manager is not None:
            manager.enabled = on  # Off first: nothing new opens while the rest end.
            if not on:
                try:
                    await manager.close_all(ACTOR, "the host turned terminal sessions off")
                except Exception as exc:
                    log.exception("ending the terminal sessions failed")
                    self.view.error.setText(f"Could not end every session: {exc}")
        self.refresh()

    def set_skip_local(self, on: bool) -> None:
        self.settings.terminal_skip_local_approval = on
        if self.manager is not None:
            self.manager.ask_for_local = not on

    # --- sessions --------------------------------------------------------------------
    def refresh(self) -> None:
        manager = self.manager
        self.view.show_state(hosting=manager is not None,
                             enabled=manager is not None and manager.enabled)
        sessions = manager.sessions() if manager is not None else []
        live = {info.id for info in sessions}
        for session_id in list(self.outputs):
            if session_id not in live:
                del self.outputs[session_id]
        self.view.set_sessions(sessions)
        self.view.set_unknown_keys(manager.unknown_host_keys() if manager is not None else [])

    def _refresh_if_shown(self) -> None:
        if self.manager is not None and self.view.isVisible():
            self.refresh()

    @tracked_slot()
    async def new_local(self) -> None:
        manager = self.manager
        if manager is None:
            return
        self.view.error.setText("")
        self.view.new_button.setEnabled(False)
        try:  # The host clicked the button: that is the approval.
            info = await manager.create({"type": "local"}, ACTOR, approved=True)
        except Exception as exc:
            self._failed("Could not open a local session", exc)
            return
        finally:
            self.view.new_button.setEnabled(True)
        self.refresh()
        self.view.select_session(info.id)

    @tracked_slot(str)
    async def send_line(self, line: str) -> None:
        manager, session_id = self.manager, self.view.selected_session()
        if manager is None or not session_id:
            return
        self.view.error.setText("")
        try:
            await manager.send(session_id, line + "\n", ACTOR)
        except Exception as exc:
            self._failed("Could not send", exc)
            return
        if self.view.input.text() == line:  # Unless the host already typed the next one.
            self.view.input.clear()

    @tracked_slot(str)
    async def end(self, session_id: str) -> None:
        manager = self.manager
        if manager is None:
            return
        self.view.error.setText("")
        try:
            await manager.close(session_id, ACTOR)
        except Exception as exc:
            self._failed("Could not end the session", exc)
        self.refresh()

    @tracked_slot(str)
    async def trust(self, fingerprint: str) -> None:
        """The host compared the fingerprint and said yes: the manager writes the key to the
        hub's known hosts (audited) and drops it from the waiting list."""
        manager = self.manager
        if manager is None:
            return
        self.view.error.setText("")
        try:
            await manager.trust_host_key(fingerprint, ACTOR)
        except Exception as exc:
            self._failed("Could not trust the SSH host key", exc)
            return
        self.refresh()

    def _failed(self, what: str, exc: Exception) -> None:
        """In the page's own words, never a traceback: the core's errors say what to do."""
        if isinstance(exc, HubError):
            details = getattr(exc, "details", None)
            text = f"{what}: {exc.message}" + (f" ({details})" if details else "")
        else:
            log.error("%s", what, exc_info=exc)
            text = f"{what}: {exc}"
        self.view.error.setText(text)
        self.refresh()

    # --- output ----------------------------------------------------------------------
    def on_output(self, session_id: str, chunk: str) -> None:
        text = printable(chunk)
        if not text:
            return
        kept = self.outputs.get(session_id, "") + text
        self.outputs[session_id] = kept[-MAX_OUTPUT_CHARS:]
        if session_id == self._painted:
            self._unpainted += text
            if not self._flush.isActive():
                self._flush.start()

    def show_session(self, session_id: str) -> None:
        self._painted, self._unpainted = session_id, ""
        self.view.show_output(self.outputs.get(session_id, ""))

    def _paint(self) -> None:
        text, self._unpainted = self._unpainted, ""
        if not text:
            return
        if self.view.output_chars() + len(text) > MAX_OUTPUT_CHARS * 5 // 4:
            self.view.show_output(self.outputs.get(self._painted, ""))  # Trimmed to the cap.
        else:
            self.view.append_output(text)

    # --- approvals -------------------------------------------------------------------
    def on_asked(self, request: ApprovalRequest) -> None:
        if request.id in self.dialogs or self.desk is None:
            return
        dialog = ApprovalDialog(request, self.view.window())
        dialog.answered.connect(self._on_answered)
        self.dialogs[request.id] = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    def _on_answered(self, request_id: str, allow: bool) -> None:
        self.dialogs.pop(request_id, None)
        if self.desk is not None:
            self.desk.answer(request_id, allow)

    def on_settled(self, request_id: str) -> None:
        """Answered, timed out or withdrawn: its dialog, if still open, goes away."""
        dialog = self.dialogs.pop(request_id, None)
        if dialog is not None:
            dialog.settle()
