"""Where the hub may send a participant's chats, decided on the address actually dialed.

The hub forwards requests to whatever endpoint a participant declares, so without rules it
would be a relay into the hub machine's own services, the cloud metadata address, or back
into itself. For a participant that did not join from the hub's machine, *every* address of
that machine is off limits, not only loopback: services bound to a LAN, VPN or docker-bridge
address, or allowing connections by source address, trust the hub's machine, not the
participant. Checking how a URL is *spelled* is not enough: ``2130706433``, ``127.1``,
``0x7f000001``, ``[::ffff:7f00:1]`` and any name in ``/etc/hosts`` all mean 127.0.0.1, and a
DNS name can answer differently at join and at chat time (DNS rebinding). So:

- at connect time the upstream client resolves the host, checks *every* address with
  :meth:`EndpointPolicy.refusal`, and connects to the checked address itself;
- at join time :meth:`EndpointPolicy.join_refusal` runs the same check on a best-effort
  resolution, as early feedback (a name that does not resolve yet is accepted);
- endpoints are normalized at join (:func:`normalize_endpoint`): IDNA host, percent-encoded
  path, so the request line and ``Host`` header are always plain ASCII.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import quote, urlsplit, urlunsplit

from gambiarra_desktop.hub.ip_addresses import IPAddress, parse_ip
from gambiarra_desktop.hub.proxy.own_addresses import OwnAddresses

ALLOWED_ENDPOINT_SCHEMES = frozenset({"http", "https"})
MAX_ENDPOINT_LENGTH = 2048
JOIN_LOOKUP_TIMEOUT_S = 2.0
MAX_JOIN_LOOKUPS = 4
"""Concurrent DNS lookups for join feedback; past that a join is not held up (the connect
step checks anyway), so a flood of joins with slow names cannot use up resolver threads."""
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost",
                            "ip6-loopback"})
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")
_NUMERIC_CHARACTERS = frozenset("0123456789abcdefx.")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset({
    ipaddress.IPv6Address("fd00:ec2::254"),  # AWS (IPv6); 169.254.169.254 is link-local.
    ipaddress.IPv4Address("100.100.100.200"),  # Alibaba Cloud, inside CGNAT's 100.64/10.
})
"""Cloud metadata services outside the link-local ranges: never dialed, for anyone. The
rest of 100.64.0.0/10 stays allowed (Tailscale and other VPNs live there)."""

LOOPBACK_TEXT = ("a loopback address of the hub's machine (a localhost endpoint only works"
                 " for a participant on the hub's machine; use your LAN address)")
OWN_MACHINE_TEXT = ("an address of the hub's own machine (only a participant on the hub's"
                    " machine may use it; use your own machine's address)")


class EndpointError(ValueError):
    """An endpoint the hub cannot use, whatever it resolves to; the message says why."""


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


def normalize_endpoint(endpoint: str) -> str:
    """The endpoint in plain ASCII: the host as IDNA A-labels (``bücher.example`` becomes
    ``xn--bcher-kva.example``), the path percent-encoded. Raises :class:`EndpointError`.

    Why: the request line and ``Host`` header are latin-1 on the wire; a non-ASCII host
    used to be accepted at join and then made every chat a 500."""
    if any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in endpoint):
        raise EndpointError("Invalid endpoint: must not contain control characters")
    if not is_valid_endpoint(endpoint):
        raise EndpointError("Invalid endpoint: must be an http:// or https:// URL")
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if any(c.isspace() for c in host):
        raise EndpointError("Invalid endpoint: the host must not contain spaces")
    if parts.port == 0:
        # Dialing port 0 means the scheme's default port: not what was written.
        raise EndpointError("Invalid endpoint: port 0 is not a port a server listens on")
    if parse_ip(host) is not None and ":" in host:
        if "%" in host:
            # A zone names an interface of the *participant's* machine; the hub's differ.
            raise EndpointError("Invalid endpoint: an IPv6 zone id (the %... part) means"
                                " nothing to the hub; give the address without it")
        shown = f"[{host}]"
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise EndpointError(
                "Invalid endpoint: the host name is not a valid internationalized name"
            ) from exc
        if not host or not set(host) <= _HOST_CHARACTERS:
            raise EndpointError("Invalid endpoint: the host name has characters a host"
                                " name cannot have")
        shown = host
    netloc = shown if parts.port is None else f"{shown}:{parts.port}"
    path = quote(parts.path, safe=_PATH_SAFE)
    normalized = urlunsplit((parts.scheme.lower(), netloc, path, "", ""))
    if len(normalized) > MAX_ENDPOINT_LENGTH:
        raise EndpointError(f"Invalid endpoint: too long once encoded (max"
                            f" {MAX_ENDPOINT_LENGTH} characters)")
    return normalized


def numeric_address(host: str) -> IPAddress | None:
    """The address a numeric host means to the C library, in all its spellings: dotted,
    ``127.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``0``, IPv6 literals."""
    address = parse_ip(host)
    if address is not None:
        return address
    if host and set(host.lower()) <= _NUMERIC_CHARACTERS:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_loopback_name(host: str) -> bool:
    """``localhost`` and every name under ``.localhost`` (RFC 6761), any case, trailing dot."""
    name = host.lower().rstrip(".")
    return name in LOOPBACK_NAMES or name.endswith(".localhost")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside IPv4-compatible, NAT64, 6to4 and Teredo IPv6 addresses."""
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_problem(address: IPAddress, allow_loopback: bool,
                    meant: str = "a model server") -> str | None:
    """What is wrong with dialing ``address`` (IPv4-mapped IPv6 already unwrapped by
    :func:`parse_ip`), or ``None``. Private LAN and CGNAT/VPN ranges are fine: that is
    where participants are. ``meant``: what the caller wanted to reach, for the words
    (terminal sessions use the same rule for SSH and Telnet hosts)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_problem(address.ipv4_mapped, allow_loopback, meant)
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = address_problem(embedded, allow_loopback=False, meant=meant)
            return None if inner is None else f"an IPv6 form of {embedded}, {inner}"
    if address in METADATA_ADDRESSES:
        return f"a cloud metadata address, not {meant}"
    if address.is_unspecified or (
            isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK):
        return "an unspecified address, which means the hub's machine itself"
    if address.is_loopback:
        return None if allow_loopback else LOOPBACK_TEXT
    if address.is_link_local:
        return f"a link-local address (where cloud metadata lives), not {meant}"
    if address.is_multicast:
        return f"a multicast address, not {meant}"
    if address.is_reserved or (
            isinstance(address, ipaddress.IPv6Address) and address in _SITE_LOCAL):
        return f"a reserved or broadcast address, not {meant}"
    return None


def _own_machine_problem(address: IPAddress, own: OwnAddresses) -> str | None:
    """Whether ``address`` (or the IPv4 address an IPv6 form carries) is one of the hub
    machine's interface addresses, on any port."""
    machine = own.machine_addresses()
    if address in machine:
        return OWN_MACHINE_TEXT
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and embedded in machine:
            return f"an IPv6 form of {embedded}, {OWN_MACHINE_TEXT}"
    return None


class EndpointPolicy:
    """One hub's rules for dialing endpoints: the hub's own addresses, and join look-ups."""

    def __init__(self, own: OwnAddresses | None = None) -> None:
        self.own = own or OwnAddresses()
        self._join_lookups = 0

    def on_hub_machine(self, joined_from: str | None) -> bool:
        """A loopback endpoint, or any other address of the hub's machine, means "my
        machine" to a participant; only for one on the hub's own machine is that the
        machine the hub dials."""
        return self.own.is_this_machine(joined_from)

    def refusal(self, host: str, port: int, addresses: list[IPAddress],
                on_hub_machine: bool) -> str | None:
        """Why ``host`` (resolved to ``addresses``) must not be dialed, or ``None``. One
        bad address refuses the whole host: the hub never quietly picks another.
        ``on_hub_machine``: the participant joined from the hub's machine, so loopback and
        the machine's other addresses are its own servers."""
        if not on_hub_machine and is_loopback_name(host):
            return f"{host} is {LOOPBACK_TEXT}"
        for address in addresses:
            problem = address_problem(address, on_hub_machine)
            if problem is None and self.own.is_hub(address, port):
                problem = f"this hub itself on port {port} (a chat would loop back into it)"
            if problem is None and not on_hub_machine:
                problem = _own_machine_problem(address, self.own)
            if problem is not None:
                spelled = host.strip("[]")
                if spelled == str(address):
                    return f"{spelled} is {problem}"
                return f"{host} resolves to {address}, {problem}"
        return None

    async def join_refusal(self, endpoint: str, joined_from: str | None) -> str | None:
        """The connect-time check, run early on a best-effort resolution so a participant
        learns at join that its endpoint cannot work. A name that does not resolve now is
        accepted: it is checked again on every new connection."""
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        on_hub_machine = self.on_hub_machine(joined_from)
        literal = numeric_address(host)
        if literal is not None:
            addresses = [literal]
        elif (not on_hub_machine and is_loopback_name(host)) or (
                self._join_lookups >= MAX_JOIN_LOOKUPS):
            addresses = []  # Refused by name, or too many look-ups under way: no look-up.
        else:
            self._join_lookups += 1
            try:
                addresses = await resolve(host, port, JOIN_LOOKUP_TIMEOUT_S)
            except (OSError, TimeoutError):
                addresses = []
            finally:
                self._join_lookups -= 1
        refusal = self.refusal(host, port, addresses, on_hub_machine)
        return None if refusal is None else f"Invalid endpoint: {refusal}"


async def resolve(host: str, port: int, timeout_s: float) -> list[IPAddress]:
    """Every address ``host`` resolves to, numeric forms without a lookup. Raises
    ``OSError`` (``socket.gaierror``) or ``TimeoutError``."""
    literal = numeric_address(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout_s):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for family, *_, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = parse_ip(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no IPv4 or IPv6 address")
    return addresses
