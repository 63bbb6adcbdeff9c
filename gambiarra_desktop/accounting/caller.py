"""Who sent a request: an API key, or else the client's address.

The admission step stores it on the request; the scheduler (fair share), the ledger and
the rate limits all read the same identity, so a person is counted the same way everywhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gambiarra_desktop.accounting.api_keys import ApiKey
from gambiarra_desktop.hub.front.headers import ParsedHeaders
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
def keyless_caller(address: str) -> Caller:
    """The caller a keyless request from ``address`` is: callers are immutable, so one per
    address serves every request (the room route admits one per request)."""
    return Caller(address)


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


Headers = CIMultiDictProxy[str] | CIMultiDict[str] | ParsedHeaders


@dataclass(slots=True)
class ChatCall:
    """What admission and the proxy need of a chat request, whichever server read it, and
    what admission decided about it.

    A chat reaches the hub either through aiohttp (every route) or through the hub's own
    front end (``hub/front/``: the chat route's fast path). Both hand the same admission,
    routing and forwarding code one of these, so the rules never fork between them."""

    headers: Headers
    remote: str
    """The socket's peer address ("" when unknown)."""
    caller: Caller | None = None
    """Set by admission: the scheduler (fair share), the ledger and the rate limits all
    read the same identity."""
    rate_headers: Mapping[str, str] | None = None
    """``X-RateLimit-*`` headers admission decided, for whatever response follows."""

    @classmethod
    def of(cls, request: web.Request) -> ChatCall:
        """The request's call, made once and kept on it (admission writes to it, the
        handler and the response hook read it)."""
        call = request.get(CALL_KEY)
        if call is None:
            call = request[CALL_KEY] = cls(request.headers, request.remote or "")
        return call


CALL_KEY = web.RequestKey("gambiarra.chat_call", ChatCall)


def caller_of(request: web.Request) -> Caller | None:
    call = request.get(CALL_KEY)
    return None if call is None else call.caller


def rate_headers_of(request: web.Request) -> Mapping[str, str] | None:
    call = request.get(CALL_KEY)
    return None if call is None else call.rate_headers
