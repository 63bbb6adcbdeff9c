"""What a hub says about itself on the LAN: the TXT record of its mDNS service."""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace

from gambiarra_desktop.protocol import MDNS_SERVICE_TYPE, PROTOCOL_VERSION

API_PATH = "/rooms"
MAX_INSTANCE_LABEL_BYTES = 63


@dataclass(frozen=True, slots=True)
class HubAnnouncement:
    hub_id: str
    name: str
    port: int
    addresses: tuple[str, ...]
    room_count: int = 0
    api_path: str = API_PATH
    version: str = PROTOCOL_VERSION
    instance: int = 1
    """2, 3… when another responder on the LAN already holds this hub's names (a copy of
    its data dir, ``gambiarra serve`` beside the app): the name then reads "Name (2)"."""

    @property
    def service_name(self) -> str:
        """Unique on the LAN thanks to the hub id, readable thanks to the name."""
        suffix = f" [{self.hub_id[:8]}]"
        label = self.name.replace(".", " ")
        while len((label + suffix).encode()) > MAX_INSTANCE_LABEL_BYTES:
            label = label[:-1]
        return f"{label}{suffix}.{MDNS_SERVICE_TYPE}"

    @property
    def host_name(self) -> str:
        """The A record's name; unique per hub so two hubs on one machine do not clash."""
        host = "".join(c if c.isalnum() else "-" for c in socket.gethostname().split(".")[0])
        again = f"-{self.instance}" if self.instance > 1 else ""
        return f"{host or 'gambiarra'}-{self.hub_id[:8]}{again}.local."

    def properties(self) -> dict[str, str]:
        return {"v": self.version, "name": self.name, "id": self.hub_id,
                "path": self.api_path, "rooms": str(self.room_count)}

    def with_rooms(self, count: int) -> HubAnnouncement:
        return replace(self, room_count=count)

    def with_addresses(self, addresses: tuple[str, ...]) -> HubAnnouncement:
        return replace(self, addresses=addresses)

    def numbered(self, base_name: str, instance: int) -> HubAnnouncement:
        """This hub as the ``instance``-th of its name: "Name (2)", with its own records."""
        name = base_name if instance == 1 else f"{base_name} ({instance})"
        return replace(self, name=name, instance=instance)


def default_hub_name() -> str:
    host = socket.gethostname().split(".")[0] or "Gambiarra"
    return f"{host}'s hub"


def packed(addresses: tuple[str, ...]) -> list[bytes]:
    return [socket.inet_aton(address) for address in addresses]
