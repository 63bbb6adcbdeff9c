"""Helpers shared by the subcommands: Ctrl+C handling and finding a room's hub."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

import aiohttp

from gambiarra_desktop.discovery.browser import DiscoveredHub, HubBrowser, fetch_rooms
from gambiarra_desktop.discovery.interfaces import lan_addresses


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT/SIGTERM (on Windows, Ctrl+C still raises KeyboardInterrupt)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    return stop


def browse_addresses(interface: str | None) -> list[str] | None:
    """Where to send mDNS queries: the chosen interface, else the real LAN interfaces."""
    addresses = [a.address for a in lan_addresses(interface)]
    if interface is not None and not addresses:
        raise SystemExit(f"Error: no IPv4 address on interface {interface!r}")
    return addresses or None


def error(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1


async def find_room_hub(
    code: str, interface: str | None, within_s: float
) -> tuple[str, DiscoveredHub] | None:
    """The URL of the hub on the LAN that holds room ``code``, found by mDNS."""
    wanted = code.strip().upper()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    checked: set[str] = set()
    async with HubBrowser(browse_addresses(interface)) as browser, aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            for hub in list(browser.hubs.values()):
                key = f"{hub.service_name}/{hub.room_count}"
                if key in checked:
                    continue
                checked.add(key)
                for room in await fetch_rooms(http, hub):
                    if str(room.get("code", "")).upper() == wanted:
                        return hub.url, hub
            await asyncio.sleep(0.1)
    return None
