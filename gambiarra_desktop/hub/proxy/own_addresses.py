"""Which addresses are the hub itself, and which are the hub's machine.

Why the hub needs to know: an endpoint that leads back to the hub's own listening socket
turns one chat into an endless chain of internal requests (a loop), and a participant that
joined from the hub's machine is the only one for whom "localhost" means a server it runs.
The listening sockets are known only after the server has bound them (port 0 picks one), so
:class:`OwnAddresses` is a mutable holder that :class:`~gambiarra_desktop.hub.server.HubServer`
fills in after start; the machine's interface addresses are read with psutil and cached
briefly, because DHCP and VPNs change them while the hub runs.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from functools import lru_cache

import psutil

from gambiarra_desktop.hub.ip_addresses import IPAddress, parse_ip

INTERFACE_CACHE_S = 10.0
"""How long a reading of the machine's interface addresses is trusted."""


@lru_cache(maxsize=4096)
def is_loopback(address: IPAddress) -> bool:
    """``ipaddress`` tests loopback by network containment on every call; the proxy asks
    it of the same few peers on every request."""
    return address.is_loopback


class OwnAddresses:
    """The hub's listening sockets, and the machine's own interface addresses."""

    def __init__(self) -> None:
        self._exact: set[tuple[IPAddress, int]] = set()
        self._wildcard_ports: set[int] = set()
        self._loopback_ports: set[int] = set()
        self._machine: frozenset[IPAddress] = frozenset()
        self._read_at = float("-inf")

    def listening_on(self, sockets: Iterable[socket.socket]) -> None:
        """Record the sockets the hub accepts connections on (after it bound them)."""
        for sock in sockets:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            host, port = sock.getsockname()[:2]
            address = parse_ip(host)
            if address is None:
                continue
            if address.is_unspecified:
                self._wildcard_ports.add(port)
            elif address.is_loopback:
                # Any 127.x (or ::1) with this port: treat as the hub, to be safe.
                self._loopback_ports.add(port)
            self._exact.add((address, port))

    def is_hub(self, address: IPAddress, port: int) -> bool:
        """Whether a connection to ``address:port`` would reach this hub itself."""
        if (address, port) in self._exact:
            return True
        if address.is_loopback and (port in self._loopback_ports or port in self._wildcard_ports):
            return True
        return port in self._wildcard_ports and address in self.machine_addresses()

    def is_this_machine(self, peer: str | None) -> bool:
        """Whether a socket peer address is the hub's own machine: loopback, or one of the
        machine's interface addresses (a participant that reached the hub by its LAN IP).

        Behind a reverse proxy on the same machine every client looks local; the hub is
        meant to be reached directly, as the seed's participants do."""
        address = parse_ip(peer)
        if address is None:
            return False
        return is_loopback(address) or address in self.machine_addresses()

    def machine_addresses(self) -> frozenset[IPAddress]:
        """Every address on every interface of the hub's machine (LAN, VPN, docker bridge,
        loopback). Services there may trust the machine itself, so the endpoint policy keeps
        participants from other machines off all of them, on any port."""
        now = time.monotonic()
        if now - self._read_at > INTERFACE_CACHE_S:
            self._read_at = now
            machine: set[IPAddress] = set()
            try:
                interfaces = psutil.net_if_addrs()
            except OSError:
                interfaces = {}
            for addresses in interfaces.values():
                for entry in addresses:
                    if entry.family not in (socket.AF_INET, socket.AF_INET6):
                        continue
                    address = parse_ip(entry.address)
                    if address is not None:
                        machine.add(address)
            self._machine = frozenset(machine)
        return self._machine
