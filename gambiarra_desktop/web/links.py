"""The web address guests open: the room page on an address the LAN can reach.

A hub on this machine is usually known to the app and the CLI as ``127.0.0.1``, which on a
guest's phone means the phone. A link or a QR code must name this machine's LAN address
instead; where there is none (no network, or a hub that listens on loopback only) there
is no address to give, and callers say so rather than show a link that cannot work.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

from gambiarra_desktop.discovery.interfaces import lan_addresses
from gambiarra_desktop.hub.ip_addresses import parse_ip
from gambiarra_desktop.hub.proxy.endpoint_policy import is_loopback_name


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
    return _rebuilt(parts, parts.hostname or "")


def _rebuilt(parts: SplitResult, host: str) -> str:
    """``parts`` on ``host``, with its scheme, port and path and nothing else."""
    shown = f"[{host}]" if ":" in host else host
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def guest_hub_url(hub_url: str, lan_hosts: Sequence[str],
                  listens_on_lan: bool = True) -> str | None:
    """``hub_url`` as a guest on the LAN reaches it: as it is when it already names another
    host; for a hub on this machine (loopback, or ``0.0.0.0``), the same port on this
    machine's first LAN address. ``None`` when guests cannot reach it: no LAN address, or
    a hub that listens on loopback only (``listens_on_lan`` false)."""
    parts = urlsplit(hub_url)
    host = parts.hostname or ""
    address = parse_ip(host.rstrip("."))
    local = is_loopback_name(host) or (
        address is not None and (address.is_loopback or address.is_unspecified))
    if not local:
        return _rebuilt(parts, host)
    if not listens_on_lan or not lan_hosts:
        return None
    return _rebuilt(parts, lan_hosts[0])


def lan_hosts(interface: str | None = None) -> list[str]:
    """This machine's LAN addresses, best first (``interface``: the one the user chose)."""
    return [entry.address for entry in lan_addresses(interface)]
