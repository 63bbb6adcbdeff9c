"""The agent API on a socket: ``gambiarra agent``, the desktop app and the tests all run it
through :class:`AgentServer`, so all of them get the same guard and the same limits."""

from __future__ import annotations

import logging

from aiohttp import web

from gambiarra_desktop.agent import routes
from gambiarra_desktop.agent.config import DEFAULT_HOST, DEFAULT_PORT, AgentConfig
from gambiarra_desktop.agent.http_errors import agent_middleware
from gambiarra_desktop.agent.keys import SERVICE, TOKEN
from gambiarra_desktop.agent.service import AgentService
from gambiarra_desktop.agent.token import AGENT_TOKEN_FILE, TokenCheck, load_or_create_agent_token
from gambiarra_desktop.hub.api.connections import ConnectionGate, GuardedAppRunner
from gambiarra_desktop.local_callers import is_loopback_host

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
"""A conversation with file contents in it; far more is a mistake or an attack."""
SHUTDOWN_TIMEOUT_S = 3.0
MAX_CONNECTIONS = 64
"""Every caller is on this machine, so one cap serves as total and per address: a few
sessions, their relay answers and model lists, far below the open-file limit."""
HEADER_TIMEOUT_S = 10.0


class NotLoopbackError(ValueError):
    """The agent runs commands: it listens on this machine's loopback only."""


def create_agent_app(service: AgentService, token: TokenCheck) -> web.Application:
    app = web.Application(middlewares=[agent_middleware], client_max_size=MAX_BODY_BYTES)
    app[SERVICE] = service
    app[TOKEN] = token
    app.add_routes(routes.routes)
    return app


class AgentServer:
    """The agent API bound to ``host:port`` (port 0 picks one; :attr:`port` tells which)."""

    def __init__(self, config: AgentConfig, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT) -> None:
        if not is_loopback_host(host):
            raise NotLoopbackError(f"the agent API runs commands, so it listens only on this"
                                   f" machine's loopback (127.0.0.1 or ::1), not {host}")
        self.host = host
        self.port = port
        self.service = AgentService(config)
        self.token_file = config.data_dir / AGENT_TOKEN_FILE
        self.token = load_or_create_agent_token(config.data_dir)
        """For the desktop app and tests on this machine; never printed or logged."""
        self.app = create_agent_app(self.service, TokenCheck(self.token))
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Raises ``OSError`` when the port cannot be bound, ``StoreError`` for a bad data
        dir, ``OSError``/``NotADirectoryError`` for a missing workspace."""
        await self.service.start()
        # The hub's connection guard: a cap on open connections and a deadline for each
        # request head, both before any token is checked (security rule 5); compressed
        # bodies are refused by the guard, never inflated.
        runner = GuardedAppRunner(
            self.app, ConnectionGate(MAX_CONNECTIONS, MAX_CONNECTIONS), HEADER_TIMEOUT_S,
            handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S,
            auto_decompress=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self.service.stop()
            raise
        self._runner = runner
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            await self.service.stop()

    async def __aenter__(self) -> AgentServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
