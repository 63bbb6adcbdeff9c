"""Noticing that the machine's network changed: a Wi-Fi that joins after start, a cable
plugged in, a DHCP lease that moves the address.

zeroconf binds its sockets to the interfaces it is given when it starts and never looks
again, so a hub published (or a browser started) before the LAN came up stays deaf and
mute on it. This module polls the address list (one ``psutil`` call, well under a
millisecond, every few seconds) and calls back only when it differs; the publisher and the
browser then move to the new set. Polling keeps it portable (no netlink, no Windows
notification API) and its cost is bounded: one syscall per interval, no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from gambiarra_desktop.discovery.interfaces import InterfaceAddress, lan_addresses

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 3.0

AddressLister = Callable[[str | None], list[InterfaceAddress]]
"""``lan_addresses``'s shape: tests inject their own list of addresses."""

OnNetworkChange = Callable[[list[InterfaceAddress]], Awaitable[None]]


class InterfaceWatcher:
    """Calls ``on_change(addresses)`` each time the addresses of ``interface`` (or of every
    real interface when ``None``) differ from the last ones seen.

    Changes are delivered one at a time, in order: a change that arrives while the last
    one is still being applied (re-publishing takes a second) waits for it, so a publisher
    is never moved twice at once.
    """

    def __init__(
        self,
        on_change: OnNetworkChange,
        interface: str | None = None,
        lister: AddressLister = lan_addresses,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self._on_change = on_change
        self._interface = interface
        self.lister = lister
        self.interval_s = interval_s
        self.addresses: list[InterfaceAddress] = self._list()
        self._task: asyncio.Task[None] | None = None
        self._applying = asyncio.Lock()

    def _list(self) -> list[InterfaceAddress]:
        try:
            return list(self.lister(self._interface))
        except OSError as exc:  # An interface vanishing mid-listing: try again next time.
            log.debug("listing interfaces failed: %s", exc)
            return self.addresses if hasattr(self, "addresses") else []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check_now(self) -> bool:
        """List the addresses now; ``True`` when they changed (and ``on_change`` ran)."""
        async with self._applying:
            current = self._list()
            if current == self.addresses:
                return False
            previous, self.addresses = self.addresses, current
            log.info("network changed: %s -> %s",
                     ", ".join(a.address for a in previous) or "no LAN address",
                     ", ".join(a.address for a in current) or "no LAN address")
            try:
                await self._on_change(current)
            except Exception:  # One failed move must not stop the watching.
                log.exception("could not follow the network change")
            return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check_now()
