"""The room's web address for guests (a phone, a laptop with nothing installed), or why
there is none: the Connect tab shows one or the other, never a link that cannot work.

A hub on this machine is known to the app as ``127.0.0.1`` (or ``0.0.0.0``); a guest needs
this machine's LAN address instead (web/links.py). The hub this app hosts on a loopback bind
address is out of the LAN's reach whatever the address, so it has no guest link at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.firewall import reachable_from_lan
from gambiarra_desktop.gui.discovery_controller import points_at
from gambiarra_desktop.hub.ip_addresses import parse_ip
from gambiarra_desktop.web import links
from gambiarra_desktop.web.links import guest_hub_url, room_page_url


def lan_hosts(interface: str | None) -> list[str]:
    """This machine's LAN addresses, best first; never a loopback one (an interface pinned
    to ``127.0.0.1``, as tests and ``--interface 127.0.0.1`` do, is no LAN address)."""
    return [host for host in links.lan_hosts(interface)
            if (address := parse_ip(host)) is None or not address.is_loopback]


@dataclass(frozen=True)
class GuestLink:
    url: str | None
    """The room's web page as a guest on the LAN opens it; ``None`` when there is none."""
    reason: str = ""
    """Why there is no link (empty when there is one)."""


def listens_on_lan(hub_url: str, hosted: HostedHub | None, host_bind: str) -> bool:
    """False only for the hub this app hosts, bound to a loopback address; any other hub
    is taken to listen on the LAN (the app cannot know another hub's bind address)."""
    if hosted is None or not points_at(hub_url, hosted):
        return True
    return reachable_from_lan(host_bind)


def guest_link(hub_url: str, code: str, interface: str | None,
               on_lan: bool = True) -> GuestLink:
    """The room ``code``'s web page on the hub at ``hub_url``, as guests reach it. No
    secret is part of it: the page asks for a password room's password itself."""
    if not on_lan:
        return GuestLink(None, "Guests cannot open this room in a browser: the hub you host"
                               " listens on this computer only.")
    hub = guest_hub_url(hub_url, lan_hosts(interface), on_lan)
    if hub is None:
        if interface:
            return GuestLink(None, "Guests cannot open this room in a browser: this computer"
                                   f" has no LAN address on the network interface {interface},"
                                   " the one this app was told to use.")
        return GuestLink(None, "Guests cannot open this room in a browser: this computer has"
                               " no LAN address. Connect it to a Wi-Fi or wired network, then"
                               " open the room again.")
    return GuestLink(room_page_url(hub, code))
