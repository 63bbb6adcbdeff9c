"""The hub is never a relay into its own machine, nor into itself.

Unit tests of the endpoint policy (every spelling of loopback, the metadata address, IPv6
forms), then real hubs on 127.0.0.1 where a participant is injected straight into the
registry (skipping the join check) to show the connect step alone stops it, DNS rebinding,
self-loops, a loop through two hubs, and IDNA/percent-encoded endpoints. The cross-host
version (a participant really on another machine) is tests/test_relay_lan.py.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.errors import RequestLoopError
from gambiarra_desktop.hub.ip_addresses import parse_ip
from gambiarra_desktop.hub.keys import PROXY
from gambiarra_desktop.hub.proxy.endpoint_policy import (
    EndpointError,
    EndpointPolicy,
    normalize_endpoint,
)
from gambiarra_desktop.hub.proxy.hops import MAX_GAMBIARRA_HOPS, HopHeader
from gambiarra_desktop.hub.proxy.own_addresses import OwnAddresses
from gambiarra_desktop.hub.rooms.room import JoinRequest
from tests.conftest import Api, HubFactory

REMOTE_PEER = "192.0.2.10"  # TEST-NET-1: never this machine.
LOOPBACK_SPELLINGS = (
    "2130706433", "127.1", "0x7f000001", "0177.0.0.1", "127.0.0.1", "127.8.9.10",
    "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:127.0.0.1]", "[::1]",
    "localhost", "localhost.", "LOCALHOST", "ip6-localhost", "models.localhost",
    "[::127.0.0.1]", "[2002:7f00:1::]", "[64:ff9b::7f00:1]",
)
NEVER_SPELLINGS = {
    "0": "unspecified", "0.0.0.0": "unspecified", "[::]": "unspecified",
    "169.254.169.254": "link-local", "[fe80::1]": "link-local",
    "[::ffff:169.254.169.254]": "link-local", "224.0.0.251": "multicast",
    "[ff02::1]": "multicast", "255.255.255.255": "broadcast", "240.0.0.1": "reserved",
    "100.100.100.200": "cloud metadata", "[fd00:ec2::254]": "cloud metadata",
    "[::ffff:100.100.100.200]": "cloud metadata", "[64:ff9b::6464:64c8]": "cloud metadata",
}


def hosts_file_loopback_names() -> list[str]:
    """Names this machine's /etc/hosts maps to loopback (beyond ``localhost``)."""
    names: list[str] = []
    try:
        lines = open("/etc/hosts").read().splitlines()  # noqa: SIM115, PTH123
    except OSError:
        return names
    for line in lines:
        fields = line.split("#", 1)[0].split()
        address = parse_ip(fields[0]) if fields else None
        if address is not None and address.is_loopback:
            names += [n for n in fields[1:] if n.isascii() and "localhost" not in n]
    return names


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_every_spelling_of_loopback_is_refused_for_a_remote_participant(host: str) -> None:
    policy = EndpointPolicy()
    endpoint = normalize_endpoint(f"http://{host}:11434")
    refusal = await policy.join_refusal(endpoint, REMOTE_PEER)
    assert refusal is not None and refusal.startswith("Invalid endpoint: "), host
    assert "a loopback address of the hub's machine" in refusal
    assert "127.0.0.1" in refusal or "::1" in refusal or "localhost" in refusal.lower()
    if not host.startswith(("[::127", "[2002", "[64:")):  # Embedded forms: never.
        assert await policy.join_refusal(endpoint, "127.0.0.1") is None, host
        assert await policy.join_refusal(endpoint, "::ffff:127.0.0.1") is None, host


async def test_names_in_etc_hosts_that_mean_loopback_are_refused() -> None:
    names = hosts_file_loopback_names()
    if not names:
        pytest.skip("/etc/hosts maps no extra name to loopback here")
    for name in names:
        refusal = await EndpointPolicy().join_refusal(f"http://{name}:8080", REMOTE_PEER)
        assert refusal is not None and "resolves to 127." in refusal, name


@pytest.mark.parametrize(("host", "kind"), sorted(NEVER_SPELLINGS.items()))
async def test_addresses_that_are_never_model_servers(host: str, kind: str) -> None:
    for peer in (REMOTE_PEER, "127.0.0.1"):
        refusal = await EndpointPolicy().join_refusal(f"http://{host}:80", peer)
        assert refusal is not None and kind in refusal, (host, peer, refusal)


@pytest.mark.parametrize("endpoint", [
    "http://192.168.1.50:11434", "http://10.0.0.7:8080/v1", "http://100.64.3.4:1234",
    "http://100.100.100.201:80", "http://100.127.255.254:80", "http://[fd00:ec2::253]:80",
    "http://[fd00::5]:1", "http://[2001:db8::1]:80", "http://[64:ff9b::808:808]:80",
    "https://models.invalid/v1",
])
async def test_lan_vpn_and_public_endpoints_stay_allowed(endpoint: str) -> None:
    assert await EndpointPolicy().join_refusal(endpoint, REMOTE_PEER) is None


def test_the_hubs_own_sockets_are_recognised_even_on_a_wildcard_address() -> None:
    own = OwnAddresses()
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))  # noqa: S104 - bound only, never listens.
        port = sock.getsockname()[1]
        own.listening_on([sock])
    machine = sorted(own.machine_addresses(), key=str)
    assert machine, "psutil sees no interface address"
    for address in [*machine, parse_ip("127.0.0.1"), parse_ip("127.0.0.2")]:
        assert address is not None
        assert own.is_hub(address, port), address
        assert not own.is_hub(address, port + 1 if port < 65535 else port - 1)
    assert not own.is_hub(parse_ip("192.0.2.10"), port)  # type: ignore[arg-type]
    assert own.is_this_machine("127.0.0.1") and own.is_this_machine(str(machine[0]))
    assert not own.is_this_machine(REMOTE_PEER)


def own_machine_addresses() -> list[str]:
    """This machine's interface addresses that are neither loopback nor link-local (those
    have rules of their own), as URL hosts."""
    found = []
    for address in sorted(OwnAddresses().machine_addresses(), key=str):
        if address.is_loopback or address.is_link_local:
            continue
        found.append(f"[{address}]" if address.version == 6 else str(address))
    return found


async def test_the_hub_machines_own_addresses_are_only_for_participants_on_it() -> None:
    hosts = own_machine_addresses()
    if not hosts:
        pytest.skip("this machine has no address besides loopback and link-local")
    policy = EndpointPolicy()
    for host in hosts:
        endpoint = normalize_endpoint(f"http://{host}:8080")
        refusal = await policy.join_refusal(endpoint, REMOTE_PEER)
        assert refusal == (f"Invalid endpoint: {host.strip('[]')} is an address of the hub's"
                           " own machine (only a participant on the hub's machine may use it;"
                           " use your own machine's address)"), refusal
        assert await policy.join_refusal(endpoint, "127.0.0.1") is None, host
        assert await policy.join_refusal(endpoint, host.strip("[]")) is None, host
        if host[0] != "[":  # The same address in IPv6 clothes.
            for spelling in (f"[::ffff:{host}]", f"[64:ff9b::{host}]"):
                refusal = await policy.join_refusal(f"http://{spelling}:8080", REMOTE_PEER)
                assert refusal is not None and "the hub's own machine" in refusal, spelling


@pytest.mark.parametrize(("endpoint", "reason"), [
    ("http://10.78.0.2:0", "port 0"),
    ("http://[fd78::2%25x y]:9090", "must not contain spaces"),
    ("http://[fd78::2%25eth0]:9090", "zone id"),
    ("http://[fe80::1%25eth0]:80", "zone id"),
    ("http://10.78.0.2 :9090", "must not contain spaces"),
])
def test_port_zero_zone_ids_and_spaces_are_refused(endpoint: str, reason: str) -> None:
    with pytest.raises(EndpointError, match=reason) as caught:
        normalize_endpoint(endpoint)
    assert str(caught.value).startswith("Invalid endpoint: ")


async def test_join_answers_400_for_port_zero_and_zone_ids(api: Api) -> None:
    room = await api.create_room()
    for endpoint in ("http://10.78.0.2:0", "http://[fd78::2%25x y]:9090",
                     "http://[fd78::2%25vrvA]:9090"):
        status, body = await api.join(room["code"], endpoint=endpoint)
        assert status == 400 and body["error"].startswith("Invalid endpoint: "), (endpoint, body)
    status, body = await api.join(room["code"], endpoint="http://10.78.0.2:9090")
    assert status == 201, body


# -- connect time: a participant admitted without the join check --------------------------

async def inject(hub: HubServer, code: str, endpoint: str, joined_from: str,
                 pid: str = "p1", model: str = "m") -> None:
    """Put a participant straight into the registry, as if an older or buggier join check
    had let it in: only the connect step stands between it and the endpoint."""
    registry = hub.registry
    await registry.join(registry.require(code), JoinRequest(
        id=pid, nickname=pid, model=model, endpoint=endpoint, specs={}, config={},
        joined_from=joined_from))


async def chat(api: Api, code: str, model: str = "m", **headers: str) -> tuple[int, Any]:
    payload = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    async with asyncio.timeout(15):
        async with api.http.post(f"{api.hub.url}/rooms/{code}/v1/chat/completions",
                                 json=payload, headers=headers) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()


@pytest.fixture
async def canary() -> AsyncIterator[FakeOpenAIServer]:
    """A model server on the hub machine's loopback, standing in for its private services;
    ``requests`` counts what reached it."""
    async with FakeOpenAIServer(models=("m",)) as server:
        yield server


async def test_connect_step_alone_keeps_remote_participants_off_loopback(
    api: Api, canary: FakeOpenAIServer
) -> None:
    hosts = [h for h in LOOPBACK_SPELLINGS if h not in ("localhost.", "ip6-localhost")]
    hosts += hosts_file_loopback_names()
    for host in hosts:
        room = await api.create_room()
        await inject(api.hub, room["code"], f"http://{host}:{canary.port}", REMOTE_PEER)
        status, body = await chat(api, room["code"])
        assert status == 502, (host, status, body)
        assert body["error"].startswith("Failed to proxy request: "), body
        assert "loopback address of the hub's machine" in body["error"], (host, body)
    assert canary.requests == []
    # The same server is reached for a participant on the hub's own machine.
    room = await api.create_room()
    await inject(api.hub, room["code"], f"http://127.1:{canary.port}", "127.0.0.1")
    status, body = await chat(api, room["code"])
    assert status == 200, body
    assert len(canary.requests) == 1


async def test_connect_step_keeps_remote_participants_off_the_machines_own_addresses(
    api: Api,
) -> None:
    """The canary listens on one of this machine's own non-loopback addresses (delivered
    locally by the kernel, nothing leaves the machine)."""
    hosts = [h for h in own_machine_addresses() if h[0] != "["]
    if not hosts:
        pytest.skip("this machine has no IPv4 address besides loopback and link-local")
    server = FakeOpenAIServer(models=("m",))
    await server.start(host=hosts[0])
    try:
        endpoint = f"http://{hosts[0]}:{server.port}"
        room = await api.create_room()
        await inject(api.hub, room["code"], endpoint, REMOTE_PEER)
        status, body = await chat(api, room["code"])
        assert status == 502, body
        assert "an address of the hub's own machine" in body["error"], body
        assert server.requests == []
        local = await api.create_room()
        await inject(api.hub, local["code"], endpoint, "127.0.0.1")
        assert (await chat(api, local["code"]))[0] == 200
        assert len(server.requests) == 1
        # The keep-alive connection the local participant left is not lent either.
        status, body = await chat(api, room["code"])
        assert status == 502 and "own machine" in body["error"], body
        assert len(server.requests) == 1
    finally:
        await server.stop()


async def test_a_pooled_loopback_connection_is_never_lent_to_a_remote_participant(
    api: Api, canary: FakeOpenAIServer
) -> None:
    room = await api.create_room()
    endpoint = f"http://127.0.0.1:{canary.port}"
    await inject(api.hub, room["code"], endpoint, "127.0.0.1", pid="local")
    assert (await chat(api, room["code"]))[0] == 200  # Leaves a keep-alive connection.
    other = await api.create_room()
    await inject(api.hub, other["code"], endpoint, REMOTE_PEER, pid="remote")
    status, body = await chat(api, other["code"])
    assert status == 502 and "loopback" in body["error"], body
    assert len(canary.requests) == 1


async def test_dns_rebinding_is_caught_at_connect_and_the_checked_address_is_dialed(
    api: Api, canary: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS cannot run here, so the loop's resolver is replaced (the only stand-in): the name
    answers a harmless address at join, then 127.0.0.1."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    answers: dict[str, list[str]] = {"rebind.test": ["203.0.113.7", "127.0.0.1"],
                                     "model.test": ["127.0.0.1", "203.0.113.9"]}
    asked: list[str] = []

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            asked.append(host)
            address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    endpoint = f"http://rebind.test:{canary.port}"
    assert await api.hub.app[PROXY].policy.join_refusal(endpoint, REMOTE_PEER) is None
    room = await api.create_room()
    await inject(api.hub, room["code"], endpoint, REMOTE_PEER)
    status, body = await chat(api, room["code"])
    assert status == 502, body
    assert "rebind.test resolves to 127.0.0.1, a loopback address" in body["error"]
    assert canary.requests == []
    # For a local participant the name's first answer is dialed, not looked up again (the
    # second answer would lead nowhere).
    room = await api.create_room()
    await inject(api.hub, room["code"], f"http://model.test:{canary.port}", "127.0.0.1")
    assert (await chat(api, room["code"]))[0] == 200
    assert asked.count("model.test") == 1
    assert len(canary.requests) == 1


# -- loops ----------------------------------------------------------------------------------

def count_forwards(hub: HubServer) -> list[int]:
    """How many chat requests reached this hub's proxy (each loop turn is one)."""
    proxy = hub.app[PROXY]
    counter = [0]
    original = proxy.serve  # Every chat's one path, whichever server read it:
    original_now = proxy.serve_now  # begun with no task, or (when that declines) in one.

    async def serve(*args: Any, **kwargs: Any) -> web.Response | None:
        counter[0] += 1
        return await original(*args, **kwargs)

    def serve_now(*args: Any, **kwargs: Any) -> Any:
        started = original_now(*args, **kwargs)
        counter[0] += started is not None
        return started

    proxy.serve = serve  # type: ignore[method-assign]
    proxy.serve_now = serve_now  # type: ignore[method-assign]
    return counter


async def test_a_participant_pointing_at_the_hub_itself_is_refused(api: Api) -> None:
    room = await api.create_room()
    code = room["code"]
    status, body = await api.join(code, endpoint=f"{api.hub.url}/rooms/{code}")
    assert status == 400 and "this hub itself" in body["error"], body
    forwards = count_forwards(api.hub)
    await inject(api.hub, code, f"{api.hub.url}/rooms/{code}", "127.0.0.1")
    started = asyncio.get_running_loop().time()
    status, body = await chat(api, code)
    assert status in (502, 508), body
    assert "this hub itself" in body["error"] or "loop" in body["error"]
    assert forwards[0] <= 2
    assert asyncio.get_running_loop().time() - started < 5


async def test_a_loop_through_two_hubs_ends_with_508(
    make_hub: HubFactory, http: Any, tmp_path: Any
) -> None:
    hub_a = await make_hub(data_dir=tmp_path / "a")
    hub_b = await make_hub(data_dir=tmp_path / "b")
    api_a, api_b = Api(http, hub_a), Api(http, hub_b)
    room_a, room_b = (await api_a.create_room())["code"], (await api_b.create_room())["code"]
    assert (await api_a.join(room_a, model="m", endpoint=f"{hub_b.url}/rooms/{room_b}"))[0] == 201
    assert (await api_b.join(room_b, model="m", endpoint=f"{hub_a.url}/rooms/{room_a}"))[0] == 201
    forwards_a, forwards_b = count_forwards(hub_a), count_forwards(hub_b)
    status, body = await chat(api_a, room_a)
    assert status == 508, body
    assert body["error"].startswith("Failed to proxy request: request loop detected"), body
    assert forwards_a[0] == 2 and forwards_b[0] == 1


def test_hop_header_appends_and_stops_loops() -> None:
    hops = HopHeader("abc123")
    assert hops.outgoing([]) == "Via: 1.1 gambiarra-abc123\r\n"
    assert hops.outgoing(["1.0 fred, 1.1 gambiarra-x1"]) == (
        "Via: 1.0 fred, 1.1 gambiarra-x1, 1.1 gambiarra-abc123\r\n")
    with pytest.raises(RequestLoopError, match="already passed through this hub"):
        hops.outgoing(["1.1 gambiarra-x1", "1.1 gambiarra-abc123 (Gambiarra)"])
    many = ", ".join(f"1.1 gambiarra-h{i}" for i in range(MAX_GAMBIARRA_HOPS))
    with pytest.raises(RequestLoopError, match="request loop detected"):
        hops.outgoing([many])
    # Junk is not forwarded; the Gambiarra entries in it still count.
    assert hops.outgoing(["1.1 gambiarra-x1, 1.1 caf\u00e9"]) == (
        "Via: 1.1 gambiarra-x1, 1.1 gambiarra-abc123\r\n")


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """A model server that answers any path and records each request's raw path and
    headers."""
    seen: list[tuple[str, dict[str, str]]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append((request.raw_path, dict(request.headers)))
        return web.json_response({"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"},
             "finish_reason": "stop"}]})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_proxied_requests_carry_the_hop_header_and_a_named_hub_is_refused(
    api: Api, recorder: tuple[str, list[tuple[str, dict[str, str]]]]
) -> None:
    url, seen = recorder
    room = await api.create_room()
    assert (await api.join(room["code"], model="m", endpoint=url))[0] == 201
    assert (await chat(api, room["code"], Via="1.1 corp-proxy"))[0] == 200
    via = seen[-1][1]["Via"]
    assert via.startswith("1.1 corp-proxy, 1.1 gambiarra-") and len(via.split(",")) == 2
    status, body = await chat(api, room["code"], Via=via)
    assert status == 508, body
    assert body == {"error": "Failed to proxy request: request loop detected (the request"
                             " already passed through this hub)"}
    assert len(seen) == 1


# -- IDNA and encoding ----------------------------------------------------------------------

def test_endpoints_are_normalized_to_ascii() -> None:
    assert normalize_endpoint("http://bücher.example:1/") == "http://xn--bcher-kva.example:1/"
    assert normalize_endpoint("HTTP://Models.Example:8080/v1") == (
        "http://models.example:8080/v1")
    assert normalize_endpoint("http://h/ü €/v1") == "http://h/%C3%BC%20%E2%82%AC/v1"
    assert normalize_endpoint("http://h/%41") == "http://h/%41"
    assert normalize_endpoint("http://[::1]:8/") == "http://[::1]:8/"
    for bad in ("http://a b:1", "http://" + "x" * 64 + ".example", "http://h/\x85",
                "http://h\u202e.example"):
        with pytest.raises(EndpointError):
            normalize_endpoint(bad)


async def test_non_ascii_endpoints_are_stored_normalized_and_chats_never_500(
    api: Api, recorder: tuple[str, list[tuple[str, dict[str, str]]]]
) -> None:
    url, seen = recorder
    room = await api.create_room()
    code = room["code"]
    status, body = await api.join(code, id="idn", endpoint="http://bücher.example:1/")
    assert status == 201, body
    assert body["participant"]["endpoint"] == "http://xn--bcher-kva.example:1/"
    status, body = await api.join(code, id="path", model="m", endpoint=f"{url}/ü€")
    assert status == 201, body
    assert body["participant"]["endpoint"] == f"{url}/%C3%BC%E2%82%AC"
    assert (await chat(api, code, model="m"))[0] == 200
    assert seen[-1][0] == "/%C3%BC%E2%82%AC/v1/chat/completions"
    status, body = await api.join(code, id="bad", endpoint="http://" + "x" * 64 + ".example")
    assert status == 400 and body["error"].startswith("Invalid endpoint: "), body
    # A non-ASCII endpoint stored by an older hub: a clear 502, never a 500.
    other = await api.create_room()
    await inject(api.hub, other["code"], "http://пример.test:9/€", "127.0.0.1", model="x")
    status, body = await chat(api, other["code"], model="x")
    assert status == 502 and "not plain ASCII" in body["error"], body
    status, body = await api.join(other["code"], id="idn2", model="y",
                                  endpoint="http://пример.test:9/")
    assert status == 201 and body["participant"]["endpoint"] == "http://xn--e1afmkfd.test:9/"
    status, body = await chat(api, other["code"], model="y")
    assert status == 502, body

