"""The web address guests open: the room page on an address the LAN can reach.

A hub on this machine is usually known to the app and the CLI as ``127.0.0.1``, which on a
guest's phone means the phone. A link or a QR code must name this machine's LAN address
instead; where there is none (no network, or a hub that listens on loopback only) there
is no address to give, and callers say so rather than show a link that cannot work.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlsplit, urlunsplit

from gambiarra_desktop.discovery.interfaces import lan_addresses
from gambiarra_desktop.hub.ip_addresses import parse_ip


def room_page_url(hub_url: str, code: str) -> str:
    """The web page of one room on the hub at ``hub_url`` (no secret in it, ever)."""
    return f"{_bare(hub_url)}/r/{quote(code, safe='')}"


def hub_page_url(hub_url: str) -> str:
    """The hub's web page: its rooms."""
    return f"{_bare(hub_url)}/"


def _bare(hub_url: str) -> str:
    """``hub_url`` as scheme, host, port and path only: a ``user:password@`` or a query
    given with ``--hub`` must not end up in a link or a QR code shown to guests."""
    parts = urlsplit(hub_url)
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = parse_ip(host)
    return address is not None and address.is_loopback


def guest_hub_url(hub_url: str, lan_hosts: Sequence[str],
                  listens_on_lan: bool = True) -> str | None:
    """``hub_url`` as a guest on the LAN reaches it: as it is when it already names another
    host; for a hub on this machine (loopback, or ``0.0.0.0``), the same port on this
    machine's first LAN address. ``None`` when guests cannot reach it: no LAN address, or
    a hub that listens on loopback only (``listens_on_lan`` false)."""
    parts = urlsplit(hub_url)
    host = (parts.hostname or "").rstrip(".").lower()
    address = parse_ip(host)
    local = is_loopback_url(hub_url) or (address is not None and address.is_unspecified)
    if not local:
        return _bare(hub_url)
    if not listens_on_lan or not lan_hosts:
        return None
    lan = lan_hosts[0]
    shown = f"[{lan}]" if ":" in lan else lan
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def lan_hosts(interface: str | None = None) -> list[str]:
    """This machine's LAN addresses, best first (``interface``: the one the user chose)."""
    return [entry.address for entry in lan_addresses(interface)]
