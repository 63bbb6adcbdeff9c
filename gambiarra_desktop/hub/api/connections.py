"""Connection-level limits: how many connections the hub holds, per hub and per client
address, and how long a connection may take to send its request head.

Why at the connection and not in a middleware: an idle connection never becomes a request,
yet it holds a file descriptor. About 1,005 idle sockets once used up a 1024 open-file limit
and locked everyone out. So every accepted connection is counted when it is made; one over
a cap gets a short JSON 503 (hub full) or 429 (too many from one address) with Retry-After
and is closed, and the hub keeps descriptors for the model-server sockets, files and
SQLite it needs to serve the others. A connection that dribbles its request head (slowloris)
is closed after ``header_timeout_s``; a keep-alive connection that sends nothing keeps
aiohttp's idle timeout.

The hooks are aiohttp's own: a ``web.AppRunner`` whose server makes
:class:`GuardedRequestHandler` protocols. The handler reads three of aiohttp's protected
fields (``_request_count``, ``_waiter``, ``_upgraded``); ``tests/test_exhaustion.py`` pins
the behaviour, so an aiohttp change that moves them fails there.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from gambiarra_desktop.hub.api.address_quota import AddressQuota
from gambiarra_desktop.hub.api.responses import STATUS_MESSAGES, error_response, raw_error_response

if TYPE_CHECKING:
    from gambiarra_desktop.hub.front.connection import FrontConnection

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
REFUSED_LINGER_S = 1.0
"""How long a refused connection stays open to read (and drop) the client's request, so the
close is a clean FIN after the error and not a reset that could destroy it unread."""
MAX_LINGERING = 256
"""Refused connections allowed to linger at once; beyond that they are cut at once."""
MIN_CONNECTIONS = 32
MAX_AUTO_CONNECTIONS = 4096
FILE_RESERVE = 128
"""Descriptors kept back from the connection budget for listening sockets, the store, log
files and the like; half of the rest is kept for the sockets to model servers."""


def connection_budget(configured: int, open_file_limit: int | None) -> int:
    """The hub-wide connection cap: ``configured`` when set, else derived from the
    open-file limit so that clients can never take the descriptors the hub needs."""
    if configured > 0:
        return configured
    if open_file_limit is None:
        return MAX_AUTO_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_AUTO_CONNECTIONS, (open_file_limit - FILE_RESERVE) // 2))


class ConnectionGate(AddressQuota):
    """Counts open connections in total and per client address."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        super().__init__(max_total, max_per_address)
        self.refused_count = 0
        self.lingering = 0

    @property
    def open_count(self) -> int:
        return self.count

    def admit_connection(self, address: str) -> tuple[int, str] | None:
        """Count the connection in, or say why not, as ``(status, message)``."""
        refusal = self.admit(address)
        if refusal is None:
            return None
        self.refused_count += 1
        if refusal == "total":
            return 503, "The hub is full (too many open connections); try again later"
        return 429, f"Too many open connections from your address (limit {self.max_per_address})"


def peer_address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return ""  # A Unix socket or an unknown peer: all such share one allowance.


class GuardedRequestHandler(RequestHandler):
    """aiohttp's HTTP protocol, counted by a :class:`ConnectionGate`, with a deadline for
    each request head, and with malformed HTTP answered in JSON and logged in one line."""

    def __init__(
        self, manager: Server, *, gate: ConnectionGate, header_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._gate = gate
        self._header_timeout_s = header_timeout_s
        self._address = ""
        self._admitted = False
        self._refused_transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._quiet_error = False

    # -- counting --------------------------------------------------------------------

    def adopt(self, transport: asyncio.Transport) -> None:
        """Take a connection the hub's chat front end already counted in (and read some
        of): the gate slot is this handler's to release from now on."""
        self._address = peer_address(transport)
        self._admitted = True
        super().connection_made(transport)
        self.start_head_timer()

    def refuse(self, transport: asyncio.Transport, status: int, message: str) -> None:
        """Answer a connection the front end found over a cap, and close it."""
        self._address = peer_address(transport)
        self._refuse(transport, status, message)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # A stream server's are.
        self._address = peer_address(transport)
        refusal = self._gate.admit_connection(self._address)
        if refusal is not None:
            self._refuse(transport, *refusal)
            return
        self._admitted = True
        super().connection_made(transport)
        self.start_head_timer()

    def _refuse(self, transport: asyncio.Transport, status: int, message: str) -> None:
        log.debug("refused a connection from %s: %d %s", self._address, status, message)
        transport.write(raw_error_response(status, message, {"Retry-After": str(RETRY_AFTER_S)}))
        if self._gate.lingering >= MAX_LINGERING or not transport.can_write_eof():
            transport.abort()
            return
        transport.write_eof()
        self._gate.lingering += 1
        self._refused_transport = transport
        self._timer = self._loop.call_later(REFUSED_LINGER_S, transport.abort)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return  # A refused connection's request, read only to be dropped.
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            self.stop_head_timer()  # A complete head arrived.
        elif self._timer is None and self._waiting_for_request():
            self.start_head_timer()  # The first bytes of the next head on a kept-alive one.

    def eof_received(self) -> None:
        if self._refused_transport is not None:
            self._refused_transport.close()  # The client is done: the error was read.
            return
        super().eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.stop_head_timer()
        if self._refused_transport is not None:
            self._refused_transport = None
            self._gate.lingering -= 1
        if not self._admitted:
            return
        self._admitted = False
        self._gate.release(self._address)
        super().connection_lost(exc)

    # -- request head deadline -------------------------------------------------------

    def _waiting_for_request(self) -> bool:
        waiter = self._waiter
        return waiter is not None and not waiter.done() and not self._upgraded

    def start_head_timer(self) -> None:
        if self._header_timeout_s > 0 and self._timer is None and self._admitted:
            self._timer = self._loop.call_later(self._header_timeout_s, self._head_too_slow)

    def stop_head_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_too_slow(self) -> None:
        self._timer = None
        log.debug("closed a connection from %s: no complete request head within %g s",
                  self._address, self._header_timeout_s)
        self.force_close()

    # -- malformed HTTP --------------------------------------------------------------

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Bad HTTP (a garbled request line, oversized headers) is the client's error: one
        line at DEBUG and a JSON error, not an ERROR with a traceback per request."""
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        log.debug("bad HTTP from %s: %d %.200s", request.remote, status,
                  " ".join(str(exc or message).split()))  # One line, whatever it says.
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send the error")
        response = error_response(status, STATUS_MESSAGES.get(status, "Bad request"))
        response.force_close()
        return response


class GuardedServer(Server):
    """aiohttp's server (the protocol factory), making :class:`GuardedRequestHandler`s,
    each behind the hub's chat front end when ``front_app`` is given."""

    def __init__(self, base: Server, gate: ConnectionGate, header_timeout_s: float,
                 front_app: web.Application | None = None) -> None:
        super().__init__(
            base.request_handler, request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation, loop=base._loop, **base._kwargs,
        )
        self.gate = gate
        self.header_timeout_s = header_timeout_s
        self.keepalive_timeout_s = float(self._kwargs.get("keepalive_timeout", 3630))
        """aiohttp's default: an idle kept-alive connection is closed after this long."""
        self.access_log: logging.Logger | None = self._kwargs.get("access_log")
        """``gambiarra serve --access-log``: the front end logs the chats it serves."""
        self._front_app = front_app
        self.fronts: set[FrontConnection] = set()
        """Open connections the chat front end holds (aiohttp tracks its own)."""

    def __call__(self) -> asyncio.Protocol:  # type: ignore[override]
        if self._front_app is None:
            return self.make_handler()
        from gambiarra_desktop.hub.front.connection import FrontConnection

        return FrontConnection(self._front_app, self)

    def make_handler(self) -> GuardedRequestHandler:
        return GuardedRequestHandler(
            self, gate=self.gate, header_timeout_s=self.header_timeout_s, loop=self._loop,
            **self._kwargs,
        )

    def pre_shutdown(self) -> None:
        super().pre_shutdown()
        for front in self.fronts:
            front.close_when_idle()

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """aiohttp's connections, and the front end's: answers in progress get ``timeout``
        to finish, then their connections are cut."""
        fronts = list(self.fronts)
        await asyncio.gather(super().shutdown(timeout),
                             *(front.shutdown(timeout) for front in fronts))
        self.fronts.clear()


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` whose sites accept connections through a :class:`ConnectionGate`."""

    def __init__(
        self, app: web.Application, gate: ConnectionGate, header_timeout_s: float,
        chat_front: bool = False, **kwargs: Any,
    ) -> None:
        """``chat_front``: room chats are read by the hub's own front end (``hub/front/``)."""
        super().__init__(app, **kwargs)
        self.gate = gate
        self._header_timeout_s = header_timeout_s
        self._chat_front = chat_front

    async def _make_server(self) -> Server:
        return GuardedServer(await super()._make_server(), self.gate, self._header_timeout_s,
                             self.app if self._chat_front else None)
