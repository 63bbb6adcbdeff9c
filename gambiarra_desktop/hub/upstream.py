"""Where and how the hub reaches a participant's model server, and where it must not.

The hub forwards requests to whatever endpoint a participant declares, so without rules it
would be a relay into the hub machine's own services and the cloud metadata address.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

ALLOWED_ENDPOINT_SCHEMES = frozenset({"http", "https"})


def is_valid_endpoint(endpoint: str) -> bool:
    """Only plain http(s) URLs with a host: no ``file:``, no ``unix:``, no credentials."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port  # Raises ValueError for a malformed port.
    except ValueError:
        return False
    del port
    return (
        parts.scheme.lower() in ALLOWED_ENDPOINT_SCHEMES
        and bool(parts.hostname)
        and parts.username is None
        and not parts.query
        and not parts.fragment
    )


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_loopback_peer(peer: str | None) -> bool:
    address = _literal_ip(peer or "")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address is not None and address.is_loopback


def endpoint_refusal(endpoint: str, joined_from: str | None) -> str | None:
    """Why the hub refuses to proxy to ``endpoint`` for a participant joining from
    ``joined_from`` (its IP address), or ``None`` when the endpoint is acceptable.

    - Link-local, unspecified and multicast addresses are never model servers; the
      link-local range holds the cloud metadata service.
    - A loopback endpoint means "this machine" to the participant but "the hub's machine"
      to the hub. It is accepted only from a participant on the hub's own machine; from
      anywhere else it would reach the hub's private services (and would not work anyway).
    """
    host = (urlsplit(endpoint).hostname or "").lower()
    address = _literal_ip(host)
    if address is not None and (
        address.is_link_local or address.is_unspecified or address.is_multicast
    ):
        return f"Invalid endpoint: {host} is not a model server address"
    is_loopback = host in LOOPBACK_NAMES or (address is not None and address.is_loopback)
    if is_loopback and not _is_loopback_peer(joined_from):
        return (
            "Invalid endpoint: a localhost endpoint only works for a participant on the hub's"
            " machine; use this machine's LAN address"
        )
    return None
