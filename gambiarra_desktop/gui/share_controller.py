"""Share my model: the one home of the share switch, whichever control flips it.

The room tab's switch, the tray's *Share my model* item and the banner above every page
all go through this controller and its :class:`ShareSwitch` (idle, starting, sharing,
stopping), so they always say the same thing. A share never stops unless the user stops
it: opening another room, going back to the hub page or a hub blip leave it running, and
the banner keeps it in sight. The room on screen and the room shared with are two
different things here (``session`` and ``shared``); the tab shows the truth for the room
on screen, and says so when the share goes elsewhere.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import QObject, Signal

from gambiarra_desktop.gateway_client import GatewayApiError, GatewayClient
from gambiarra_desktop.gui.bridge import CoreBridge
from gambiarra_desktop.gui.config import GuiConfig
from gambiarra_desktop.gui.gateway_controller import error_text
from gambiarra_desktop.gui.models import RoomSession
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.share_banner import ShareBanner
from gambiarra_desktop.gui.share_picker import ServerPicker
from gambiarra_desktop.gui.share_view import ShareTab
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.gui.tray import Tray
from gambiarra_desktop.share.agent import AgentStatus, ShareAgent, ShareSettings
from gambiarra_desktop.share.switch import ShareSwitch, SwitchState

STATE_TEXT = {"sharing": "Sharing", "starting": "Starting…", "reconnecting": "Reconnecting…",
              "model-down": "Model server not answering", "failed": "Stopped",
              "stopped": "Stopped"}
PILL_COLOUR = {"model-down": "failed"}
"""Agent states the stylesheet has no colour of its own for: drawn as this one."""
NOT_SHARED_HERE = "Nothing is shared with this room yet."
SERVED_POLL_S = 10.0
"""How often "served by me" asks the hub: a glance, not a live feed, and cheap for it."""
SERVED_TIMEOUT_S = 5.0


def same_room(a: RoomSession | None, b: RoomSession | None) -> bool:
    return (a is not None and b is not None and a.code == b.code
            and a.hub_url.rstrip("/") == b.hub_url.rstrip("/"))


class ShareController(QObject):
    served_people = Signal(object, str)  # list of people (None: not sharing), problem text
    open_shared_room = Signal(object)  # RoomSession: the banner was clicked

    def __init__(
        self, view: ShareTab, bridge: CoreBridge, config: GuiConfig, settings: AppSettings,
        tasks: TaskTracker, banner: ShareBanner | None = None,
    ) -> None:
        super().__init__()
        self.tasks = tasks
        self.view = view
        self.config = config
        self.settings = settings
        self.bridge = bridge
        self.banner = banner or ShareBanner()
        self.tray: Tray | None = None
        self.session: RoomSession | None = None
        """The room on screen (None on other pages)."""
        self._rooms: dict[str, RoomSession] = {}
        """Participant id -> the room its share was started for (see :attr:`shared`)."""
        self.switch = ShareSwitch(self._on_switch_state, bridge.on_agent_status)
        self.picker = ServerPicker(view, settings, tasks)
        self.last_status = AgentStatus("stopped")
        self.served_poll_s = SERVED_POLL_S
        self._served_task: asyncio.Task[None] | None = None
        self._outage_said = False
        view.nickname.setText(settings.nickname)
        view.share_toggled.connect(self.on_switch)
        view.move_clicked.connect(self.move_here)
        view.stop_clicked.connect(self.stop)
        self.banner.clicked.connect(self._on_banner_clicked)
        bridge.agent_status.connect(self.on_status)

    @property
    def agent(self) -> ShareAgent | None:
        return self.switch.agent

    @property
    def shared(self) -> RoomSession | None:
        """The room the share goes to, while one is starting or running."""
        target = self.switch.target
        return self._rooms.get(target[1].participant_id) if target else None

    def attach_tray(self, tray: Tray) -> None:
        """The tray's *Share my model* is this switch too: on shares with the room on
        screen, off stops the share wherever it goes."""
        self.tray = tray
        tray.share_action.toggled.connect(self.on_tray_switch)
        self.refresh()

    async def open(self, session: RoomSession) -> None:
        """Get the tab ready for ``session``; a share running (here or elsewhere) goes on.
        The window sets :attr:`session` first, so a quick click is already served."""
        self.session = session
        self.view.share_switch.setEnabled(True)
        self.refresh()
        await self.picker.look(keep_choice=self.switch.state != "idle")

    def leave_room(self) -> None:
        """The room page is left: the share, if any, runs on (the banner shows it)."""
        self.session = None
        self.refresh()

    @tracked_slot(bool)
    async def on_switch(self, on: bool) -> None:
        if on:
            await self.move_here_now()
        elif self.switch.state == "idle" or same_room(self.session, self.shared):
            await self.stop_sharing()
        else:
            self.refresh()  # Off for this room, while the share goes elsewhere: it is.

    @tracked_slot(bool)
    async def on_tray_switch(self, on: bool) -> None:
        if not on:
            await self.stop_sharing()
        elif self.switch.state == "idle":
            await self.start_sharing()
        else:
            self.refresh()

    @tracked_slot()
    async def move_here(self) -> None:
        await self.move_here_now()

    @tracked_slot()
    async def stop(self) -> None:
        await self.stop_sharing()

    async def move_here_now(self) -> None:
        """Share with the room on screen; a share going elsewhere is stopped first (the
        user asked for it here, with that share named in the tab)."""
        if self.switch.state != "idle" and not same_room(self.session, self.shared):
            await self.stop_sharing()
        await self.start_sharing()

    async def start_sharing(self) -> None:
        session = self.session
        endpoint = self.view.endpoint.text().strip()
        model = self.view.model_combo.currentText().strip()
        if session is None or not endpoint or not model:
            self.last_status = AgentStatus("failed", "Pick a model server and a model first.")
            self.refresh()
            return
        nickname = self.view.nickname.text().strip() or self.settings.nickname
        self.settings.nickname = nickname
        self.settings.last_endpoint = endpoint
        self.settings.last_model = model
        settings = ShareSettings(
            room_code=session.code, model=model, endpoint=endpoint, nickname=nickname,
            password=session.password or None,
            health_interval_s=self.config.share_health_interval_s,
        )
        self._rooms[settings.participant_id] = session
        if self.switch.state == "idle":
            self.last_status = AgentStatus("starting", "reading this machine's specs")
        await self.switch.turn_on(session.hub_url, settings)

    async def stop_sharing(self) -> None:
        """Stop the share wherever it goes; returns once its agent has left."""
        await self.switch.turn_off()
        self.refresh()

    def _on_switch_state(self, state: SwitchState) -> None:
        agent, shared, target = self.switch.agent, self.shared, self.switch.target
        if target is not None:  # Only the share now on is remembered.
            self._rooms = {k: v for k, v in self._rooms.items()
                           if k == target[1].participant_id}
        if state == "sharing" and agent is not None and shared is not None:
            self._stop_served()
            self._served_task = self.tasks.spawn(self._poll_served(agent, shared))
        elif state == "idle":
            self._stop_served()
        self.refresh()

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

    def _stop_served(self) -> None:
        task, self._served_task = self._served_task, None
        if task is not None:
            task.cancel()  # The tracker awaits it; it only reads.
        self.served_people.emit(None, "")

    def on_status(self, status: AgentStatus) -> None:
        """The current agent's news: said in the tab, the banner and the tray; a model
        server that stops answering is also notified, once per outage."""
        self.last_status = status
        if status.state == "model-down" and not self._outage_said:
            self._outage_said = True
            if self.tray is not None:
                self.tray.notify_model_down(status.reason)
        elif status.state == "sharing":
            self._outage_said = False
        self.refresh()

    def _state_words(self) -> tuple[str, str]:
        """(pill state, pill text) of the share as it is now."""
        switch_state = self.switch.state
        if switch_state == "stopping":
            return "starting", "Stopping…"
        if switch_state == "idle":
            return "stopped", "Stopped"
        state = self.last_status.state
        return PILL_COLOUR.get(state, state), STATE_TEXT.get(state, state)

    def refresh(self) -> None:
        """Draw the tab, the banner and the tray from the switch and the last status."""
        pill_state, pill_text = self._state_words()
        on = self.switch.state in ("starting", "sharing")
        shared, target = self.shared, self.switch.target
        reason = self.last_status.reason
        reason = reason[:1].upper() + reason[1:]
        model = target[1].model if target else ""
        elsewhere = shared is not None and self.session is not None and not same_room(
            self.session, shared)
        view = self.view
        view.share_switch.blockSignals(True)
        view.share_switch.setChecked(on and not elsewhere)
        view.share_switch.blockSignals(False)
        if elsewhere and shared is not None:
            view.status.set_state("stopped", "Not here")
            view.elsewhere_text.setText(
                f"You share {model} with room {shared.name} ({shared.code}). Move it here,"
                " or stop it.")
            view.reason.setText(NOT_SHARED_HERE)  # The other room's news is not this one's.
        else:
            view.status.set_state(pill_state, pill_text)
            if reason:
                view.reason.setText(reason)
        view.elsewhere.setVisible(elsewhere)
        line = ""
        if on and shared is not None:
            self.banner.show_share(model, shared.name, pill_state, pill_text,
                                   reason if self.last_status.state != "sharing" else "")
            line = f"Sharing {model} → {shared.name}: {pill_text.lower()}"
        else:
            self.banner.hide()
        if self.tray is not None:
            self.tray.set_sharing(on, line)
            self.tray.share_action.setEnabled(on or self.session is not None)

    def _on_banner_clicked(self) -> None:
        if self.shared is not None:
            self.open_shared_room.emit(self.shared)
