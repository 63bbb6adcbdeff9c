"""Watching the LAN for hubs: each is reported as found, updated (its rooms changed) or
gone, as it happens. Consumers read :meth:`HubBrowser.changes` (the CLI) or pass a
callback (the GUI bridge)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import aiohttp
from zeroconf import DNSQuestionType, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from gambiarra_desktop.protocol import MDNS_SERVICE_TYPE

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT_MS = 3000
LOOK_AGAIN_SETTLE_S = 2.0
"""How long a known hub has to answer a fresh look before it counts as gone. A hub on the
LAN answers a QM question in 0.1-0.2 s; the rest is room for a busy Wi-Fi."""


@dataclass(frozen=True, slots=True)
class DiscoveredHub:
    service_name: str
    hub_id: str
    name: str
    addresses: tuple[str, ...]
    port: int
    version: str
    api_path: str
    room_count: int

    @property
    def url(self) -> str:
        return f"http://{self.addresses[0]}:{self.port}" if self.addresses else ""


@dataclass(frozen=True, slots=True)
class HubChange:
    kind: Literal["found", "updated", "gone"]
    hub: DiscoveredHub


def _hub_from(info: AsyncServiceInfo) -> DiscoveredHub | None:
    properties = {
        (k.decode(errors="replace") if isinstance(k, bytes) else str(k)):
        (v.decode(errors="replace") if isinstance(v, bytes) else "")
        for k, v in info.properties.items()
    }
    addresses = tuple(info.parsed_addresses())
    if info.port is None or not addresses:
        return None
    try:
        rooms = int(properties.get("rooms", "0"))
    except ValueError:
        rooms = 0
    return DiscoveredHub(
        service_name=info.name, hub_id=properties.get("id", ""),
        name=properties.get("name", info.name.split(".")[0]), addresses=addresses,
        port=info.port, version=properties.get("v", ""),
        api_path=properties.get("path", "/rooms"), room_count=rooms,
    )


MAX_QUEUED_CHANGES = 256


class HubBrowser:
    def __init__(
        self,
        interfaces: Sequence[str] | None = None,
        on_change: Callable[[HubChange], None] | None = None,
    ) -> None:
        """``interfaces``: addresses to browse on (all when ``None``; none at all when
        empty: a chosen interface without an address must not mean "everywhere")."""
        self._interfaces = list(interfaces) if interfaces is not None else None
        self._on_change = on_change
        self.hubs: dict[str, DiscoveredHub] = {}
        self._queue: asyncio.Queue[HubChange] = asyncio.Queue()
        self._zeroconf: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._answered: set[str] | None = None
        self._looking = asyncio.Lock()

    @property
    def interfaces(self) -> list[str] | None:
        return list(self._interfaces) if self._interfaces is not None else None

    @property
    def looking(self) -> bool:
        return self._looking.locked()

    async def start(self) -> None:
        if self._interfaces == []:
            return  # Nowhere to browse until an address comes (see move_to).
        if self._interfaces:
            self._zeroconf = AsyncZeroconf(interfaces=self._interfaces,
                                           ip_version=IPVersion.V4Only)
        else:
            self._zeroconf = AsyncZeroconf(ip_version=IPVersion.V4Only)
        self._browser = AsyncServiceBrowser(
            self._zeroconf.zeroconf, MDNS_SERVICE_TYPE, handlers=[self._on_state_change],
            question_type=DNSQuestionType.QM,
        )

    async def look_again(self, settle_s: float = LOOK_AGAIN_SETTLE_S) -> list[DiscoveredHub]:
        """Browse again from scratch, now: a new zeroconf asks the LAN afresh, and every
        known hub that does not answer within ``settle_s`` is reported gone (hubs seen on a
        network the machine left would otherwise linger until their records expire).
        Returns the hubs dropped. What the sidebar's *Look again* runs."""
        async with self._looking:
            return await self._rebrowse(settle_s)

    async def move_to(
        self, interfaces: Sequence[str] | None, settle_s: float = LOOK_AGAIN_SETTLE_S
    ) -> list[DiscoveredHub]:
        """Browse on ``interfaces`` (all when ``None``, nowhere when empty) from now on:
        zeroconf binds at start, so a browser started before the LAN came up never hears
        it until restarted."""
        async with self._looking:
            self._interfaces = list(interfaces) if interfaces is not None else None
            return await self._rebrowse(settle_s)

    async def _rebrowse(self, settle_s: float) -> list[DiscoveredHub]:
        known = set(self.hubs)
        self._answered = set()
        await self._close()
        await self.start()
        await asyncio.sleep(settle_s)
        answered, self._answered = self._answered, None
        dropped = []
        for name in known - answered:
            gone = self.hubs.pop(name, None)
            if gone is not None:
                dropped.append(gone)
                self._report(HubChange("gone", gone))
        return dropped

    async def stop(self) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._zeroconf is not None:
            await self._zeroconf.async_close()
            self._zeroconf = None

    async def __aenter__(self) -> HubBrowser:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def changes(self) -> AsyncIterator[HubChange]:
        while True:
            yield await self._queue.get()

    def _on_state_change(
        self, zeroconf: Zeroconf, service_type: str, name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            gone = self.hubs.pop(name, None)
            if gone is not None:
                self._report(HubChange("gone", gone))
            return
        task = asyncio.get_running_loop().create_task(self._resolve(name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, name: str) -> None:
        if self._zeroconf is None:
            return
        info = AsyncServiceInfo(MDNS_SERVICE_TYPE, name)
        if not await info.async_request(self._zeroconf.zeroconf, RESOLVE_TIMEOUT_MS,
                                        question_type=DNSQuestionType.QM):
            log.debug("could not resolve %s", name)
            return
        hub = _hub_from(info)
        if hub is None:
            return
        if self._answered is not None:
            self._answered.add(name)
        previous = self.hubs.get(name)
        self.hubs[name] = hub
        if previous is None:
            self._report(HubChange("found", hub))
        elif previous != hub:
            self._report(HubChange("updated", hub))

    def _report(self, change: HubChange) -> None:
        """To the ``on_change`` listener when there is one (the app), else onto the queue
        :meth:`changes` reads, which keeps only the newest :data:`MAX_QUEUED_CHANGES`: an
        unread queue must not grow with every hub a busy LAN announces."""
        if self._on_change is not None:
            self._on_change(change)
            return
        if self._queue.qsize() >= MAX_QUEUED_CHANGES:
            self._queue.get_nowait()
        self._queue.put_nowait(change)


async def discover_hubs(
    duration_s: float, interfaces: Sequence[str] | None = None
) -> list[DiscoveredHub]:
    """Every hub that answers within ``duration_s``."""
    async with HubBrowser(interfaces) as browser:
        await asyncio.sleep(duration_s)
        return list(browser.hubs.values())


async def fetch_rooms(
    session: aiohttp.ClientSession, hub: DiscoveredHub, timeout_s: float = 3.0
) -> list[dict[str, object]]:
    """The rooms of a discovered hub, trying each advertised address in turn."""
    for address in hub.addresses:
        url = f"http://{address}:{hub.port}{hub.api_path}"
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
                if r.status == 200:
                    data = await r.json(content_type=None)
                    rooms = data.get("rooms") if isinstance(data, dict) else None
                    if isinstance(rooms, list):
                        return rooms
        except (aiohttp.ClientError, TimeoutError, ValueError):
            continue
    return []
