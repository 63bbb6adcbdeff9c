"""Putting a running hub on the LAN: the one place the CLI and the GUI's Host button share."""

from __future__ import annotations

import logging
from pathlib import Path

from gambiarra_desktop.discovery.announcement import HubAnnouncement, default_hub_name
from gambiarra_desktop.discovery.interfaces import InterfaceAddress, lan_addresses
from gambiarra_desktop.discovery.publisher import HubPublisher
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
        self._name = name
        self._interface = interface
        self._cooperating = cooperating_mdns
        self.publisher: HubPublisher | None = None
        self.addresses: list[InterfaceAddress] = []
        self.mdns_problem = ""

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
        try:
            self.publisher, self.addresses = await publish_hub(
                self.server, self._name, self._interface, self._cooperating
            )
        except (NoLanAddressError, OSError) as exc:
            self.mdns_problem = str(exc)

    async def stop(self) -> None:
        if self.publisher is not None:
            await self.publisher.stop()
            self.publisher = None
        await self.server.stop()
