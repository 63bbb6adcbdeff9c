"""``gambiarra serve --mdns``: publish the hub on the LAN and keep it published while the
network changes (a Wi-Fi that joins after start, a DHCP lease that moves the address), as
the desktop app does (both through :class:`LanPublication`). Each change is printed, so
whoever runs the hub sees where it is."""

from __future__ import annotations

from gambiarra_desktop.discovery.hosting import LanPublication, no_address_message
from gambiarra_desktop.discovery.interfaces import InterfaceAddress
from gambiarra_desktop.discovery.watcher import DEFAULT_INTERVAL_S, InterfaceWatcher
from gambiarra_desktop.hub import HubServer


def _say(text: str) -> None:
    print(f"  mDNS:      {text}", flush=True)


class LanPresence:
    """The hub's LAN publication, the watcher that moves it, and what is said of both."""

    def __init__(self, server: HubServer, name: str | None, interface: str | None,
                 interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.lan = LanPublication(server, name, interface)
        self.port = server.port
        self.watcher = InterfaceWatcher(self._follow, interface, interval_s=interval_s)

    async def start(self) -> None:
        """Publish now if there is a LAN address, else say so; then follow the network."""
        await self.lan.start()
        if self.lan.publisher is not None:
            self._say_published()
        elif self.lan.problem == no_address_message(self.lan.interface):
            _say(f"not published yet: {self.lan.problem}; it will be as soon as an address"
                 " comes")
        else:
            _say(f"not published: {self.lan.problem}")
        self.watcher.start()

    async def _follow(self, addresses: list[InterfaceAddress]) -> None:
        await self.lan.follow(addresses)
        if self.lan.publisher is not None:
            self._say_published("network changed; ")
        elif addresses:
            _say(f"network changed; not published: {self.lan.problem}")
        else:
            _say("network changed; no LAN address now, so not published until one comes")

    def _say_published(self, prefix: str = "") -> None:
        publisher = self.lan.publisher
        assert publisher is not None  # noqa: S101 - only called once published.
        shown = ", ".join(f"{a.address}:{self.port} ({a.interface})" for a in self.lan.addresses)
        _say(f"{prefix}advertised as {publisher.announcement.name!r} on {shown}")

    async def stop(self) -> None:
        await self.watcher.stop()
        await self.lan.stop()
