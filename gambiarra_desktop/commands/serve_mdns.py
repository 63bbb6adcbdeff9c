"""``gambiarra serve --mdns``: publish the hub on the LAN and keep it published while the
network changes (a Wi-Fi that joins after start, a DHCP lease that moves the address), as
the desktop app does. Each change is printed, so whoever runs the hub sees where it is."""

from __future__ import annotations

from gambiarra_desktop.discovery.hosting import hub_publisher, no_address_message
from gambiarra_desktop.discovery.interfaces import InterfaceAddress, lan_addresses
from gambiarra_desktop.discovery.publisher import HubPublisher, NameTakenError
from gambiarra_desktop.discovery.watcher import DEFAULT_INTERVAL_S, InterfaceWatcher
from gambiarra_desktop.hub import HubServer


def _say(text: str) -> None:
    print(f"  mDNS:      {text}", flush=True)


class LanPresence:
    """The hub's mDNS publication and the watcher that moves it with the network."""

    def __init__(self, server: HubServer, name: str | None, interface: str | None,
                 interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.interface = interface
        addresses = lan_addresses(interface)
        self.publisher: HubPublisher = hub_publisher(server, addresses, name)
        self.port = server.port
        self.watcher = InterfaceWatcher(self._follow, interface, interval_s=interval_s)
        self.watcher.addresses = addresses

    async def start(self) -> None:
        """Publish now if there is a LAN address, else say so; then follow the network."""
        addresses = self.watcher.addresses
        if addresses:
            try:
                await self.publisher.start()
            except (NameTakenError, OSError) as exc:
                _say(f"not published: {exc}")
            else:
                self._say_published(addresses)
        else:
            _say(f"not published yet: {no_address_message(self.interface)}; it will be"
                 " as soon as an address comes")
        self.watcher.start()

    async def _follow(self, addresses: list[InterfaceAddress]) -> None:
        try:
            await self.publisher.move_to(tuple(a.address for a in addresses))
        except (NameTakenError, OSError) as exc:
            _say(f"network changed; not published: {exc}")
            return
        if addresses:
            self._say_published(addresses, "network changed; ")
        else:
            _say("network changed; no LAN address now, so not published until one comes")

    def _say_published(self, addresses: list[InterfaceAddress], prefix: str = "") -> None:
        shown = ", ".join(f"{a.address}:{self.port} ({a.interface})" for a in addresses)
        _say(f"{prefix}advertised as {self.publisher.announcement.name!r} on {shown}")

    async def stop(self) -> None:
        await self.watcher.stop()
        await self.publisher.stop()
