"""The periodic sweep that marks silent participants offline (seed 001: 30 s, checked
every 10 s) and deletes rooms that have been idle for too long."""

from __future__ import annotations

import asyncio
import logging

from gambiarra_desktop.hub.rooms.lifecycle import RoomRegistry

log = logging.getLogger(__name__)


async def sweep_forever(
    registry: RoomRegistry, interval_s: float, timeout_s: float, loading_factor: float
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            marked = await registry.mark_stale_offline(timeout_s, loading_factor)
            expired = await registry.expire_idle_rooms()
            forgotten = await registry.forget_long_offline()
        except Exception:
            # A failed sweep (a disk error, say) must not end liveness checks for good.
            log.exception("liveness sweep failed")
            continue
        if marked:
            log.info("marked %d silent participant(s) offline", marked)
        if forgotten:
            log.info("removed %d participant(s) offline for too long", forgotten)
        if expired:
            log.info("deleted %d idle room(s)", expired)
