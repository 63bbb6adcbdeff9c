"""Share my model: pick a detected model server (or type one), then one switch shares it
with the open room through the tunnel, with the state always in view."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from PySide6.QtCore import QObject, Signal

from gambiarra_desktop.gateway_client import GatewayApiError, GatewayClient
from gambiarra_desktop.gui.bridge import CoreBridge
from gambiarra_desktop.gui.config import GuiConfig
from gambiarra_desktop.gui.gateway_controller import error_text
from gambiarra_desktop.gui.models import RoomSession
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.share_view import ShareTab
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.share.agent import AgentStatus, ShareAgent, ShareSettings
from gambiarra_desktop.share.local_servers import (
    DetectedServer,
    ModelServerError,
    detect_local_servers,
    list_models,
)
from gambiarra_desktop.share.specs import machine_specs

STATE_TEXT = {"sharing": "Sharing", "starting": "Starting…", "reconnecting": "Reconnecting…",
              "failed": "Stopped", "stopped": "Stopped"}
SERVED_POLL_S = 10.0
"""How often "served by me" asks the hub: a glance, not a live feed, and cheap for it."""
SERVED_TIMEOUT_S = 5.0


class ShareController(QObject):
    sharing_changed = Signal(bool)
    served_people = Signal(object, str)  # list of people (None: not sharing), problem text

    def __init__(
        self, view: ShareTab, bridge: CoreBridge, config: GuiConfig, settings: AppSettings,
        tasks: TaskTracker,
    ) -> None:
        super().__init__()
        self.tasks = tasks
        self.view = view
        self.config = config
        self.settings = settings
        self.bridge = bridge
        self.session: RoomSession | None = None
        self.agent: ShareAgent | None = None
        self.servers: list[DetectedServer] = []
        self.served_poll_s = SERVED_POLL_S
        self._served_task: asyncio.Task[None] | None = None
        view.nickname.setText(settings.nickname)
        view.endpoint.setText(settings.last_endpoint)
        view.detect_clicked.connect(self.detect)
        view.check_clicked.connect(self.check)
        view.share_toggled.connect(self.on_switch)
        view.server_combo.currentIndexChanged.connect(self._on_server_chosen)
        bridge.agent_status.connect(self.on_status)

    async def open(self, session: RoomSession) -> None:
        """Get the tab ready for ``session``.

        The window sets :attr:`session` and shows the page before this runs, so a quick
        user may already be sharing into this very room by now: that share is kept, and
        only one left over from another room is stopped.
        """
        if self.agent is not None and not self._shares_into(session):
            await self.stop_sharing()
        self.session = session
        self.view.share_switch.setEnabled(True)
        await self._detect()

    def _shares_into(self, session: RoomSession) -> bool:
        agent = self.agent
        return (agent is not None and agent.settings.room_code == session.code
                and agent.hub_url == session.hub_url.rstrip("/"))

    @tracked_slot()
    async def detect(self) -> None:
        await self._detect()

    async def _detect(self) -> None:
        self.view.detect_hint.setText("Looking for model servers on this computer…")
        extra = [self.settings.last_endpoint] if self.settings.last_endpoint else []
        typed_before = self.view.endpoint.text()
        self.servers = await detect_local_servers(extra)
        # Detection takes a moment; never swap the picker under a user who typed an
        # address meanwhile or is already sharing: just list what was found.
        keep_choice = self.agent is not None or self.view.endpoint.text() != typed_before
        self.view.server_combo.blockSignals(True)
        self.view.server_combo.clear()
        for server in self.servers:
            self.view.server_combo.addItem(f"{server.name} — {server.endpoint}")
        self.view.server_combo.addItem("Another address…")
        self.view.server_combo.blockSignals(False)
        if self.servers:
            self.view.detect_hint.setText(
                f"Found {len(self.servers)} model server(s). Pick a model and flip the switch.")
            if keep_choice:
                self.view.server_combo.blockSignals(True)
                self.view.server_combo.setCurrentIndex(len(self.servers))  # Another address…
                self.view.server_combo.blockSignals(False)
            else:
                self.view.server_combo.setCurrentIndex(0)
                self._on_server_chosen(0)
        elif keep_choice:
            self.view.detect_hint.setText(
                "No model server found on the usual ports; using the address you typed.")
        else:
            self.view.detect_hint.setText(
                "No model server found on the usual ports (Ollama 11434, LM Studio 1234,"
                " llama.cpp 8080, vLLM 8000). Start one, or type its address and press Check.")

    def _on_server_chosen(self, index: int) -> None:
        if 0 <= index < len(self.servers):
            server = self.servers[index]
            self.view.endpoint.setText(server.endpoint)
            self._fill_models(list(server.models))

    def _fill_models(self, models: list[str]) -> None:
        self.view.model_combo.clear()
        self.view.model_combo.addItems(models)
        if self.settings.last_model in models:
            self.view.model_combo.setCurrentText(self.settings.last_model)

    @tracked_slot()
    async def check(self) -> None:
        endpoint = self.view.endpoint.text().strip()
        if not endpoint:
            return
        try:
            async with aiohttp.ClientSession() as session:
                models = await list_models(session, endpoint)
        except ModelServerError as exc:
            self.view.detect_hint.setText(str(exc))
            return
        self._fill_models(models)
        self.view.detect_hint.setText(f"{endpoint} serves {len(models)} model(s).")

    @tracked_slot(bool)
    async def on_switch(self, on: bool) -> None:
        if on:
            await self.start_sharing()
        else:
            await self.stop_sharing()

    async def start_sharing(self) -> None:
        session = self.session
        endpoint = self.view.endpoint.text().strip()
        model = self.view.model_combo.currentText().strip()
        if session is None or not endpoint or not model:
            self._set_switch(False)
            self.on_status(AgentStatus("failed", "Pick a model server and a model first."))
            return
        nickname = self.view.nickname.text().strip() or self.settings.nickname
        self.settings.nickname = nickname
        self.settings.last_endpoint = endpoint
        self.settings.last_model = model
        settings = ShareSettings(
            room_code=session.code, model=model, endpoint=endpoint, nickname=nickname,
            password=session.password or None, specs=await machine_specs(),
            health_interval_s=self.config.share_health_interval_s,
        )
        self.agent = ShareAgent(session.hub_url, settings, self.bridge.on_agent_status)
        await self.agent.start()
        await self._stop_served()
        self._served_task = self.tasks.spawn(self._poll_served(self.agent, session))
        self.sharing_changed.emit(True)

    async def _poll_served(self, agent: ShareAgent, session: RoomSession) -> None:
        """Every few seconds while this agent shares: who the hub says it served, read
        with the agent's own participant secret (the hub shows it to nobody else)."""
        settings = agent.settings
        async with GatewayClient(session.hub_url, timeout_s=SERVED_TIMEOUT_S,
                                 token=session.password or None) as client:
            while self.agent is agent:
                if agent.status.state == "sharing" and agent.secret is not None:
                    try:
                        people = await client.participant_usage(
                            settings.room_code, settings.participant_id, agent.secret)
                    except GatewayApiError as exc:
                        self.served_people.emit([], f"Cannot read who used it: {error_text(exc)}")
                    else:
                        self.served_people.emit(people, "")
                await asyncio.sleep(self.served_poll_s)

    async def _stop_served(self) -> None:
        task, self._served_task = self._served_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.served_people.emit(None, "")

    async def stop_sharing(self) -> None:
        agent, self.agent = self.agent, None
        await self._stop_served()
        if agent is not None:
            await agent.stop()
        self._set_switch(False)
        self.sharing_changed.emit(False)

    def _set_switch(self, on: bool) -> None:
        self.view.share_switch.blockSignals(True)
        self.view.share_switch.setChecked(on)
        self.view.share_switch.blockSignals(False)

    def on_status(self, status: AgentStatus) -> None:
        self.view.status.set_state(status.state, STATE_TEXT.get(status.state, status.state))
        if status.reason:
            self.view.reason.setText(status.reason[0].upper() + status.reason[1:])
        if status.state in ("sharing", "starting", "reconnecting"):
            self._set_switch(True)
        elif status.state == "failed":
            self._set_switch(False)
            self.agent = None
            self.sharing_changed.emit(False)
