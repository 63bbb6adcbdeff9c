"""Putting a running hub on the LAN: the one place the CLI and the GUI's Host button share."""

from __future__ import annotations

import logging
from pathlib import Path

from gambiarra_desktop.discovery.announcement import HubAnnouncement, default_hub_name
from gambiarra_desktop.discovery.interfaces import InterfaceAddress, lan_addresses
from gambiarra_desktop.discovery.publisher import HubPublisher, NameTakenError
from gambiarra_desktop.events import EventBus
from gambiarra_desktop.gateway.accounts import password_file_notice
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.identity import load_or_create_hub_id
from gambiarra_desktop.hub.keys import BUS
from gambiarra_desktop.hub.server import HubServer
from gambiarra_desktop.protocol import DEFAULT_HOST, DEFAULT_PORT
from gambiarra_desktop.terminal.approvals import ApprovalDesk
from gambiarra_desktop.terminal.manager import TERMINAL

log = logging.getLogger(__name__)


class NoLanAddressError(Exception):
    """No interface to advertise on; the message says what to check."""


def no_address_message(interface: str | None) -> str:
    where = f"interface {interface!r}" if interface else "any real network interface"
    return f"no IPv4 address on {where}: connect to a Wi-Fi or LAN, or pick an interface"


def hub_publisher(
    server: HubServer, addresses: list[InterfaceAddress], name: str | None = None,
    cooperating: bool = False,
) -> HubPublisher:
    """A publisher for ``server`` (not started), keeping its room count current."""
    announcement = HubAnnouncement(
        hub_id=load_or_create_hub_id(server.data_dir), name=name or default_hub_name(),
        port=server.port, addresses=tuple(a.address for a in addresses),
        room_count=len(server.registry),
    )
    publisher = HubPublisher(announcement, cooperating=cooperating)
    publisher.follow_rooms(server.app[BUS], lambda: len(server.registry))
    return publisher


async def publish_hub(
    server: HubServer,
    name: str | None = None,
    interface: str | None = None,
    cooperating: bool = False,
) -> tuple[HubPublisher, list[InterfaceAddress]]:
    addresses = lan_addresses(interface)
    if not addresses:
        raise NoLanAddressError(no_address_message(interface))
    publisher = hub_publisher(server, addresses, name, cooperating)
    try:
        await publisher.start()
    except BaseException:
        await publisher.stop()
        raise
    return publisher, addresses


class LanPublication:
    """A hub's place on the LAN, kept while the network changes: published on this
    machine's LAN addresses, moved when they change, withdrawn while there are none. mDNS
    trouble never raises: the hub stays reachable by address, and the reason is kept in
    :attr:`problem`. The app's hosted hub and ``gambiarra serve --mdns`` both use it."""

    def __init__(self, server: HubServer, name: str | None = None,
                 interface: str | None = None, cooperating: bool = False) -> None:
        self.server = server
        self.interface = interface
        self.addresses: list[InterfaceAddress] = []
        self.problem = ""
        self._name = name
        self._cooperating = cooperating
        self._publisher: HubPublisher | None = None

    @property
    def publisher(self) -> HubPublisher | None:
        """The publication while the hub is on the LAN; ``None`` while it is not (no LAN
        address yet, or its name could not be made unique)."""
        publisher = self._publisher
        return publisher if publisher is not None and publisher.published else None

    async def start(self) -> None:
        """Publish on the LAN addresses there are now (none: wait for :meth:`follow`).
        Called once the hub listens: its announcement carries the port it got."""
        addresses = lan_addresses(self.interface)
        self._publisher = hub_publisher(self.server, addresses, self._name, self._cooperating)
        await self.follow(addresses, first=True)

    async def follow(self, addresses: list[InterfaceAddress], first: bool = False) -> None:
        """Publish on ``addresses``, this machine's LAN addresses now: a hub that went up
        before the Wi-Fi did gets on the LAN, and one whose address moved follows it."""
        publisher = self._publisher
        if publisher is None:
            return
        try:
            if first and addresses:
                await publisher.start()
            else:
                await publisher.move_to(tuple(a.address for a in addresses))
        except (NameTakenError, OSError) as exc:
            self.addresses, self.problem = [], str(exc)
            return
        self.addresses = addresses
        self.problem = "" if addresses else no_address_message(self.interface)

    async def stop(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.stop()


class HostedHub:
    """A hub this app runs and publishes: what the GUI's Host button starts and stops."""

    def __init__(
        self,
        data_dir: Path,
        port: int = DEFAULT_PORT,
        host: str = DEFAULT_HOST,
        name: str | None = None,
        interface: str | None = None,
        cooperating_mdns: bool = False,
        bus: EventBus | None = None,
        redis_url: str | None = None,
        enable_terminal: bool = False,
    ) -> None:
        config = HubConfig(redis_url=redis_url or None, enable_terminal=enable_terminal)
        self.server = HubServer(data_dir, host, port, config=config, bus=bus)
        # The app hosts: a new terminal session waits for the host's yes. Set before the
        # hub listens, so none opens unasked; until the window listens, the desk says no.
        self.server.app[TERMINAL].approvals = ApprovalDesk()
        self.lan = LanPublication(self.server, name, interface, cooperating_mdns)

    @property
    def publisher(self) -> HubPublisher | None:
        """The hub's publication while it is on the LAN; ``None`` while it is not."""
        return self.lan.publisher

    @property
    def addresses(self) -> list[InterfaceAddress]:
        """The LAN addresses the hub is published on now."""
        return self.lan.addresses

    @property
    def mdns_problem(self) -> str:
        """Why the hub is not on the LAN ("" while it is)."""
        return self.lan.problem

    @property
    def hub_id(self) -> str:
        """The hub's lasting identity, known from the start: the app lists the hub it
        hosts once even while its publication is being moved (and so is ``None``)."""
        return load_or_create_hub_id(self.server.data_dir)

    @property
    def interface(self) -> str | None:
        return self.lan.interface

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def local_url(self) -> str:
        return self.server.url

    @property
    def lan_url(self) -> str:
        """The URL people on the LAN use: the first advertised address."""
        if self.addresses:
            return f"http://{self.addresses[0].address}:{self.port}"
        return self.server.url

    async def start(self) -> None:
        """Serve and publish. ``OSError`` when the port is taken; mDNS trouble does not stop
        the hub (it stays reachable by address) and is kept in :attr:`mdns_problem`."""
        await self.server.start()
        if (password_file := self.server.new_admin_password_file) is not None:
            log.info(password_file_notice(password_file))
        await self.lan.start()

    async def follow_network(self, addresses: list[InterfaceAddress]) -> None:
        """Follow a change of this machine's LAN addresses (see :class:`LanPublication`)."""
        await self.lan.follow(addresses)

    async def stop(self) -> None:
        await self.lan.stop()
        await self.server.stop()
