"""Who sent a request: an API key, or else the client's address.

The admission step stores it on the request; the scheduler (fair share), the ledger and
the rate limits all read the same identity, so a person is counted the same way everywhere.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache

from aiohttp import web

from gambiarra_desktop.accounting.api_keys import ApiKey
from gambiarra_desktop.hub.ip_addresses import parse_ip


@dataclass(frozen=True, slots=True)
class Caller:
    address: str
    """The socket's peer address ("" when unknown)."""
    key: ApiKey | None = None
    person: str = field(init=False, compare=False)
    """Fair share and ledger identity. An IPv6 host owns a whole /64, so it counts as one
    person, or one machine could take many places in a queue. Worked out once: the limiter,
    the scheduler and every ledger row of the request read it."""

    def __post_init__(self) -> None:
        person = (f"key:{self.key.id}" if self.key is not None
                  else f"addr:{address_subject(self.address)}")
        object.__setattr__(self, "person", person)

    @property
    def priority(self) -> int:
        return self.key.priority if self.key is not None else 0

    @property
    def label(self) -> str:
        """What people see: the key's name, else the address."""
        return self.key.name if self.key is not None else (self.address or "unknown")


@lru_cache(maxsize=4096)
def address_subject(address: str) -> str:
    """One person per IPv4 address or IPv6 /64, except link-local IPv6: every client on
    the link has an address in fe80::/64, so those count by their full address."""
    ip = parse_ip(address)
    if ip is None:
        return address or "unknown"
    if ip.version == 6 and not ip.is_link_local:
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


CALLER_KEY = web.RequestKey("gambiarra.caller", Caller)
RATE_HEADERS_KEY: web.RequestKey[dict[str, str]] = web.RequestKey("gambiarra.rate_headers", dict)
"""The ``X-RateLimit-*`` headers admission decided, added to whatever response follows."""


def caller_of(request: web.Request) -> Caller | None:
    caller = request.get(CALLER_KEY)
    return caller if isinstance(caller, Caller) else None


def set_caller(request: web.Request, caller: Caller) -> None:
    request[CALLER_KEY] = caller
