"""Who counts as "a program on this machine": the checks shared by everything that runs
commands or reads files for a caller (the hub's terminal API, the agent API).

Security rule 2: such APIs answer only a socket whose peer is loopback (never a header
such as ``X-Forwarded-For``), never a web page (browsers mark their requests with
``Origin`` or ``Sec-Fetch-*``), and only requests addressed to a loopback ``Host`` (a page
on a DNS-rebound name that resolves to 127.0.0.1 sends its own name there).
"""

from __future__ import annotations

from collections.abc import Mapping

from gambiarra_desktop.hub.ip_addresses import parse_ip

BROWSER_HEADERS = ("Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def is_loopback_peer(address: str | None) -> bool:
    """``parse_ip`` unwraps IPv4-mapped IPv6: ``::ffff:127.0.0.1`` is loopback too."""
    ip = parse_ip(address)
    return ip is not None and ip.is_loopback


def is_loopback_host(host: str) -> bool:
    """``Host`` header value (name or IP, with or without a port)."""
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:3000
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name in LOOPBACK_NAMES:
        return True
    return is_loopback_peer(name)


def from_a_browser(headers: Mapping[str, str]) -> bool:
    return any(name in headers for name in BROWSER_HEADERS)
