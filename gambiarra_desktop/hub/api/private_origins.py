"""Which browser origins may reach the hub through Chrome's Private Network Access.

The hub keeps ``Access-Control-Allow-Origin: *`` (the seed's CORS), but a page on the
internet must not be able to drive a LAN hub through a visitor's browser. Private Network
Access asks the hub on the preflight; the hub says yes only to pages that are themselves
on a private network or this machine, which were allowed to reach it before PNA existed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gambiarra_desktop.hub.ip_addresses import parse_ip


def is_private_origin(origin: str) -> bool:
    """Whether an ``Origin`` header names a page on loopback, a private or link-local
    address, ``localhost`` (or a name under it) or a ``.local`` mDNS name. ``null`` (a
    sandboxed frame, a file) and anything unparsable are not private."""
    try:
        parts = urlsplit(origin.strip())
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return True
    address = parse_ip(host)
    if address is None:
        return False  # A public DNS name: it may point anywhere, so it gets no grant.
    if address.is_unspecified or address.is_multicast:
        return False
    return address.is_loopback or address.is_link_local or address.is_private
