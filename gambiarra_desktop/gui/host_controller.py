"""The Host button: run the embedded hub in this app's event loop and publish it."""

from __future__ import annotations

import asyncio
import socket

from PySide6.QtCore import QObject, Signal

from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.firewall import firewall_advice, reachable_from_lan
from gambiarra_desktop.gui.config import GuiConfig
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.sidebar_view import SidebarView
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.hub.rooms.store_errors import StoreError


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
        view.host_clicked.connect(self.toggle)
        view.retry_port_clicked.connect(self.start_on)

    @tracked_slot()
    async def toggle(self) -> None:
        if self.hosted is not None:
            await self.stop()
        else:
            port = self.config.host_port
            await self.start(self.settings.host_port if port is None else port)

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
            await hosted.start()
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
        hosted, self.hosted = self.hosted, None
        if hosted is None:
            return
        self.view.host_button.setEnabled(False)
        await hosted.stop()
        self.view.host_button.setEnabled(True)
        self.view.host_button.setText("Host a hub")
        self.view.host_button.setObjectName("primary")
        self.view.host_button.style().unpolish(self.view.host_button)
        self.view.host_button.style().polish(self.view.host_button)
        self.view.host_status.setText("Stopped. The hub said goodbye on the LAN.")
        self.hosting_changed.emit(None)
