"""Run inside a test host (a network namespace) by test_discovery_netns.py: the app's
discovery as the window wires it (a hosted hub, a browser, and the interface watcher that
moves both when the network changes), printing what it sees as JSON lines.

Usage: ``python tests/discovery_node.py NAME DATA_DIR``. Lines: ``{"published": [...]}``
whenever the hub's advertised addresses change, ``{"hubs": {name: [addresses]}}``
whenever the set of hubs seen changes."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from gambiarra_desktop.discovery.browser import HubBrowser, HubChange
from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.discovery.interfaces import InterfaceAddress
from gambiarra_desktop.discovery.watcher import InterfaceWatcher

WATCH_INTERVAL_S = 0.3
SETTLE_S = 1.0


def say(line: dict[str, object]) -> None:
    print(json.dumps(line), flush=True)


async def main(name: str, data_dir: Path) -> None:
    hosted = HostedHub(data_dir, 0, "0.0.0.0", name=name, cooperating_mdns=True)  # noqa: S104
    browser: HubBrowser

    def on_hub(_change: HubChange) -> None:
        say({"hubs": {h.name: list(h.addresses) for h in browser.hubs.values()}})

    async def on_network(addresses: list[InterfaceAddress]) -> None:
        interfaces = [a.address for a in addresses] or None
        await asyncio.gather(hosted.follow_network(addresses),
                             browser.move_to(interfaces, settle_s=SETTLE_S))
        say({"published": [a.address for a in hosted.addresses]})

    watcher = InterfaceWatcher(on_network, None, interval_s=WATCH_INTERVAL_S)
    await hosted.start()
    browser = HubBrowser([a.address for a in watcher.addresses] or None, on_change=on_hub)
    await browser.start()
    watcher.start()
    say({"published": [a.address for a in hosted.addresses], "port": hosted.port})
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # Until EOF.
    finally:
        await watcher.stop()
        await browser.stop()
        await hosted.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
