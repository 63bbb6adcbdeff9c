"""Where an SSH or Telnet session may connect, decided on the address actually used.

A name is resolved ONCE here and the caller connects to the returned IP, never to the name
again: checking one resolution and connecting after a second one would let a name that
changes its answer (DNS rebinding) slip past the check. The check is on the address, not on
the name, because ``metadata.internal`` or a name pointing at ``169.254.169.254`` are the
same target as the literal.
"""

from __future__ import annotations

from gambiarra_desktop.hub.ip_addresses import parse_ip
from gambiarra_desktop.hub.proxy.endpoint_policy import address_problem, resolve
from gambiarra_desktop.terminal.errors import TargetRefusedError, TargetUnreachableError

RESOLVE_TIMEOUT_S = 5.0
"""A resolver that never answers must not hold a session's creation (and its slot) open."""


async def resolve_target(host: str, port: int, *, telnet: bool) -> str:
    """The one IP to connect to for ``host:port``, or a refusal.

    Refused everywhere, by the proxy's own rule for where the hub may dial (security rule
    1, one definition for both): link-local, cloud metadata addresses, multicast,
    unspecified and reserved ranges, and IPv6 forms that carry one of those (NAT64, 6to4,
    Teredo). None of them is a machine someone means to log in to, and some are how a
    cloud host's credentials leak. Loopback is allowed: the caller is the admin on this
    machine already. Telnet is clear text, so it is also kept to private ranges (loopback
    included): a password typed into it never crosses the internet.
    """
    try:
        addresses = await resolve(host, port, RESOLVE_TIMEOUT_S)
    except TimeoutError:
        raise TargetUnreachableError(f"resolving {host!r} took longer than"
                                     f" {RESOLVE_TIMEOUT_S:g} s") from None
    except (OSError, UnicodeError, ValueError) as exc:  # gaierror is an OSError.
        raise TargetUnreachableError(f"cannot resolve {host!r}: {exc}") from None
    address = str(addresses[0])
    check_address(address, telnet=telnet)
    return address


def check_address(address: str, *, telnet: bool) -> None:
    """Raise :class:`TargetRefusedError` unless a session may connect to ``address``."""
    ip = parse_ip(address)  # IPv4-mapped unwrapped: ::ffff:169.254.169.254 is that address.
    if ip is None:
        raise TargetRefusedError(f"{address!r} is not an IP address")
    why = address_problem(ip, allow_loopback=True, meant="a host to log in to")
    if why is None and telnet and not ip.is_private:
        why = "not a private address (Telnet is clear text: LAN and loopback only)"
    if why is not None:
        raise TargetRefusedError(f"{address} is {why}")
