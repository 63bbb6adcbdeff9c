"""Issue 14: discovery follows the network, looks again on demand, and survives a name
another responder already holds. Real zeroconf pinned to 127.0.0.1; no Qt."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from gambiarra_desktop.discovery.announcement import HubAnnouncement, packed
from gambiarra_desktop.discovery.browser import HubBrowser, HubChange
from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.discovery.interfaces import InterfaceAddress
from gambiarra_desktop.discovery.publisher import HubPublisher
from gambiarra_desktop.discovery.watcher import InterfaceWatcher
from gambiarra_desktop.protocol import MDNS_SERVICE_TYPE

LOOPBACK = ["127.0.0.1"]
LO = InterfaceAddress("lo", "127.0.0.1")


def ours(names: object, *mine: str) -> list[str]:
    """Other tests on this machine publish on loopback too: keep only this test's hubs."""
    return sorted(n for n in names if n in mine)  # type: ignore[attr-defined]


async def until(predicate: Callable[[], object], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "not there in time"
        await asyncio.sleep(0.02)


async def test_the_watcher_reports_each_change_once_with_an_injected_lister() -> None:
    # Given a machine with no LAN address yet, as the watcher's lister tells it
    listed: list[list[InterfaceAddress]] = [[]]
    asked: list[str | None] = []

    def lister(interface: str | None) -> list[InterfaceAddress]:
        asked.append(interface)
        return listed[-1]

    seen: list[list[InterfaceAddress]] = []

    async def on_change(addresses: list[InterfaceAddress]) -> None:
        seen.append(addresses)

    watcher = InterfaceWatcher(on_change, "wlan0", lister=lister, interval_s=0.05)
    watcher.start()
    try:
        # When nothing changes, nobody is told
        await asyncio.sleep(0.2)
        assert seen == []
        # When the Wi-Fi comes up, the new address is reported once
        wifi = InterfaceAddress("wlan0", "192.168.7.20")
        listed.append([wifi])
        await until(lambda: seen == [[wifi]], 2)
        await asyncio.sleep(0.2)
        assert seen == [[wifi]]
        # And when it goes away again, that is a change too
        listed.append([])
        await until(lambda: seen == [[wifi], []], 2)
        assert set(asked) == {"wlan0"}
        assert not await watcher.check_now()
    finally:
        await watcher.stop()


async def test_a_hub_started_before_the_lan_is_published_when_an_address_comes(
    tmp_path: Path,
) -> None:
    # Given a hub hosted while its interface has no address (it is not on the LAN)
    hosted = HostedHub(tmp_path, 0, "127.0.0.1", name="Late LAN", interface="no-such-if0",
                       cooperating_mdns=True)
    await hosted.start()
    try:
        assert hosted.publisher is None
        assert "no IPv4 address" in hosted.mdns_problem
        async with HubBrowser(LOOPBACK) as browser:
            # When the network comes up and the app follows it
            await hosted.follow_network([LO])
            # Then the hub is published there, and a browser finds it
            assert hosted.publisher is not None and hosted.mdns_problem == ""
            assert hosted.lan_url == f"http://127.0.0.1:{hosted.port}"
            await until(lambda: ours((h.name for h in browser.hubs.values()), "Late LAN")
                        == ["Late LAN"])
            # And when the address goes away the hub says goodbye and stays reachable
            await hosted.follow_network([])
            assert hosted.publisher is None and "no IPv4 address" in hosted.mdns_problem
            await until(lambda: not ours((h.name for h in browser.hubs.values()),
                                         "Late LAN"))
    finally:
        await hosted.stop()


async def test_look_again_drops_a_hub_that_left_without_a_goodbye() -> None:
    # Given a hub the browser knows, which then vanishes without a goodbye (power cut)
    announcement = HubAnnouncement("c0ffee" * 5 + "00", "Vanishing", 4321, ("127.0.0.1",))
    responder = AsyncZeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    info = ServiceInfo(MDNS_SERVICE_TYPE, announcement.service_name, port=4321,
                       properties=announcement.properties(),
                       addresses=packed(announcement.addresses), server=announcement.host_name)
    await responder.async_register_service(info, cooperating_responders=True)
    gone: list[HubChange] = []
    async with HubBrowser(LOOPBACK, on_change=lambda c: gone.append(c)
                          if c.kind == "gone" else None) as browser:
        stayer = HubPublisher(HubAnnouncement("5" * 32, "Stayer", 4322, ("127.0.0.1",)),
                              cooperating=True)
        await stayer.start()
        try:
            await until(lambda: len(ours((h.name for h in browser.hubs.values()),
                                         "Vanishing", "Stayer")) == 2)
            responder.zeroconf.registry.async_remove(info)  # No goodbye goes out.
            await responder.async_close()
            # When the user looks again
            started = time.monotonic()
            dropped = await browser.look_again(settle_s=1.0)
            # Then the silent hub is gone at once and the one that answers stays
            assert time.monotonic() - started < 3
            assert ours((h.name for h in dropped), "Vanishing", "Stayer") == ["Vanishing"]
            assert ours((c.hub.name for c in gone), "Vanishing", "Stayer") == ["Vanishing"]
            assert ours((h.name for h in browser.hubs.values()), "Vanishing",
                        "Stayer") == ["Stayer"]
        finally:
            await stayer.stop()


async def test_a_name_already_on_the_lan_becomes_name_2_instead_of_an_exception() -> None:
    # Given a hub published on the LAN (probing for conflicts, as the real app does)
    twin = HubAnnouncement("ab" * 16, "Twin hub", 4400, ("127.0.0.1",))
    first = HubPublisher(twin)
    second = HubPublisher(twin)  # Same id: a copied data dir, or serve beside the app.
    await first.start()
    try:
        # When a second responder publishes the very same hub name
        await second.start()
        # Then it takes "Twin hub (2)" and says so, with records of its own
        assert second.published
        assert second.announcement.name == "Twin hub (2)"
        assert second.renamed_from == "Twin hub"
        assert first.renamed_from is None
        assert second.announcement.host_name != first.announcement.host_name
        async with HubBrowser(LOOPBACK) as browser:
            await until(lambda: ours((h.name for h in browser.hubs.values()),
                                     "Twin hub", "Twin hub (2)") == ["Twin hub", "Twin hub (2)"])
    finally:
        await second.stop()
        await first.stop()
