"""One reading of an IP address as the kernel reports it (a socket's peer, a bound name).

Peer checks (who joined a participant, whether a caller is on the hub's machine) and the
endpoint policy must agree on what "the same address" is, so both parse here.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=4096)
def parse_ip(text: str | None) -> IPAddress | None:
    """An address with IPv4-mapped IPv6 unwrapped and any zone id dropped:
    ``::ffff:10.0.0.5`` and ``10.0.0.5`` are the same host. Cached: the proxy asks about
    the same few peers on every request, and parsing one cost more than routing it."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address
