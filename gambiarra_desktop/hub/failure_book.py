"""Recent failures per client address, for every "too many wrong guesses" rule.

Room passwords and the gateway's admin login both lock an address out after a few wrong
guesses in a window. One book keeps the count so both apply the rule the same way: old
failures age out, the number of tracked addresses is bounded (addresses are cheap to an
attacker), and the wait told to the client is the time until the oldest failure expires.
"""

from __future__ import annotations

import collections
import ipaddress
import math
import time

from gambiarra_desktop.hub.ip_addresses import parse_ip

MAX_TRACKED_ADDRESSES = 10_000
"""Addresses whose failures are tracked; the oldest are forgotten beyond this."""
IPV6_HOST_PREFIX = 64


def client_key(address: str | None) -> str:
    """Whose failures these are: an IPv4 address, or an IPv6 address's /64. One LAN host
    owns a whole /64 (SLAAC, privacy addresses: it picks new ones at will), so counting
    per IPv6 address would give it endless fresh tries. Link-local addresses (fe80::/64)
    are the exception: every host on the link has one in that same /64, so it would make
    them all one client (one's wrong guesses would lock out all); they count one by one.
    An IPv4-mapped address is its IPv4 address."""
    ip = parse_ip(address)
    if ip is None:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and not ip.is_link_local:
        return str(ipaddress.IPv6Network((ip, IPV6_HOST_PREFIX), strict=False))
    return str(ip)


class FailureBook:
    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict())

    def recent(self, address: str) -> collections.deque[float]:
        """This address's failures within the window (times, oldest first)."""
        failures = self._failures.get(address)
        if failures is None:
            return collections.deque()
        cutoff = time.monotonic() - self.window_s
        while failures and failures[0] < cutoff:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return failures

    def is_locked(self, address: str, running: int = 0) -> bool:
        """Whether ``address`` may not try again now; ``running`` counts its checks still
        in progress as failures, so a burst sent all at once is cut off too."""
        return len(self.recent(address)) + running >= self.max_failures

    def record(self, address: str) -> None:
        failures = self._failures.setdefault(address, collections.deque())
        self._failures.move_to_end(address)
        failures.append(time.monotonic())
        while len(failures) > self.max_failures:
            failures.popleft()
        while len(self._failures) > MAX_TRACKED_ADDRESSES:
            self._failures.popitem(last=False)

    def clear(self, address: str) -> None:
        self._failures.pop(address, None)

    def retry_after_s(self, address: str) -> int:
        failures = self.recent(address)
        if not failures:
            return 1  # Only checks still running: they end within a second or so.
        return max(1, math.ceil(failures[0] + self.window_s - time.monotonic()))
