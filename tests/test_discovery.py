"""Discovery over real zeroconf traffic, pinned to 127.0.0.1 (nothing leaves the machine)."""

from __future__ import annotations

import asyncio

import aiohttp

from gambiarra_desktop.discovery.browser import HubBrowser, HubChange, fetch_rooms
from gambiarra_desktop.discovery.hosting import publish_hub
from gambiarra_desktop.discovery.interfaces import is_virtual, lan_addresses
from gambiarra_desktop.hub import HubServer
from tests.conftest import Api, HubFactory

LOOPBACK = ["127.0.0.1"]


async def next_change(browser: HubBrowser, within_s: float = 5.0) -> HubChange:
    async with asyncio.timeout(within_s):
        return await anext(aiter(browser.changes()))


async def test_hub_is_found_updated_and_gone(
    make_hub: HubFactory, http: aiohttp.ClientSession
) -> None:
    hub = await make_hub()
    async with HubBrowser(LOOPBACK) as browser:
        publisher, addresses = await publish_hub(hub, "Lab hub", "127.0.0.1", cooperating=True)
        try:
            assert [a.address for a in addresses] == ["127.0.0.1"]
            found = await next_change(browser)
            assert found.kind == "found"
            assert found.hub.name == "Lab hub"
            assert found.hub.port == hub.port
            assert found.hub.addresses == ("127.0.0.1",)
            assert found.hub.room_count == 0
            assert found.hub.version == "1.0"
            assert found.hub.api_path == "/rooms"
            assert len(found.hub.hub_id) == 32

            room = await Api(http, hub).create_room("Discovered room")
            updated = await next_change(browser)
            assert updated.kind == "updated" and updated.hub.room_count == 1
            rooms = await fetch_rooms(http, updated.hub)
            assert [r["code"] for r in rooms] == [room["code"]]
        finally:
            await publisher.stop()
        gone = await next_change(browser)
        assert gone.kind == "gone" and gone.hub.name == "Lab hub"
        assert browser.hubs == {}


async def test_hub_id_is_stable_across_restarts(make_hub: HubFactory, tmp_path: object) -> None:
    hub = await make_hub()
    ids = []
    for _ in range(2):
        publisher, _ = await publish_hub(hub, "Same", "127.0.0.1", cooperating=True)
        ids.append(publisher.announcement.hub_id)
        await publisher.stop()
    assert ids[0] == ids[1]


def test_virtual_adapters_are_not_advertised() -> None:
    for name in ("docker0", "veth1a2b", "vEthernet (WSL)", "utun3", "tailscale0", "zt7nnig",
                 "wg0", "lo", "Loopback Pseudo-Interface 1", "br-1234", "virbr0", "vboxnet0"):
        assert is_virtual(name), name
    for name in ("eth0", "en0", "wlan0", "wlp3s0", "enp0s31f6", "Wi-Fi", "Ethernet"):
        assert not is_virtual(name), name
    for address in lan_addresses():
        assert not address.address.startswith("127.")
        assert not is_virtual(address.interface)


def test_an_explicit_interface_is_honoured() -> None:
    assert [a.address for a in lan_addresses("127.0.0.1")] == ["127.0.0.1"]
    assert [a.interface for a in lan_addresses("lo")] == ["lo"]
    assert lan_addresses("no-such-interface0") == []


async def test_hubserver_fixture_type(hub: HubServer) -> None:
    assert hub.port > 0


def test_unread_changes_are_bounded_and_a_listener_gets_them_instead() -> None:
    """A LAN announcing hub after hub must not grow a queue nobody reads: with a listener
    nothing is queued, and without one only the newest changes are kept."""
    from gambiarra_desktop.discovery.browser import MAX_QUEUED_CHANGES, DiscoveredHub

    def change(n: int) -> HubChange:
        hub = DiscoveredHub(f"Hub {n}._gambiarra._tcp.local.", f"{n:032x}", f"Hub {n}",
                            ("127.0.0.1",), 3000, "1", "/v1", 0)
        return HubChange("found", hub)

    heard: list[HubChange] = []
    listened = HubBrowser(["127.0.0.1"], on_change=heard.append)
    unread = HubBrowser(["127.0.0.1"])
    for n in range(MAX_QUEUED_CHANGES * 4):
        listened._report(change(n))
        unread._report(change(n))
    assert len(heard) == MAX_QUEUED_CHANGES * 4
    assert listened._queue.qsize() == 0
    assert unread._queue.qsize() == MAX_QUEUED_CHANGES
    assert unread._queue.get_nowait().hub.name == f"Hub {MAX_QUEUED_CHANGES * 3}"
