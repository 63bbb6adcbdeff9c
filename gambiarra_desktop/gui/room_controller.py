"""An open room: the live participants table and activity log (from the room's SSE
events, not polling), and the Connect panel's web address for guests and snippets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QTableWidgetItem

from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.event_text import describe
from gambiarra_desktop.gui.bridge import CoreBridge
from gambiarra_desktop.gui.config import GuiConfig
from gambiarra_desktop.gui.guest_link import guest_link, listens_on_lan
from gambiarra_desktop.gui.models import RoomSession
from gambiarra_desktop.gui.participants_view import MACHINE_COLUMN
from gambiarra_desktop.gui.room_access import RoomAccess
from gambiarra_desktop.gui.room_view import RoomPage
from gambiarra_desktop.gui.tasks import TaskTracker
from gambiarra_desktop.gui.theme import token
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError
from gambiarra_desktop.usage_text import served_row

UNKNOWN_STATUS = "? not known"
MAX_ACTIVITY_LINES = 500
STATUS_COLUMN = 2


def specs_text(specs: dict[str, Any]) -> str:
    parts = []
    if specs.get("gpu"):
        vram = f" {specs['vram']} GB" if specs.get("vram") else ""
        parts.append(f"{specs['gpu']}{vram}")
    if specs.get("ram"):
        parts.append(f"{specs['ram']} GB RAM")
    if specs.get("cpu") and not specs.get("gpu"):
        parts.append(str(specs["cpu"]))
    return ", ".join(parts) or "—"


def specs_tooltip(specs: dict[str, Any]) -> str:
    """Everything the participant said about its machine, one line each: the column only
    has room for a summary, and that gets elided."""
    names = {"gpu": "GPU", "vram": "VRAM (GB)", "ram": "RAM (GB)", "cpu": "CPU"}
    lines = [f"{names.get(key, key)}: {value}" for key, value in specs.items()
             if value not in (None, "", [], {})]
    return "\n".join(lines) or "The participant did not describe its machine."


def waiting_text(waiting: int) -> str:
    return (f"{waiting} request{'s' if waiting != 1 else ''} waiting for a free model"
            if waiting > 0 else "")


def snippets(session: RoomSession) -> dict[str, str]:
    """Copy-paste connection examples. A password room wants its password as the API key
    (``Authorization: Bearer``); the snippets name it rather than print it."""
    base = session.openai_base_url
    auth = '  -H "Authorization: Bearer $ROOM_PASSWORD" \\\n' if session.has_password else ""
    key = 'os.environ["ROOM_PASSWORD"]' if session.has_password else '"unused"'
    key_note = ("the room's password" if session.has_password
                else "anything (the room does not check it)")
    return {
        "curl": (f"curl {base}/chat/completions \\\n  -H \"Content-Type: application/json\" \\\n"
                 f"{auth}"
                 "  -d '{\"model\": \"*\", \"messages\": [{\"role\": \"user\", \"content\":"
                 " \"Hello!\"}]}'"),
        "Python (openai SDK)": (
            ("import os\n" if session.has_password else "") + "from openai import OpenAI\n\n"
            f"client = OpenAI(base_url=\"{base}\", api_key={key})\n"
            "reply = client.chat.completions.create(\n"
            "    model=\"*\", messages=[{\"role\": \"user\", \"content\": \"Hello!\"}])\n"
            "print(reply.choices[0].message.content)"),
        "Open WebUI / Continue": (
            "Open WebUI: Settings → Connections → OpenAI API\n"
            f"  URL: {base}\n  Key: {key_note}\n\n"
            "Continue (config.yaml):\n  models:\n    - name: Gambiarra room\n"
            f"      provider: openai\n      model: \"*\"\n      apiBase: {base}"
            + ("\n      apiKey: <the room's password>" if session.has_password else "")),
    }


class RoomController(QObject):
    def __init__(self, view: RoomPage, bridge: CoreBridge, tasks: TaskTracker,
                 config: GuiConfig) -> None:
        super().__init__()
        self.tasks = tasks
        self.view = view
        self.bridge = bridge
        self.config = config
        self.hosted: HostedHub | None = None
        """The hub this app hosts: whether guests reach it depends on its bind address."""
        self.session: RoomSession | None = None
        self.participants: dict[str, dict[str, Any]] = {}
        self.served: dict[str, int] = {}
        self.last_rate: dict[str, float] = {}
        self.in_flight: dict[str, int] = {}
        """Requests each participant answers now, from the hub's metrics and events."""
        self.waiting = 0
        """Requests in the room's queue, from ``queue`` and ``queue:changed``."""
        self.access = RoomAccess(view, tasks, bridge.on_room_event, self._on_people, self.log)
        self.access.on_live_changed = self.render
        bridge.room_event.connect(self.on_event)
        view.copy_code_clicked.connect(self.copy_code)
        view.connect_tab.copy_requested.connect(self.copy_text)

    async def open(self, session: RoomSession) -> bool:
        """True once the hub let this session in (room_access.py asks for a password or
        waits for the hub in place); False when the room was left before that."""
        await self.close()
        self.session = session
        self.participants.clear()
        self.served.clear()
        self.last_rate.clear()
        self.in_flight.clear()
        self.waiting = 0
        self.view.participants.chart.clear()
        self.view.title.setText(session.name)
        lock = " · password protected" if session.has_password else ""
        self.view.subtitle.setText(f"on {session.hub_name} ({session.hub_url}){lock}")
        self.view.code.setText(session.code)
        self.view.participants.activity.clear()
        self.view.connect_tab.base_url.setText(session.openai_base_url)
        for title, text in snippets(session).items():
            self.view.connect_tab.snippets[title].setPlainText(text)
        self.show_guest_link(session)
        if not await self.access.enter(session):
            return False
        try:
            async with HubClient(session.hub_url, timeout_s=5,
                                 room_password=session.password or None) as hub:
                listing = await hub.request("GET", f"/rooms/{session.code}/participants")
            listing = listing if isinstance(listing, dict) else {}
            for participant in listing.get("participants") or []:
                if isinstance(participant, dict) and "id" in participant:
                    self.participants[participant["id"]] = participant
                    metrics = participant.get("metrics")
                    if isinstance(metrics, dict) and isinstance(metrics.get("inFlight"), int):
                        self.in_flight[participant["id"]] = metrics["inFlight"]
            queue = listing.get("queue")
            if isinstance(queue, dict) and isinstance(queue.get("waiting"), int):
                self.waiting = queue["waiting"]
        except (HubUnreachableError, HubApiError) as exc:
            self.log(f"cannot read the participants: {exc}")
        self.render()
        return True

    def show_guest_link(self, session: RoomSession) -> None:
        """The room's web page on the LAN (never a loopback address), made anew for each
        room opened: its QR code and link, or why guests cannot open it."""
        on_lan = listens_on_lan(session.hub_url, self.hosted, self.config.host_bind)
        link = guest_link(session.hub_url, session.code, self.config.mdns_interface, on_lan)
        self.view.connect_tab.show_guest_link(link.url, link.reason)

    def on_hosting_changed(self, hosted: HostedHub | None) -> None:
        self.hosted = hosted
        self.refresh_guest_link()

    def refresh_guest_link(self) -> None:
        """The open room's guest link again: this machine's addresses or the hosted hub
        changed, and the QR code must name an address that works now."""
        if self.session is not None:
            self.show_guest_link(self.session)

    async def close(self) -> None:
        await self.access.leave()
        self.session = None

    def _on_people(self, people: list[dict[str, Any]]) -> None:
        """The room as the hub lists it now: at entry, and after each reconnection (the
        events missed while the hub was away are not replayed)."""
        self.participants = {str(p["id"]): p for p in people if isinstance(p, dict) and "id" in p}
        for pid, p in self.participants.items():  # Requests running now, as the hub counts.
            metrics = p.get("metrics")
            if isinstance(metrics, dict) and isinstance(metrics.get("inFlight"), int):
                self.in_flight[pid] = metrics["inFlight"]
        self.render()

    def on_event(self, name: str, data: Any) -> None:
        if self.session is None or not isinstance(data, dict) or name == "connected":
            return
        if name == "room:created":
            return  # Other rooms are not this room's news.
        if name == "room:deleted":
            if data.get("code") == self.session.code:
                self.log("this room was deleted by its owner")
            return
        pid = str(data.get("participantId") or data.get("id") or "")
        nicknames = {k: str(v.get("nickname", k)) for k, v in self.participants.items()}
        if name == "participant:joined":
            self.participants[pid] = data
        elif name == "participant:left":
            self.participants.pop(pid, None)
        elif name in ("participant:offline", "participant:online") and pid in self.participants:
            self.participants[pid]["status"] = name.split(":")[1]
        elif name == "llm:complete":
            self.served[pid] = self.served.get(pid, 0) + 1
            metrics = data.get("metrics") or {}
            self.last_rate[pid] = float(metrics.get("tokensPerSecond") or 0)
            self._busy(pid, (data.get("participant") or {}).get("inFlight"), -1)
            self.view.participants.chart.names = nicknames
            self.view.participants.chart.add(pid, self.last_rate[pid])
        elif name == "llm:request":
            self._busy(pid, data.get("inFlight"), +1)
        elif name == "llm:error":
            self._busy(pid, data.get("inFlight"), -1)
        elif name == "queue:changed":
            waiting = data.get("waiting")
            self.waiting = waiting if isinstance(waiting, int) else self.waiting
            self.render()
            return  # The line under the table says it; the log would repeat it.
        elif name == "llm:queued" and isinstance(data.get("position"), int):
            self.waiting = max(self.waiting, data["position"])  # Hubs without queue:changed.
        self.log(describe(name, data, nicknames))
        self.render()

    def _busy(self, pid: str, reported: object, step: int) -> None:
        """The hub's count when the event carries one, else a step from ours."""
        count = reported if isinstance(reported, int) else self.in_flight.get(pid, 0) + step
        self.in_flight[pid] = max(0, count)

    def log(self, text: str) -> None:
        activity = self.view.participants.activity
        activity.addItem(f"{datetime.now():%H:%M:%S}  {text}")
        while activity.count() > MAX_ACTIVITY_LINES:
            activity.takeItem(0)
        activity.scrollToBottom()

    def render(self) -> None:
        table = self.view.participants.table
        table.setRowCount(len(self.participants))
        # While the hub does not answer, nobody's status is known: the last one seen stays
        # in the tooltip, never shown as if current.
        known = self.access.live or self.access.feed is None
        for row, (pid, p) in enumerate(self.participants.items()):
            rate = self.last_rate.get(pid)
            online = p.get("status") == "online"
            status = ("● online" if online else "○ offline") if known else UNKNOWN_STATUS
            values = [
                str(p.get("nickname", "")), str(p.get("model", "")), status,
                str(p.get("transport", "direct")), specs_text(p.get("specs") or {}),
                str(self.served.get(pid, 0)), str(self.in_flight.get(pid, 0)),
                f"{rate:.1f}" if rate else "—",
            ]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(specs_tooltip(p.get("specs") or {})
                                if column == MACHINE_COLUMN else value)
                if column == STATUS_COLUMN:
                    item.setForeground(QColor(token("online" if online and known
                                                    else "offline")))
                    if not known:
                        item.setToolTip(f"The hub is not answering; last seen "
                                        f"{'online' if online else 'offline'}")
                table.setItem(row, column, item)
        self.view.participants.empty.setVisible(not self.participants)
        queue_line = self.view.participants.queue_line
        queue_line.setText(waiting_text(self.waiting))
        queue_line.setVisible(self.waiting > 0)

    def show_served(self, people: object, problem: str) -> None:
        """Who used this machine (API key, else address), busiest first; ``None``: not
        sharing, so the panel goes away."""
        panel = self.view.participants
        if not isinstance(people, list):
            panel.served_panel.hide()
            panel.served.setRowCount(0)
            return
        panel.served_panel.show()
        panel.served.setRowCount(len(people))
        for row, person in enumerate(people):
            for column, text in enumerate(served_row(person)):
                panel.served.setItem(row, column, QTableWidgetItem(text))
        panel.served_hint.setText(problem or ("" if people else
                                              "Nobody has used your machine yet."))

    def copy_code(self) -> None:
        if self.session is not None:
            self.copy_text(self.session.code)

    def copy_text(self, text: str) -> None:
        QApplication.clipboard().setText(text)
