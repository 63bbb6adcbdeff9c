"""Which of this machine's addresses a hub should advertise.

Wrong advertised addresses are the most common complaint about LAN tools: a laptop with
Docker, a VPN and a VM adapter has half a dozen addresses, and only the Wi-Fi or Ethernet
one is reachable by the people in the room. So by default only real, up, non-loopback
interfaces count, and the user can name the one to use.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

import psutil

VIRTUAL_INTERFACE_PREFIXES = (
    "docker", "veth", "br-", "virbr", "vmnet", "vboxnet", "vethernet", "utun", "tun",
    "tap", "tailscale", "zt", "wg", "ham", "llw", "awdl", "anpi", "bridge", "gif", "stf",
    "p2p", "cni", "flannel", "cali", "kube", "podman", "lxc", "lxd", "vnic", "ipsec",
    "ppp", "nordlynx", "proton", "lo",
)
"""Name prefixes of loopback, container, VM and VPN adapters (Linux, macOS, Windows)."""


@dataclass(frozen=True, slots=True)
class InterfaceAddress:
    interface: str
    address: str


def is_virtual(interface: str) -> bool:
    name = interface.lower()
    return name.startswith(VIRTUAL_INTERFACE_PREFIXES) or "loopback" in name


def lan_addresses(interface: str | None = None) -> list[InterfaceAddress]:
    """IPv4 addresses to advertise: of ``interface`` if given (a name or an address of
    this machine, loopback allowed), else of every real interface that is up."""
    stats = psutil.net_if_stats()
    found: list[InterfaceAddress] = []
    for name, entries in psutil.net_if_addrs().items():
        for entry in entries:
            if entry.family != socket.AF_INET:
                continue
            address = ipaddress.IPv4Address(entry.address)
            if interface is not None:
                if interface in (name, entry.address) and not address.is_unspecified:
                    found.append(InterfaceAddress(name, entry.address))
                continue
            if is_virtual(name) or (name in stats and not stats[name].isup):
                continue
            if address.is_loopback or address.is_link_local or address.is_unspecified:
                continue
            found.append(InterfaceAddress(name, entry.address))
    # Private LAN ranges first: a public address on a laptop is rarely what the room uses.
    found.sort(key=lambda a: (not ipaddress.IPv4Address(a.address).is_private, a.interface))
    return found
