"""The live hub list: hubs found by mDNS, hubs added by address, and the local hub.

The list follows the network: when this machine's addresses change (a Wi-Fi that joins
after start, a moved DHCP lease) the browser and the hosted hub's publication move to the
new interfaces, and *Look again* searches afresh on demand. A hub that stops answering
while it is the one in use is greyed, not removed, so the page on the right stays put.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import psutil
from PySide6.QtCore import QObject, QPoint, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QListWidgetItem, QMenu

from gambiarra_desktop.discovery.browser import DiscoveredHub, HubBrowser
from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.discovery.interfaces import InterfaceAddress
from gambiarra_desktop.discovery.watcher import InterfaceWatcher
from gambiarra_desktop.gui.bridge import CoreBridge
from gambiarra_desktop.gui.config import GuiConfig
from gambiarra_desktop.gui.models import HubEntry
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.sidebar_view import SidebarView
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError

KEY_ROLE = Qt.ItemDataRole.UserRole
GONE_TEXT = "Not seen on the network"
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"})  # noqa: S104


def normalize_hub_url(text: str) -> str:
    url = text.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    host_part = url.split("://", 1)[1]
    if ":" not in host_part.split("/")[0].split("]")[-1]:
        url += ":3000"
    return url


def this_machine_names() -> set[str]:
    """Every name and address that means "this computer": its own hub reached through
    any of them is the same hub."""
    names = set(LOCAL_NAMES)
    host = socket.gethostname().lower()
    names |= {host, host.split(".")[0], host.split(".")[0] + ".local"}
    for entries in psutil.net_if_addrs().values():
        names |= {entry.address.split("%")[0].lower() for entry in entries
                  if entry.family in (socket.AF_INET, socket.AF_INET6)}
    return names


def points_at(url: str, hosted: HostedHub) -> bool:
    """Whether ``url`` is the address of the hub this app hosts."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if port != hosted.port or not host:
        return False
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    return host in this_machine_names()


class DiscoveryController(QObject):
    hub_selected = Signal(object)  # HubEntry
    network_changed = Signal()
    """This machine's LAN addresses changed (the hosted hub and the browser have moved)."""

    def __init__(
        self, view: SidebarView, bridge: CoreBridge, config: GuiConfig, settings: AppSettings,
        tasks: TaskTracker,
    ) -> None:
        super().__init__()
        self.tasks = tasks
        self.view = view
        self.config = config
        self.settings = settings
        self.entries: dict[str, HubEntry] = {}
        self.gone: set[str] = set()
        """Keys of hubs that left the network while in use: greyed, kept until let go."""
        self.local_hub_id: str | None = None
        """The hub this app hosts: found on the LAN too, but listed once, as this computer."""
        self.hosted: HostedHub | None = None
        self.browser: HubBrowser | None = None
        self.watcher = InterfaceWatcher(self.on_network_changed, config.mdns_interface)
        self._bridge = bridge
        bridge.hub_found.connect(self.on_hub_seen)
        bridge.hub_updated.connect(self.on_hub_seen)
        bridge.hub_gone.connect(self.on_hub_gone)
        view.hub_list.currentItemChanged.connect(self._on_current_changed)
        view.hub_list.customContextMenuRequested.connect(self._show_context_menu)
        view.add_address_submitted.connect(self.add_by_address)
        view.look_again_clicked.connect(self.look_again)
        view.remove_hub_clicked.connect(self.remove_selected_manual_hub)
        self._refresh_empty()

    def _browse_interfaces(
        self, addresses: list[InterfaceAddress] | None = None
    ) -> list[str] | None:
        """The LAN addresses to browse on; with an interface chosen that has no address,
        none at all (``[]``), never every interface the machine has."""
        found = [a.address for a in (self.watcher.addresses if addresses is None
                                     else addresses)]
        return found if found or self.config.mdns_interface is not None else None

    async def start(self) -> None:
        self.browser = HubBrowser(self._browse_interfaces(),
                                  on_change=self._bridge.on_hub_change)
        try:
            await self.browser.start()
        except OSError as exc:  # No multicast on this network: manual hubs still work.
            self.view.empty_label.setText(f"Cannot search the network: {exc}")
            self.browser = None
        self._show_manual_hubs()
        self.watcher.start()

    async def stop(self) -> None:
        await self.watcher.stop()
        if self.browser is not None:
            await self.browser.stop()
            self.browser = None

    # The network changing under the app.

    async def on_network_changed(self, addresses: list[InterfaceAddress]) -> None:
        """Move the hosted hub's publication and the browser to the new addresses, both
        at once: the hub re-announces while the browser asks afresh."""
        work = [self._follow_with_hosted_hub(addresses)]
        if self.browser is not None:
            work.append(self._rebrowse(self._browse_interfaces(addresses)))
        await asyncio.gather(*work)
        self.network_changed.emit()

    async def _rebrowse(self, interfaces: list[str] | None) -> None:
        if self.browser is None:
            return
        self.view.show_looking(True)
        try:
            await self.browser.move_to(interfaces)
        except OSError as exc:
            self.view.empty_label.setText(f"Cannot search the network: {exc}")
        finally:
            self.view.show_looking(False)
        self._prune_gone()

    async def _follow_with_hosted_hub(self, addresses: list[InterfaceAddress]) -> None:
        hosted = self.hosted
        if hosted is None:
            return
        await hosted.follow_network(addresses)
        if self.hosted is not hosted:  # Stopped meanwhile.
            return
        local = self.entries.get("local")
        if local is not None:
            local.url = hosted.lan_url
            self.upsert(local)
        where = hosted.lan_url.removeprefix("http://")
        published = (f"Published on the LAN as {hosted.publisher.announcement.name!r}."
                     if hosted.publisher else f"Not published on the LAN: {hosted.mdns_problem}")
        self.view.host_status.setText(f"Network changed. Hosting on {where}\n{published}")

    @tracked_slot()
    async def look_again(self) -> None:
        """*Look again*: pick up a changed network now rather than at the next poll, then
        search afresh and drop the hubs that no longer answer."""
        if self.browser is None or self.browser.looking:
            return
        self.view.show_looking(True)
        try:
            if not await self.watcher.check_now() and self.browser is not None:
                await self.browser.look_again()
        except OSError as exc:
            self.view.empty_label.setText(f"Cannot search the network: {exc}")
        finally:
            self.view.show_looking(False)
        self._prune_gone()

    # Hubs coming and going.

    def _is_local(self, hub: DiscoveredHub) -> bool:
        hosted = self.hosted
        if hosted is not None and hosted.publisher is not None:
            # By service name: a copy of this hub's data dir elsewhere has the same id.
            return hub.service_name == hosted.publisher.announcement.service_name
        return bool(hub.hub_id) and hub.hub_id == self.local_hub_id

    def on_hub_seen(self, hub: DiscoveredHub) -> None:
        if self._is_local(hub):
            local = self.entries.get("local")
            if local is not None:
                local.room_count = hub.room_count
                self.upsert(local)
            return
        key = f"lan:{hub.hub_id or hub.service_name}"
        self.gone.discard(key)
        self.upsert(HubEntry(key, hub.name, hub.url, hub.room_count, "lan"))

    def on_hub_gone(self, hub: DiscoveredHub) -> None:
        """A hub in use (selected, or its room open) is greyed in place: removing it would
        move the selection and switch the page under the user. Others just go."""
        key = f"lan:{hub.hub_id or hub.service_name}"
        if key in self.entries and key == self._current_key():
            self.gone.add(key)
            self.upsert(self.entries[key])
        else:
            self.remove(key)

    def _prune_gone(self) -> None:
        for key in list(self.gone):
            if key != self._current_key():
                self.remove(key)

    def on_hosting_changed(self, hosted: HostedHub | None) -> None:
        self.hosted = hosted
        if hosted is None:
            self.local_hub_id = None
            self.remove("local")
            self._show_manual_hubs()  # The ones hidden as this hub come back.
        else:
            self.local_hub_id = hosted.hub_id
            self.remove(f"lan:{self.local_hub_id}")
            for key, entry in list(self.entries.items()):
                if entry.source == "manual" and points_at(entry.url, hosted):
                    self.remove(key)  # Listed once, as this computer.
            self.upsert(HubEntry("local", "This computer (your hub)", hosted.lan_url,
                                 len(hosted.server.registry), "local"))

    # The list itself.

    def upsert(self, entry: HubEntry) -> None:
        self.entries[entry.key] = entry
        item = self._item(entry.key)
        if item is None:
            item = QListWidgetItem()
            item.setData(KEY_ROLE, entry.key)
            self.view.hub_list.addItem(item)
        if entry.key in self.gone:
            item.setText(f"{entry.label()}\n{GONE_TEXT}")
            item.setToolTip(f"{entry.url}\n{GONE_TEXT}: it may have stopped, or left the"
                            " network. Pages already open keep trying to reach it.")
            item.setForeground(self.view.palette().color(QPalette.ColorGroup.Disabled,
                                                         QPalette.ColorRole.Text))
        else:
            item.setText(entry.label())
            item.setToolTip(entry.url)
            item.setData(Qt.ItemDataRole.ForegroundRole, None)  # The theme's colour again.
        self._refresh_empty()

    def remove(self, key: str) -> None:
        self.entries.pop(key, None)
        self.gone.discard(key)
        item = self._item(key)
        if item is not None:
            self.view.hub_list.takeItem(self.view.hub_list.row(item))
        self._refresh_empty()

    def select(self, key: str) -> None:
        item = self._item(key)
        if item is not None:
            self.view.hub_list.setCurrentItem(item)

    def _item(self, key: str) -> QListWidgetItem | None:
        for row in range(self.view.hub_list.count()):
            item = self.view.hub_list.item(row)
            if item.data(KEY_ROLE) == key:
                return item
        return None

    def _current_key(self) -> str | None:
        item = self.view.hub_list.currentItem()
        return str(item.data(KEY_ROLE)) if item is not None else None

    def _refresh_empty(self) -> None:
        self.view.show_hub_list_empty(not self.entries)
        current = self.entries.get(self._current_key() or "")
        self.view.remove_hub_button.setVisible(current is not None
                                               and current.source == "manual")

    def _on_current_changed(self, current: QListWidgetItem | None, _: object) -> None:
        self._refresh_empty()
        if current is not None:
            entry = self.entries.get(str(current.data(KEY_ROLE)))
            if entry is not None:
                self.hub_selected.emit(entry)

    # Hubs added by address.

    def _show_manual_hubs(self) -> None:
        for url in self.settings.manual_hubs:
            if self.hosted is not None and points_at(url, self.hosted):
                continue
            self.upsert(HubEntry(f"manual:{url}", url.removeprefix("http://"), url, 0,
                                 "manual"))

    def remove_manual_hub(self, key: str) -> None:
        """Remove a hub added by address, from the list and from the settings."""
        entry = self.entries.get(key)
        if entry is None or entry.source != "manual":
            return
        self.settings.forget_manual_hub(entry.url)
        self.remove(key)

    def remove_selected_manual_hub(self) -> None:
        key = self._current_key()
        if key is not None:
            self.remove_manual_hub(key)

    def _show_context_menu(self, position: QPoint) -> None:
        item = self.view.hub_list.itemAt(position)
        entry = self.entries.get(str(item.data(KEY_ROLE))) if item is not None else None
        if entry is None or entry.source != "manual":
            return
        menu = QMenu(self.view.hub_list)
        menu.setObjectName("hubMenu")
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        remove = menu.addAction("Remove this hub")
        remove.triggered.connect(lambda: self.remove_manual_hub(entry.key))
        menu.popup(self.view.hub_list.viewport().mapToGlobal(position))

    @tracked_slot(str)
    async def add_by_address(self, text: str) -> None:
        url = normalize_hub_url(text)
        if self.hosted is not None and points_at(url, self.hosted):
            # Your own hub by another of its addresses: the entry it already has.
            self.view.show_address_error("")
            self.view.address_edit.clear()
            self.view.address_row.hide()
            self.select("local")
            return
        self.view.address_button.setEnabled(False)
        self.view.show_address_error("")
        try:
            async with HubClient(url, timeout_s=5) as hub:
                rooms = await hub.list_rooms()
        except (HubUnreachableError, HubApiError) as exc:
            self.view.show_address_error(f"No hub answers at {url}: {exc}")
            return
        finally:
            self.view.address_button.setEnabled(True)
        self.settings.remember_manual_hub(url)
        key = f"manual:{url}"
        self.upsert(HubEntry(key, url.removeprefix("http://"), url, len(rooms), "manual"))
        self.view.address_edit.clear()
        self.view.address_row.hide()
        self.select(key)
