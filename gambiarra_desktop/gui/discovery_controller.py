"""The live hub list: hubs found by mDNS, hubs added by address, and the local hub."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QListWidgetItem

from gambiarra_desktop.discovery.browser import DiscoveredHub, HubBrowser
from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.discovery.interfaces import lan_addresses
from gambiarra_desktop.gui.bridge import CoreBridge
from gambiarra_desktop.gui.config import GuiConfig
from gambiarra_desktop.gui.models import HubEntry
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.sidebar_view import SidebarView
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError

KEY_ROLE = Qt.ItemDataRole.UserRole


def normalize_hub_url(text: str) -> str:
    url = text.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    host_part = url.split("://", 1)[1]
    if ":" not in host_part.split("/")[0].split("]")[-1]:
        url += ":3000"
    return url


class DiscoveryController(QObject):
    hub_selected = Signal(object)  # HubEntry

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
        self.local_hub_id: str | None = None
        """The hub this app hosts: found on the LAN too, but listed once, as this computer."""
        self.browser: HubBrowser | None = None
        self._bridge = bridge
        bridge.hub_found.connect(self.on_hub_seen)
        bridge.hub_updated.connect(self.on_hub_seen)
        bridge.hub_gone.connect(self.on_hub_gone)
        view.hub_list.currentItemChanged.connect(self._on_current_changed)
        view.add_address_submitted.connect(self.add_by_address)
        self._refresh_empty()

    async def start(self) -> None:
        interfaces = [a.address for a in lan_addresses(self.config.mdns_interface)] or None
        self.browser = HubBrowser(interfaces, on_change=self._bridge.on_hub_change)
        try:
            await self.browser.start()
        except OSError as exc:  # No multicast on this network: manual hubs still work.
            self.view.empty_label.setText(f"Cannot search the network: {exc}")
            self.browser = None
        for url in self.settings.manual_hubs:
            self.upsert(HubEntry(f"manual:{url}", url.removeprefix("http://"), url, 0, "manual"))

    async def stop(self) -> None:
        if self.browser is not None:
            await self.browser.stop()
            self.browser = None

    def on_hub_seen(self, hub: DiscoveredHub) -> None:
        if hub.hub_id and hub.hub_id == self.local_hub_id:
            local = self.entries.get("local")
            if local is not None:
                local.room_count = hub.room_count
                self.upsert(local)
            return
        self.upsert(HubEntry(f"lan:{hub.hub_id or hub.service_name}", hub.name, hub.url,
                             hub.room_count, "lan"))

    def on_hub_gone(self, hub: DiscoveredHub) -> None:
        self.remove(f"lan:{hub.hub_id or hub.service_name}")

    def on_hosting_changed(self, hosted: HostedHub | None) -> None:
        if hosted is None:
            self.local_hub_id = None
            self.remove("local")
        else:
            if hosted.publisher is not None:
                self.local_hub_id = hosted.publisher.announcement.hub_id
                self.remove(f"lan:{self.local_hub_id}")
            self.upsert(HubEntry("local", "This computer (your hub)", hosted.lan_url,
                                 len(hosted.server.registry), "local"))

    def upsert(self, entry: HubEntry) -> None:
        self.entries[entry.key] = entry
        item = self._item(entry.key)
        if item is None:
            item = QListWidgetItem()
            item.setData(KEY_ROLE, entry.key)
            self.view.hub_list.addItem(item)
        item.setText(entry.label())
        item.setToolTip(entry.url)
        self._refresh_empty()

    def remove(self, key: str) -> None:
        self.entries.pop(key, None)
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

    def _refresh_empty(self) -> None:
        self.view.show_hub_list_empty(not self.entries)

    def _on_current_changed(self, current: QListWidgetItem | None, _: object) -> None:
        if current is not None:
            entry = self.entries.get(str(current.data(KEY_ROLE)))
            if entry is not None:
                self.hub_selected.emit(entry)

    @tracked_slot(str)
    async def add_by_address(self, text: str) -> None:
        url = normalize_hub_url(text)
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
