"""Running a hub on a socket: one helper shared by ``gambiarra serve``, the GUI, the tests
and the benchmark, so all of them run the hub the same way."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from aiohttp import web

from gambiarra_desktop.events import EventBus
from gambiarra_desktop.gateway.service import GATEWAY
from gambiarra_desktop.hub.api.connections import (
    ConnectionGate,
    GuardedAppRunner,
    connection_budget,
)
from gambiarra_desktop.hub.app import create_app
from gambiarra_desktop.hub.config import DATABASE_FILE_NAME, HubConfig
from gambiarra_desktop.hub.identity import load_or_create_hub_id
from gambiarra_desktop.hub.keys import CONFIG, PROXY, REGISTRY
from gambiarra_desktop.hub.open_files import raise_open_file_limit
from gambiarra_desktop.hub.proxy.hops import HopHeader
from gambiarra_desktop.hub.rooms.lifecycle import RoomRegistry
from gambiarra_desktop.hub.rooms.owner_token import load_or_create_owner_token
from gambiarra_desktop.hub.rooms.room import secret_hash
from gambiarra_desktop.hub.rooms.store import SqliteStore
from gambiarra_desktop.log_throttle import install_throttle

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 5.0


class HubServer:
    """A hub bound to ``host:port``. Port 0 picks a free port; :attr:`port` tells which."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        config: HubConfig | None = None,
        bus: EventBus | None = None,
        access_log: bool = False,
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.requested_port = port
        config = config or HubConfig()
        self.owner_token: str | None = None
        """Lets its holder delete any room; the desktop app and CLI on this machine read it."""
        try:
            self.owner_token = load_or_create_owner_token(data_dir)
        except OSError as exc:  # The store reports an unusable data dir clearly at start.
            log.warning("no owner token (rooms can only be deleted by their creators): %s", exc)
        if self.owner_token is not None and config.owner_token_hash is None:
            config = dataclasses.replace(config, owner_token_hash=secret_hash(self.owner_token))
        self.app = create_app(config, SqliteStore(data_dir / DATABASE_FILE_NAME), bus, data_dir)
        try:  # The hop header names the hub by its stable id (it is public over mDNS too).
            self.app[PROXY].hops = HopHeader(load_or_create_hub_id(data_dir))
        except OSError as exc:  # A random id per run still stops loops.
            log.warning("no stored hub id: %s", exc)
        self._access_log = access_log
        self._runner: web.AppRunner | None = None
        self.port = port
        self.gate: ConnectionGate | None = None
        """Counts open connections against the caps; set by :meth:`start`."""

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def new_admin_password_file(self) -> Path | None:
        """Where this start wrote a new gateway admin's password, if it made one."""
        accounts = self.app[GATEWAY].accounts
        return None if accounts is None else accounts.created_password_file

    @property
    def registry(self) -> RoomRegistry:
        return self.app[REGISTRY]

    async def start(self) -> None:
        """Start serving. Raises ``OSError`` when the port cannot be bound."""
        install_throttle()
        config = self.app[CONFIG]
        self.gate = ConnectionGate(
            connection_budget(config.max_connections, raise_open_file_limit()),
            config.max_connections_per_address,
        )
        runner = GuardedAppRunner(
            self.app, self.gate, config.header_timeout_s, chat_front=True,
            # A client that disconnects cancels its handler, which aborts the upstream call.
            handler_cancellation=True,
            access_log=log if self._access_log else None,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
            auto_decompress=False,  # Compressed bodies are refused (415), never inflated.
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        # Endpoints that lead back to these sockets would loop: the policy refuses them.
        self.app[PROXY].policy.own.listening_on(sockets)

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> HubServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
