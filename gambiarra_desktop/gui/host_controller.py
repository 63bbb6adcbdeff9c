"""The Host button: run the embedded hub in this app's event loop and publish it.

Stopping has one path, :meth:`HostController.request_stop`, for the sidebar's button and
the tray's *Stop hosting* alike: with nobody online in the hub's rooms it stops at once;
otherwise it asks first (a stray Space on the button used to stop the hub for everyone),
with Cancel as the default answer. The count comes from the hub's own registry: no network.
"""

from __future__ import annotations

import asyncio
import socket

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox

from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.firewall import firewall_advice, reachable_from_lan
from gambiarra_desktop.gui.config import GuiConfig
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.sidebar_view import SidebarView
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.hub.rooms.store_errors import StoreError

STOP_TITLE = "Stop hosting?"
STOP_BUTTON_TEXT = "Stop hosting"


def people_online(hosted: HostedHub) -> int:
    """How many participants are online in the hosted hub's rooms, read in memory."""
    registry = hosted.server.registry
    rooms = (registry.get(entry["code"]) for entry in registry.list_rooms())
    return sum(len(room.online_participants()) for room in rooms if room is not None)


def stop_question(people: int) -> str:
    who = "1 person is" if people == 1 else f"{people} people are"
    return (f"{who} using rooms on the hub you host. Stopping it ends their rooms' requests"
            " and takes the hub off the network.")


def _free_port_near(port: int) -> int:
    for candidate in range(port + 1, port + 50):
        with socket.socket() as sock:
            try:
                sock.bind(("", candidate))
            except OSError:
                continue
            return candidate
    return port + 1


class HostController(QObject):
    hosting_changed = Signal(object)  # HostedHub | None

    def __init__(
        self, view: SidebarView, config: GuiConfig, settings: AppSettings, tasks: TaskTracker
    ) -> None:
        super().__init__()
        self.tasks = tasks
        self.view = view
        self.config = config
        self.settings = settings
        self.hosted: HostedHub | None = None
        self._busy = False
        self.confirm_box: QMessageBox | None = None
        self._stopping: asyncio.Future[None] | None = None
        view.host_clicked.connect(self.toggle)
        view.retry_port_clicked.connect(self.start_on)

    @tracked_slot()
    async def toggle(self) -> None:
        if self.hosted is not None:
            self.ask_to_stop()
        else:
            port = self.config.host_port
            await self.start(self.settings.host_port if port is None else port)

    @tracked_slot()
    async def request_stop(self) -> None:
        """The one stop path (sidebar and tray): at once, or after a yes (module docstring)."""
        self.ask_to_stop()

    def ask_to_stop(self) -> None:
        hosted = self.hosted
        if hosted is None or self._busy:
            return
        people = people_online(hosted)
        if people == 0:
            self.tasks.spawn(self.stop())
            return
        if self.confirm_box is not None:  # Asked already: bring that question forward.
            self.confirm_box.raise_()
            return
        box = QMessageBox(QMessageBox.Icon.Warning, STOP_TITLE, stop_question(people),
                          QMessageBox.StandardButton.NoButton, self.view.window())
        box.setObjectName("confirmStopHosting")
        stop_button = box.addButton(STOP_BUTTON_TEXT, QMessageBox.ButtonRole.DestructiveRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)

        def answered(button: object) -> None:
            if button is stop_button and self.hosted is hosted:
                self.tasks.spawn(self.stop())

        def closed(_result: int) -> None:
            if self.confirm_box is box:
                self.confirm_box = None
            box.deleteLater()

        box.buttonClicked.connect(answered)
        box.finished.connect(closed)
        self.confirm_box = box
        box.open()  # Never exec(): a nested loop would stall the hub on this same loop.

    @tracked_slot(int)
    async def start_on(self, port: int) -> None:
        await self.start(port)

    async def start(self, port: int) -> None:
        if self._busy or self.hosted is not None:
            return
        self._busy = True
        self.view.host_button.setEnabled(False)
        # Said before listening: Windows and macOS show their firewall prompt right then.
        self.view.host_status.setText(
            "Starting the hub… If your system asks whether Gambiarra may accept incoming"
            " connections, allow it on private networks: that is how others reach you.")
        hosted = HostedHub(
            self.config.data_dir, port, self.config.host_bind,
            interface=self.config.mdns_interface, cooperating_mdns=self.config.cooperating_mdns,
            redis_url=self.settings.redis_url or None,
            enable_terminal=self.settings.terminal_enabled,
        )
        try:
            try:
                await hosted.start()
            except asyncio.CancelledError:  # The window closes while the hub starts.
                await asyncio.shield(hosted.stop())
                raise
        except StoreError as exc:  # The data dir or database, not the port: say which.
            self.view.host_status.setText(str(exc))
            return
        except OSError as exc:
            suggestion = _free_port_near(port)
            self.view.host_status.setText(
                f"Port {port} is not available ({exc.strerror or exc}). Another hub or app may"
                f" be using it: pick another port.")
            self.view.port_spin.setValue(suggestion)
            self.view.port_row.show()
            return
        finally:
            self._busy = False
            self.view.host_button.setEnabled(True)
        self.hosted = hosted
        if port:
            self.settings.host_port = port
        self.view.port_row.hide()
        self.view.host_button.setText("Stop hosting")
        self.view.host_button.setObjectName("danger")
        self.view.host_button.style().unpolish(self.view.host_button)
        self.view.host_button.style().polish(self.view.host_button)
        where = hosted.lan_url.removeprefix("http://")
        published = (f"Published on the LAN as {hosted.publisher.announcement.name!r}."
                     if hosted.publisher else f"Not published on the LAN: {hosted.mdns_problem}")
        self.view.host_status.setText(f"Hosting on {where}\n{published}")
        self.hosting_changed.emit(hosted)
        await self._add_firewall_commands(hosted)

    async def _add_firewall_commands(self, hosted: HostedHub) -> None:
        """A Linux firewall never asks: put the commands that open the ports in sight."""
        if not reachable_from_lan(self.config.host_bind):
            return
        advice = await asyncio.to_thread(firewall_advice, hosted.port)
        if advice.commands and self.hosted is hosted:  # Still hosting that same hub.
            lines = ("Firewall: " + advice.what_happens, *advice.commands)
            self.view.host_status.setText(self.view.host_status.text() + "\n" + "\n".join(lines))

    async def stop(self) -> None:
        """Stop the hub, all the way even if this caller is cancelled.

        The hub's own stop is shielded and kept in :attr:`_stopping`: a click's stop that
        the window's shutdown cancels midway would otherwise leave the hub half closed
        (its database and sweeper never closed), and the shutdown's own ``stop()`` call,
        finding nothing hosted, would not wait for it."""
        hosted, self.hosted = self.hosted, None
        if hosted is None:
            if self._stopping is not None:
                await asyncio.shield(self._stopping)
            return
        self.view.host_button.setEnabled(False)
        stopping = self._stopping = asyncio.ensure_future(hosted.stop())
        try:
            await asyncio.shield(stopping)
        finally:
            if stopping.done() and self._stopping is stopping:
                self._stopping = None
        self.view.host_button.setEnabled(True)
        self.view.host_button.setText("Host a hub")
        self.view.host_button.setObjectName("primary")
        self.view.host_button.style().unpolish(self.view.host_button)
        self.view.host_button.style().polish(self.view.host_button)
        self.view.host_status.setText("Stopped. The hub said goodbye on the LAN.")
        self.hosting_changed.emit(None)
