"""The only place where core events become Qt signals (Electrum's qt_event_listener).

Core objects report through plain callbacks and async iterators; widgets only ever see
these signals, so replacing qasync one day changes this file alone.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from gambiarra_desktop.agent.relays import PermissionRequest, RelayAnswer
from gambiarra_desktop.discovery.browser import HubChange
from gambiarra_desktop.events import Event, EventType
from gambiarra_desktop.share.agent import AgentStatus
from gambiarra_desktop.terminal.approvals import ApprovalRequest

HUB_EVENT_TYPES = (EventType.COST_ALERT,)
"""What :meth:`CoreBridge.on_hub_event` subscribes to on the hosted hub's bus: only these,
so the window does not make the hub build every request's ``llm:*`` events for nobody."""


class CoreBridge(QObject):
    hub_found = Signal(object)  # DiscoveredHub
    hub_updated = Signal(object)
    hub_gone = Signal(object)
    room_event = Signal(str, object)  # event name, data
    agent_status = Signal(object)  # AgentStatus
    cost_alert = Signal(object)  # {"day", "cost", "threshold"}
    terminal_output = Signal(str, str)  # session id, text chunk
    terminal_sessions = Signal()  # the hosted hub's session list changed
    approval_asked = Signal(object)  # ApprovalRequest
    approval_settled = Signal(str)  # request id: answered, timed out or withdrawn
    agent_relay_asked = Signal(object)  # agent PermissionRequest
    agent_relay_settled = Signal(str, object)  # relay id, RelayAnswer

    def on_hub_change(self, change: HubChange) -> None:
        signal = {"found": self.hub_found, "updated": self.hub_updated,
                  "gone": self.hub_gone}[change.kind]
        signal.emit(change.hub)

    def on_room_event(self, name: str, data: Any) -> None:
        self.room_event.emit(name, data)

    def on_agent_status(self, status: AgentStatus) -> None:
        self.agent_status.emit(status)

    def on_hub_event(self, event: Event) -> None:
        """The hosted hub's own bus: of its events, only the day's cost alert is the
        window's business (rooms report through their SSE streams)."""
        if event.type == EventType.COST_ALERT:
            self.cost_alert.emit(dict(event.data))

    def on_cost_alert(self, data: Any) -> None:
        """The same alert from a hub elsewhere, read from its ``/v1/events``."""
        if isinstance(data, dict):
            self.cost_alert.emit(data)

    def on_terminal_output(self, session_id: str, chunk: str) -> None:
        """Every chunk of every session of the hosted hub (``TerminalManager.subscribe``)."""
        self.terminal_output.emit(session_id, chunk)

    def on_terminal_sessions(self) -> None:
        self.terminal_sessions.emit()

    def on_approval_asked(self, request: ApprovalRequest) -> None:
        """A new session waits for the host's yes (``ApprovalDesk.subscribe``)."""
        self.approval_asked.emit(request)

    def on_approval_settled(self, request_id: str) -> None:
        self.approval_settled.emit(request_id)

    def on_agent_relay_asked(self, request: PermissionRequest) -> None:
        """A tool call of the agent waits for a yes (``RelayDesk.subscribe``): from the
        app's own chats and from HTTP clients of the in-process agent API alike."""
        self.agent_relay_asked.emit(request)

    def on_agent_relay_settled(self, relay_id: str, answer: RelayAnswer) -> None:
        self.agent_relay_settled.emit(relay_id, answer)
