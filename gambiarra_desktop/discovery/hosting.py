"""Putting a running hub on the LAN: the one place the CLI and the GUI's Host button share."""

from __future__ import annotations

from gambiarra_desktop.discovery.announcement import HubAnnouncement, default_hub_name
from gambiarra_desktop.discovery.interfaces import InterfaceAddress, lan_addresses
from gambiarra_desktop.discovery.publisher import HubPublisher
from gambiarra_desktop.hub.identity import load_or_create_hub_id
from gambiarra_desktop.hub.keys import BUS
from gambiarra_desktop.hub.server import HubServer


class NoLanAddressError(Exception):
    """No interface to advertise on; the message says what to check."""


async def publish_hub(
    server: HubServer,
    name: str | None = None,
    interface: str | None = None,
    cooperating: bool = False,
) -> tuple[HubPublisher, list[InterfaceAddress]]:
    addresses = lan_addresses(interface)
    if not addresses:
        where = f"interface {interface!r}" if interface else "any real network interface"
        raise NoLanAddressError(
            f"no IPv4 address on {where}: connect to a Wi-Fi or LAN, or pick an interface"
        )
    announcement = HubAnnouncement(
        hub_id=load_or_create_hub_id(server.data_dir), name=name or default_hub_name(),
        port=server.port, addresses=tuple(a.address for a in addresses),
        room_count=len(server.registry),
    )
    publisher = HubPublisher(announcement, cooperating=cooperating)
    await publisher.start()
    publisher.follow_rooms(server.app[BUS], lambda: len(server.registry))
    return publisher, addresses
