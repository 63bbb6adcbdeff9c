"""Where an SSH or Telnet session may connect, decided on the address actually used.

A name is resolved ONCE here and the caller connects to the returned IP, never to the name
again: checking one resolution and connecting after a second one would let a name that
changes its answer (DNS rebinding) slip past the check. The check is on the address, not on
the name, because ``metadata.internal`` or a name pointing at ``169.254.169.254`` are the
same target as the literal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from gambiarra_desktop.terminal.errors import TargetRefusedError, TargetUnreachableError

RESOLVE_TIMEOUT_S = 5.0
"""A resolver that never answers must not hold a session's creation (and its slot) open."""

METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"),  # Cloud instance metadata (AWS, GCP, Azure...).
    ipaddress.ip_address("fd00:ec2::254"),    # AWS's IPv6 metadata: a ULA, so "private".
})

THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
"""Linux connects 0.x.y.z to the machine itself; it is no one's real address."""

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def resolve_target(host: str, port: int, *, telnet: bool) -> str:
    """The one IP to connect to for ``host:port``, or a refusal.

    Refused everywhere: link-local, the metadata addresses, multicast, unspecified and
    reserved ranges (none of them is a machine someone means to log in to, and some are
    how a cloud host's credentials leak). Telnet is clear text, so it is also kept to
    private ranges (loopback included): a password typed into it never crosses the
    internet.
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise TargetUnreachableError(f"resolving {host!r} took longer than"
                                     f" {RESOLVE_TIMEOUT_S:g} s") from None
    except (OSError, UnicodeError, ValueError) as exc:  # gaierror is an OSError.
        raise TargetUnreachableError(f"cannot resolve {host!r}: {exc}") from None
    if not infos:
        raise TargetUnreachableError(f"{host!r} has no address")
    address = str(infos[0][4][0])
    check_address(address, telnet=telnet)
    return address


def check_address(address: str, *, telnet: bool) -> None:
    """Raise :class:`TargetRefusedError` unless a session may connect to ``address``."""
    try:
        ip: IpAddress = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0
    except ValueError:
        raise TargetRefusedError(f"{address!r} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254 on the wire.
    why = _refusal(ip, telnet=telnet)
    if why:
        raise TargetRefusedError(f"{address} is {why}")


def _refusal(ip: IpAddress, *, telnet: bool) -> str:
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified or ip in THIS_NETWORK:
        return "the unspecified address"
    if ip.is_reserved:
        return "in a reserved range"
    if telnet and not ip.is_private:
        return "not a private address (Telnet is clear text: LAN and loopback only)"
    return ""
