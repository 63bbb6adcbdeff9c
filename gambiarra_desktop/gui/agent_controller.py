"""The Agent page wired to the agent core, in-process: no HTTP, no token.

The switch starts an :class:`AgentServer` on 127.0.0.1 (4000 unless taken); its
:class:`AgentService` runs the page's own chats, and its relay desk is the same one the HTTP
clients' ``/chat`` streams wait on, so every pending approval, whoever started the chat,
gets a card here (and a tray notice), and the first answer wins on either side. The
page's own chat lives in ``agent_chat.py``. Model calls go to the hub this app hosts
(``auto`` works there) or, when it hosts none, to the address in the settings.

The page's chat needs the switch on: the service and its rules belong to the server, and a
second service beside it would keep a second, diverging copy of the rules file.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from gambiarra_desktop.agent.config import AgentConfig
from gambiarra_desktop.agent.errors import (
    ModelCallError,
    RelayNotFoundError,
)
from gambiarra_desktop.agent.permissions import Rule
from gambiarra_desktop.agent.relays import PermissionRequest, RelayAnswer
from gambiarra_desktop.agent.server import AgentServer
from gambiarra_desktop.agent.workspace import Workspace
from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.gui import agent_text
from gambiarra_desktop.gui.agent_chat import (
    NEEDS_SWITCH,
    NEEDS_WORKSPACE,
    STOP_WAIT_S,
    AgentChat,
    folder_path,
    folder_problem,
)
from gambiarra_desktop.gui.agent_view import OFF_TEXT, AgentPage
from gambiarra_desktop.gui.agent_widgets import ApprovalCard
from gambiarra_desktop.gui.bridge import CoreBridge
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.hub.errors import HubError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REFRESH_MS = 1000
"""The rules list is re-read this often while shown: a client's "always" adds one."""
DENIED_IN_APP = "denied in the app"
PORT_BUSY = ("Port {port} is taken by another program on this computer: choose another port"
             " below and click Use this port.")
HUB_URL_WHY = "This app hosts a hub: the agent uses its gateway, where the model auto works."
APPLY_LATER = ("The agent keeps its current model server and workspace for programs until"
               " nothing runs; turn it off and on to apply now.")


def _nothing() -> None:
    """Unsubscribing when the agent is off."""


class AgentController(QObject):
    def __init__(self, view: AgentPage, bridge: CoreBridge, settings: AppSettings,
                 tasks: TaskTracker, data_dir: Path) -> None:
        super().__init__()
        self.view = view
        self.bridge = bridge
        self.settings = settings
        self.tasks = tasks
        self.data_dir = data_dir
        self.server: AgentServer | None = None
        self.hub_url: str | None = None
        self.chat = AgentChat(view, tasks, self.refresh_rules)
        self._unsubscribe: Callable[[], None] = _nothing
        self._switching = asyncio.Lock()
        self._stopping: asyncio.Future[None] | None = None
        self._refresher = QTimer(self)
        self._refresher.setInterval(REFRESH_MS)
        self._refresher.timeout.connect(self._refresh_if_shown)

        bridge.agent_relay_asked.connect(self.on_asked)
        bridge.agent_relay_settled.connect(self.on_settled)
        view.enable_toggled.connect(self.set_enabled)
        view.port_chosen.connect(self.use_port)
        view.base_url_edited.connect(self.set_base_url)
        view.models_refresh_clicked.connect(self.refresh_models)
        view.model_chosen.connect(self._remember_model)
        view.workspace_edited.connect(self.set_workspace)
        view.prompt_submitted.connect(self.send)
        view.stop_clicked.connect(self.stop)
        view.new_chat_clicked.connect(self.new_chat)
        view.relay_answered.connect(self.answer)
        view.rule_remove_clicked.connect(self.remove_rule)
        view.set_switch(False, settings.agent_port)
        view.set_base_url(settings.agent_base_url, editable=True)
        view.workspace.setText(settings.agent_workspace)
        view.set_models(["auto"], settings.agent_model)
        self._refresher.start()

    # --- the switch ------------------------------------------------------------------
    def restore(self) -> None:
        """At start-up: the agent comes back on if it was on when the app quit."""
        if self.settings.agent_enabled:
            self.tasks.spawn(self._switch(True))

    @tracked_slot(bool)
    async def set_enabled(self, on: bool) -> None:
        """Remembered as it turned out: a start that failed is not "on" next time."""
        await self._switch(on)
        self.settings.agent_enabled = self.server is not None

    @tracked_slot(int)
    async def use_port(self, port: int) -> None:
        self.settings.agent_port = port
        await self._switch(True)
        self.settings.agent_enabled = self.server is not None

    async def _switch(self, on: bool) -> None:
        """One start or stop at a time: a double click cannot start two servers."""
        self.view.switch.setEnabled(False)
        try:
            async with self._switching:
                if on and self.server is None:
                    await self._start()
                elif not on and self.server is not None:
                    await self._stop()
        finally:
            self.view.switch.setEnabled(True)
            self._show_state()

    async def _start(self) -> None:
        self.view.error.setText("")
        folder = self.view.workspace.text().strip()
        if not folder:
            self.view.error.setText(NEEDS_WORKSPACE)
            return
        port = self.settings.agent_port
        config = AgentConfig(workspace=folder_path(folder), data_dir=self.data_dir,
                             base_url=self.base_url())
        try:
            server = AgentServer(config, HOST, port)
            await server.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                self.view.error.setText(PORT_BUSY.format(port=port))
                self.view.show_port_row(port + 1 if port < 65535 else 1024)
            else:
                self.view.error.setText(f"Could not start the agent: {folder_problem(exc, folder)}")
            return
        except Exception as exc:  # A bad data dir (StoreError), anything else: said here.
            self._failed("Could not start the agent", exc)
            return
        self.server = server
        self.view.show_port_row(None)
        self.view.set_config_hint("")
        self._unsubscribe = server.service.desk.subscribe(self.bridge.on_agent_relay_asked,
                                                          self.bridge.on_agent_relay_settled)
        self.refresh_rules()
        self.tasks.spawn(self._load_models())

    async def _stop(self) -> None:
        """The chat is cancelled, the site closed (its clients' runs end, their relays are
        settled and their cards go), then the desk is left."""
        server, self.server = self.server, None
        await self.chat.cancel()
        if server is not None:
            # Shielded and kept: quitting cancels every task, and a stop cut halfway would
            # leave the site open; close() waits for it instead.
            self._stopping = asyncio.ensure_future(server.stop())
            try:
                await asyncio.shield(self._stopping)
            finally:
                self._unsubscribe()
                self._unsubscribe = _nothing
        for relay_id in list(self.view.cards):
            self.view.remove_approval(relay_id)
        self.refresh_rules()

    def _show_state(self) -> None:
        server = self.server
        self.view.set_switch(server is not None,
                             server.port if server is not None else self.settings.agent_port)
        if server is None:
            self.view.set_state(OFF_TEXT)
            return
        self.view.set_state(
            f"On at {server.url}, models from {server.service.config.base_url}. Programs on"
            f" this computer use the token in {server.token_file}.")

    async def close(self) -> None:
        """The window quits: the chat cancelled, the server stopped, the desk left."""
        self._refresher.stop()
        async with self._switching:
            await self._stop()
        if self._stopping is not None:
            await asyncio.wait({self._stopping}, timeout=STOP_WAIT_S)

    # --- where models come from, and where the agent works ---------------------------
    def base_url(self) -> str:
        return self.hub_url or self.settings.agent_base_url

    def on_hosting_changed(self, hosted: HostedHub | None) -> None:
        self.hub_url = f"{hosted.server.url}/v1" if hosted is not None else None
        if self.hub_url is not None:
            self.view.set_base_url(self.hub_url, editable=False, why=HUB_URL_WHY)
        else:
            self.view.set_base_url(self.settings.agent_base_url, editable=True)
        self._config_changed()

    def set_base_url(self, url: str) -> None:
        if self.hub_url is not None or not url or url == self.settings.agent_base_url:
            return
        self.settings.agent_base_url = url
        self._config_changed()

    def set_workspace(self, folder: str) -> None:
        self.settings.agent_workspace = folder
        self.refresh_rules()
        self._config_changed()

    def _config_changed(self) -> None:
        """A running agent is restarted with the new address or folder when nothing runs
        in it; otherwise it says when the change applies (a client's chat is not cut)."""
        server = self.server
        if server is None:
            return
        config = server.service.config
        folder = self.view.workspace.text().strip()
        if not folder:  # Being retyped: the running agent keeps its folder meanwhile.
            return
        if config.base_url == self.base_url() and config.workspace == folder_path(folder):
            self.view.set_config_hint("")
            return
        if self.chat_task is not None or server.service.session_count():
            self.view.set_config_hint(APPLY_LATER)
            return
        self.tasks.spawn(self._restart())

    async def _restart(self) -> None:
        await self._switch(False)
        await self._switch(True)

    # --- models ----------------------------------------------------------------------
    @tracked_slot()
    async def refresh_models(self) -> None:
        await self._load_models()

    async def _load_models(self) -> None:
        server = self.server
        self.view.model_error.setText("")
        if server is None:
            self.view.model_error.setText(NEEDS_SWITCH)
            return
        self.view.refresh_button.setEnabled(False)
        try:
            models = await server.service.client.models()
        except ModelCallError as exc:
            self.view.model_error.setText(exc.message)
            return
        finally:
            self.view.refresh_button.setEnabled(True)
        current = self.view.model.currentText().strip() or "auto"
        self.view.set_models(["auto", *[m for m in models if m != "auto"]], current)

    def _remember_model(self, model: str) -> None:
        if model.strip():
            self.settings.agent_model = model.strip()

    # --- the page's chat (gui/agent_chat.py) ---------------------------------------
    @property
    def chat_task(self) -> asyncio.Task[None] | None:
        return self.chat.task

    def send(self, prompt: str) -> None:
        self.chat.send(self.server, prompt)

    def stop(self) -> None:
        self.chat.stop()

    def new_chat(self) -> None:
        self.chat.new()

    # --- approvals -------------------------------------------------------------------
    def on_asked(self, request: PermissionRequest) -> None:
        server = self.server
        if server is None or request.relay_id in self.view.cards:
            return
        source = ("this page's chat" if request.session_id in self.chat.session_ids
                  else "a program using the agent API")
        card = ApprovalCard(
            request.relay_id, agent_text.ask_heading(request.tool),
            agent_text.call_text(request.tool, request.params),
            agent_text.proposed_by(request.proposed_by, server.service.config.base_url),
            source, agent_text.rule_text(request.tool, request.rule), request.rule is not None)
        self.view.add_approval(card)

    def on_settled(self, relay_id: str, answer: RelayAnswer) -> None:
        """Answered here or by the client, timed out, or its chat ended: the card goes."""
        self.view.remove_approval(relay_id)

    def answer(self, relay_id: str, choice: str) -> None:
        server = self.server
        if server is None:
            self.view.remove_approval(relay_id)
            return
        reply = {"once": RelayAnswer(True), "always": RelayAnswer(True, always=True)}.get(
            choice, RelayAnswer(False, reason=DENIED_IN_APP))
        try:
            server.service.desk.answer(relay_id, reply)
        except RelayNotFoundError:  # The client answered first, or it timed out.
            self.view.remove_approval(relay_id)

    # --- rules -----------------------------------------------------------------------
    def _workspace_root(self) -> Path | None:
        folder = self.view.workspace.text().strip()
        if not folder:
            return None
        try:
            return Workspace(folder_path(folder)).root
        except OSError:
            return None

    def refresh_rules(self) -> None:
        server, root = self.server, self._workspace_root()
        if server is None or root is None:
            self.view.set_rules("", [])
            return
        self.view.set_rules(str(root), server.service.rules.rules(root))

    def _refresh_if_shown(self) -> None:
        if self.server is not None and self.view.isVisible():
            self.refresh_rules()

    @tracked_slot(object)
    async def remove_rule(self, rule: Rule) -> None:
        server, root = self.server, self._workspace_root()
        if server is None or root is None:
            return
        try:
            await server.service.rules.remove(root, rule)
        except Exception as exc:
            self._failed("Could not remove the rule", exc)
        self.refresh_rules()

    def _failed(self, what: str, exc: Exception) -> None:
        """In the page's own words, never a traceback."""
        if isinstance(exc, HubError):
            self.view.error.setText(f"{what}: {exc.message}")
            return
        log.error("%s", what, exc_info=exc)
        self.view.error.setText(f"{what}: {exc}")

