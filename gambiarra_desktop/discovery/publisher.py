"""Publishing a hub as ``_gambiarra._tcp.local.`` and keeping its room count current.

Runs on the caller's event loop (the qasync loop in the GUI, uvloop in ``serve``): no
thread. Shutdown sends goodbye packets, so browsers drop the hub at once instead of
waiting for the record to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from gambiarra_desktop.discovery.announcement import HubAnnouncement, packed
from gambiarra_desktop.events import Event, EventBus, EventType
from gambiarra_desktop.protocol import MDNS_SERVICE_TYPE

log = logging.getLogger(__name__)


class HubPublisher:
    def __init__(self, announcement: HubAnnouncement, cooperating: bool = False) -> None:
        """``cooperating`` skips name-conflict probing (1.2 s); for tests on loopback."""
        self.announcement = announcement
        self._cooperating = cooperating
        self._zeroconf: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None
        self._pending: set[asyncio.Task[object]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    def _service_info(self) -> ServiceInfo:
        a = self.announcement
        return ServiceInfo(
            MDNS_SERVICE_TYPE, a.service_name, port=a.port, properties=a.properties(),
            addresses=packed(a.addresses), server=a.host_name,
        )

    async def start(self) -> None:
        self._zeroconf = AsyncZeroconf(
            interfaces=list(self.announcement.addresses), ip_version=IPVersion.V4Only
        )
        self._info = self._service_info()
        announcing = await self._zeroconf.async_register_service(
            self._info, cooperating_responders=self._cooperating
        )
        self._keep(announcing)
        log.info("published %s on %s", self.announcement.service_name,
                 ", ".join(self.announcement.addresses))

    def follow_rooms(self, bus: EventBus, count_rooms: Callable[[], int]) -> None:
        """Update the TXT record's room count whenever a room is created."""

        def on_event(event: Event) -> None:
            if event.type == EventType.ROOM_CREATED:
                self._keep(self.update_rooms(count_rooms()))

        self._unsubscribe = bus.subscribe(on_event)

    async def update_rooms(self, count: int) -> None:
        if self._zeroconf is None or count == self.announcement.room_count:
            return
        self.announcement = self.announcement.with_rooms(count)
        self._info = self._service_info()
        self._keep(await self._zeroconf.async_update_service(self._info))

    def _keep(self, awaitable: object) -> None:
        """Hold background zeroconf work so it can be cancelled cleanly at shutdown."""
        task = asyncio.ensure_future(awaitable)  # type: ignore[call-overload]
        self._pending.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("mDNS update failed: %s", task.exception())

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in list(self._pending):
            task.cancel()
        for task in list(self._pending):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._zeroconf is not None:
            zeroconf, self._zeroconf = self._zeroconf, None
            await zeroconf.async_close()  # Sends the goodbyes.
