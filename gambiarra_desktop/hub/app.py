"""``create_app``: the hub as a library, with no globals, so tests can run many at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gambiarra_desktop.accounting.caller import rate_headers_of
from gambiarra_desktop.accounting.routes import routes as key_routes
from gambiarra_desktop.accounting.service import ACCOUNTING, Accounting
from gambiarra_desktop.accounting.usage_routes import routes as usage_routes
from gambiarra_desktop.events import EventBus, EventType
from gambiarra_desktop.gateway.routes import routes as gateway_routes
from gambiarra_desktop.gateway.service import GATEWAY, Gateway
from gambiarra_desktop.hub.api.body_budget import BODY_BUDGET, BodyBudget
from gambiarra_desktop.hub.api.responses import add_cors_header, api_middleware
from gambiarra_desktop.hub.api.routes import routes
from gambiarra_desktop.hub.api.sse import RoomEventStreams
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.keys import (
    BUS,
    CONFIG,
    PASSWORDS,
    PROXY,
    REGISTRY,
    SCHEDULER,
    STATS,
    STORE,
    STREAMS,
    TUNNELS,
)
from gambiarra_desktop.hub.proxy.forward import ChatProxy
from gambiarra_desktop.hub.proxy.scheduler import Scheduler
from gambiarra_desktop.hub.proxy.stats import StatsBook
from gambiarra_desktop.hub.proxy.tunnel import TunnelHub
from gambiarra_desktop.hub.rooms.lifecycle import RoomLimits, RoomRegistry
from gambiarra_desktop.hub.rooms.liveness import sweep_forever
from gambiarra_desktop.hub.rooms.password_gate import PasswordGate
from gambiarra_desktop.hub.rooms.store import Store
from gambiarra_desktop.terminal.manager import TERMINAL, TerminalManager
from gambiarra_desktop.terminal.routes import routes as terminal_routes
from gambiarra_desktop.web.routes import add_web_page


def create_app(config: HubConfig, store: Store, bus: EventBus | None = None,
               data_dir: Path | None = None) -> web.Application:
    """Build the hub, with the gateway of seeds 002/003 on the same app. ``bus`` lets an
    embedding app (the GUI) listen to the hub's events. ``data_dir`` holds the gateway's
    signing key and first admin password; without one they live in memory only."""
    app = web.Application(middlewares=[api_middleware], client_max_size=config.max_body_bytes)
    bus = bus or EventBus()
    limits = RoomLimits(config.max_rooms, config.max_participants_per_room,
                        config.room_idle_ttl_s, config.max_rooms_per_address,
                        config.max_participants_per_address, config.participant_forget_s)
    passwords = PasswordGate(config.password_max_failures, config.password_failure_window_s)

    def on_room_removed(room_code: str) -> None:
        """A deleted or expired room: its tunnels, numbers and remembered passwords go."""
        passwords.forget_room(room_code)
        tunnels.drop_room(room_code)
        stats.forget_room(room_code)

    registry = RoomRegistry(store, bus, limits, config.owner_token_hash,
                            on_removed=on_room_removed)
    stats = StatsBook()

    def on_queued(room_code: str, position: int, request_id: str) -> None:
        room = registry.get(room_code) if registry.listens(EventType.LLM_QUEUED) else None
        if room is not None:
            data: dict[str, object] = {"position": position}
            if request_id:  # Additive: only when the client named its request.
                data["requestId"] = request_id
            registry.publish(EventType.LLM_QUEUED, room, data)

    def on_queue_changed(room_code: str) -> None:
        room = registry.get(room_code) if registry.listens(EventType.QUEUE_CHANGED) else None
        if room is not None:
            registry.publish(EventType.QUEUE_CHANGED, room,
                             {"waiting": scheduler.waiting(room_code),
                              "positions": scheduler.positions(room_code)})

    scheduler = Scheduler(stats, config.queue_max_per_room, config.queue_max_wait_s, on_queued,
                          on_queue_changed)

    async def on_tunnel_lost(room_code: str, participant_id: str) -> None:
        room = registry.get(room_code)
        if room is not None:
            await registry.mark_offline(room, participant_id, "its tunnel dropped")

    tunnels = TunnelHub(on_tunnel_lost)
    app[CONFIG] = config
    app[BODY_BUDGET] = BodyBudget(config.body_read_budget_bytes, config.max_body_bytes,
                                  config.body_read_timeout_s)
    app[BUS] = bus
    app[STORE] = store
    app[REGISTRY] = registry
    app[TUNNELS] = tunnels
    app[STATS] = stats
    app[SCHEDULER] = scheduler
    app[PASSWORDS] = passwords
    app[PROXY] = ChatProxy(config, registry, tunnels, scheduler)
    app[GATEWAY] = Gateway(config, store, data_dir, registry, app[PROXY], tunnels, stats)
    gateway = app[GATEWAY]
    app[ACCOUNTING] = Accounting(config, store, bus, lambda: gateway.settings)
    gateway.redis_answering = app[ACCOUNTING].limiter.redis_answering
    app[PROXY].ledger = app[ACCOUNTING].ledger
    app[PROXY].key_book = app[ACCOUNTING].keys
    app[TERMINAL] = TerminalManager(
        store, data_dir, enabled=config.enable_terminal,
        workdir=Path(config.terminal_workdir) if config.terminal_workdir else None,
        max_sessions=config.terminal_max_sessions,
        idle_timeout_s=config.terminal_idle_timeout_s)
    app[STREAMS] = RoomEventStreams(
        bus, config.sse_heartbeat_s, config.sse_queue_size, config.sse_buffer_bytes,
        config.max_event_listeners, config.max_event_listeners_per_address)
    app.add_routes(routes)
    app.add_routes(gateway_routes)
    app.add_routes(key_routes)
    app.add_routes(usage_routes)
    app.add_routes(terminal_routes)
    add_web_page(app)  # The guests' page at / and /r/CODE (gambiarra_desktop/web/).
    app.on_response_prepare.append(add_cors_header)
    app.on_response_prepare.append(_add_rate_headers)
    app.on_shutdown.append(_end_event_streams)
    app.cleanup_ctx.append(_hub_lifecycle)
    return app


async def _hub_lifecycle(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    await app[STORE].open()
    await app[REGISTRY].load()
    await app[GATEWAY].open()
    await app[ACCOUNTING].open()
    await app[TERMINAL].start()
    sweeper = asyncio.create_task(
        sweep_forever(app[REGISTRY], config.health_check_interval_s,
                      config.participant_timeout_s, config.loading_grace_factor),
        name="gambiarra-liveness",
    )
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await app[TERMINAL].stop()  # Shells killed, connections closed, audited.
        await app[ACCOUNTING].close()  # Writes the ledger's last rows before the store goes.
        await app[GATEWAY].close()
        await app[PROXY].close()
        await app[STORE].close()


async def _add_rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``X-RateLimit-*`` of an admitted request on its response, streamed or not: admission
    runs before the handler picks its kind of response, so it leaves them on the request."""
    headers = rate_headers_of(request)
    if headers:
        response.headers.update(headers)
        response.headers["Access-Control-Expose-Headers"] = ", ".join(headers)


async def _end_event_streams(app: web.Application) -> None:
    app[STREAMS].close_all()
    await app[TUNNELS].close_all()
