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

from zeroconf import IPVersion, NonUniqueNameException, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from gambiarra_desktop.discovery.announcement import HubAnnouncement, packed
from gambiarra_desktop.events import Event, EventBus, EventType
from gambiarra_desktop.protocol import MDNS_SERVICE_TYPE

log = logging.getLogger(__name__)

MAX_INSTANCES = 9
"""How many "Name (N)" to try before giving up on a name (each try probes for 1.2 s)."""


class NameTakenError(Exception):
    """Every "Name (N)" up to :data:`MAX_INSTANCES` is taken on the LAN."""


class HubPublisher:
    """One hub on the LAN. Its name is kept unique (zeroconf's ``NonUniqueNameException``
    becomes "Name (2)", said in :attr:`renamed_from`), and it can move to other addresses
    when the network changes (:meth:`move_to`)."""

    def __init__(self, announcement: HubAnnouncement, cooperating: bool = False) -> None:
        """``cooperating`` skips name-conflict probing (1.2 s); for tests on loopback."""
        self.announcement = announcement
        self._base_name = announcement.name
        self._cooperating = cooperating
        self._zeroconf: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None
        self._pending: set[asyncio.Task[object]] = set()
        self._room_updates: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = asyncio.Lock()

    @property
    def published(self) -> bool:
        return self._zeroconf is not None

    @property
    def renamed_from(self) -> str | None:
        """The name asked for, when another hub on the LAN holds it and this one took
        "Name (2)"; ``None`` when published under the name asked for."""
        return self._base_name if self.announcement.name != self._base_name else None

    def _service_info(self) -> ServiceInfo:
        a = self.announcement
        return ServiceInfo(
            MDNS_SERVICE_TYPE, a.service_name, port=a.port, properties=a.properties(),
            addresses=packed(a.addresses), server=a.host_name,
        )

    async def start(self) -> None:
        """Publish on the announcement's addresses. :class:`NameTakenError` when no
        "Name (N)" is free; ``OSError`` when the addresses cannot be bound."""
        async with self._lock:
            await self._register()

    async def _register(self) -> None:
        zeroconf = AsyncZeroconf(
            interfaces=list(self.announcement.addresses), ip_version=IPVersion.V4Only
        )
        for instance in range(1, MAX_INSTANCES + 1):
            self.announcement = self.announcement.numbered(self._base_name, instance)
            info = self._service_info()
            try:
                announcing = await zeroconf.async_register_service(
                    info, cooperating_responders=self._cooperating
                )
            except NonUniqueNameException:
                log.info("the LAN already has a hub named %s; trying the next number",
                         self.announcement.service_name)
                continue
            except BaseException:  # Cancelled (a quit) or failed: free the sockets.
                await zeroconf.async_close()
                raise
            self._zeroconf, self._info = zeroconf, info
            self._keep(announcing)
            if self.renamed_from is not None:
                log.warning("another hub on the LAN is named %r: published as %r",
                            self._base_name, self.announcement.name)
            log.info("published %s on %s", self.announcement.service_name,
                     ", ".join(self.announcement.addresses))
            return
        await zeroconf.async_close()
        self.announcement = self.announcement.numbered(self._base_name, 1)
        raise NameTakenError(f"other hubs on the LAN already use the name {self._base_name!r}"
                             f" and its numbered forms: pick another name")

    async def move_to(self, addresses: tuple[str, ...]) -> None:
        """Follow a network change: say goodbye on the old addresses, publish on the new
        ones (none: stay off the LAN until an address comes back). zeroconf binds its
        sockets at start, so moving means a new instance, not a record update."""
        async with self._lock:
            if addresses == self.announcement.addresses and (self.published or not addresses):
                return
            await self._unpublish()
            self.announcement = self.announcement.with_addresses(addresses)
            if addresses:
                await self._register()

    def follow_rooms(self, bus: EventBus, count_rooms: Callable[[], int]) -> None:
        """Update the TXT record's room count whenever a room is created."""

        def on_event(event: Event) -> None:
            if event.type == EventType.ROOM_CREATED:
                # Apart from the zeroconf work a move cancels: the count must survive it.
                task = asyncio.ensure_future(self.update_rooms(count_rooms()))
                self._room_updates.add(task)
                task.add_done_callback(self._room_updates.discard)

        # Only the type it needs: a subscriber to everything would make the hub build the
        # llm:* events of every proxied request for nobody.
        self._unsubscribe = bus.subscribe(on_event, (EventType.ROOM_CREATED,))

    async def update_rooms(self, count: int) -> None:
        async with self._lock:
            if count == self.announcement.room_count:
                return
            # Kept while off the LAN too, so the next publication says the right count.
            self.announcement = self.announcement.with_rooms(count)
            if self._zeroconf is None:
                return
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

    async def _unpublish(self) -> None:
        pending = list(self._pending)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._zeroconf is not None:
            zeroconf, self._zeroconf = self._zeroconf, None
            await zeroconf.async_close()  # Sends the goodbyes.

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in list(self._room_updates):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        async with self._lock:
            await self._unpublish()
