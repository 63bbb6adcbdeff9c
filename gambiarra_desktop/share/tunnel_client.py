"""The participant's side of the tunnel: requests arrive from the hub over one outbound
WebSocket, go to the local model server, and every chunk of the answer goes straight back.

The participant needs no inbound port, and its model server may listen on localhost only.
A ``cancel`` from the hub (its client hung up) aborts the local request, so the model
stops generating.

The local model server is called with the hub's own HTTP client (``UpstreamPool``: keep-alive
connections, ``httptools``), not aiohttp's: every tunneled request waits on this step, and
aiohttp's client cost several times as much CPU per request. No address policy applies
here: the participant's own machine is where its model server is meant to be.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import socket
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import orjson

from gambiarra_desktop import tunnel_wire
from gambiarra_desktop.endpoints import chat_completions_url
from gambiarra_desktop.hub.proxy.upstream_client import Target, UpstreamError, UpstreamPool
from gambiarra_desktop.protocol import TUNNEL_PARTICIPANT_HEADER

log = logging.getLogger(__name__)

TUNNEL_HEARTBEAT_S = 20.0
HANDSHAKE_TIMEOUT_S = 10.0
LOCAL_CONNECT_TIMEOUT_S = 10.0


@contextlib.contextmanager
def _corked(ws: aiohttp.ClientWebSocketResponse) -> Iterator[None]:
    """Hold small writes back until the block ends (Linux's ``TCP_CORK``), so a whole
    answer's head, body and end reach the hub as one segment: sent one by one, the hub
    woke for each and read them in two or three turns instead of one. Elsewhere, or if the
    socket option is refused, frames are sent as they are written."""
    corked = _set_cork(ws, True)
    try:
        yield
    finally:
        if corked:
            _set_cork(ws, False)


def _set_cork(ws: aiohttp.ClientWebSocketResponse, on: bool) -> bool:
    """Whether the socket took the option (it exists on Linux only)."""
    sock = ws.get_extra_info("socket") if hasattr(socket, "TCP_CORK") else None
    if sock is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, int(on))
    except OSError:
        return False
    return True


class TunnelRejectedError(Exception):
    """The hub refused the tunnel (unknown participant, wrong token): rejoin first."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the hub refused the tunnel (HTTP {status})")
        self.status = status


class TunnelClient:
    def __init__(self, session: aiohttp.ClientSession, endpoint: str) -> None:
        self._session = session
        self._chat_url = chat_completions_url(endpoint)
        self._pool = UpstreamPool(LOCAL_CONNECT_TIMEOUT_S)
        self._requests: dict[int, asyncio.Task[None]] = {}
        self.served = 0

    async def serve(
        self,
        tunnel_url: str,
        participant_id: str,
        token: str,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        """Serve requests until the hub closes the tunnel.

        Raises :class:`TunnelRejectedError` when the hub refuses it, and aiohttp errors
        when the hub cannot be reached.
        """
        headers = {"Authorization": f"Bearer {token}", TUNNEL_PARTICIPANT_HEADER: participant_id}
        try:
            ws = await self._session.ws_connect(
                tunnel_url, headers=headers, heartbeat=TUNNEL_HEARTBEAT_S,
                max_msg_size=tunnel_wire.MAX_FRAME_BYTES,
                timeout=aiohttp.ClientWSTimeout(ws_close=5),
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403, 404):
                raise TunnelRejectedError(exc.status) from exc
            raise
        if on_connected is not None:
            on_connected()
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    self._on_frame(ws, message.data)
                elif message.type == aiohttp.WSMsgType.ERROR:
                    break
        finally:
            for task in list(self._requests.values()):
                task.cancel()
            for task in list(self._requests.values()):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._requests.clear()
            self._pool.close()
            await ws.close()

    @functools.cached_property
    def _target(self) -> Target:
        """The local server's URL, parsed once (a malformed one raises on every request
        instead, and each gets an error frame)."""
        return Target.parse(self._chat_url)

    def _on_frame(self, ws: aiohttp.ClientWebSocketResponse, frame: bytes) -> None:
        try:
            message, _, _ = tunnel_wire.parse(frame)
        except tunnel_wire.TunnelProtocolError as exc:
            log.warning("ignoring a bad frame from the hub: %s", exc)
            return
        if message is None:
            return
        request_id = message["id"]
        if message.get("type") == "request" and isinstance(message.get("body"), dict):
            task = asyncio.get_running_loop().create_task(
                self._perform(ws, request_id, message["body"]))
            self._requests[request_id] = task
            task.add_done_callback(lambda _: self._requests.pop(request_id, None))
        elif message.get("type") == "cancel":
            running = self._requests.get(request_id)
            if running is not None:
                running.cancel()

    async def _perform(
        self, ws: aiohttp.ClientWebSocketResponse, request_id: int, body: dict[str, Any]
    ) -> None:
        try:
            # No first-byte or idle timeout here, as before: the hub times the answer and
            # sends a cancel when it gives up.
            reply = await self._pool.post(self._target, orjson.dumps(body), math.inf)
            content_type = reply.header("Content-Type") or ""
            # As the hub reads it: what the request asked for, or an event stream however
            # spelled. A stream left corked would reach the hub every 200 ms.
            streamed = (body.get("stream") is True
                        or content_type.lower().startswith("text/event-stream"))
            with _corked(ws):  # A whole answer's frames leave in one segment.
                try:
                    await ws.send_bytes(tunnel_wire.control({
                        "type": "head", "id": request_id, "status": reply.status,
                        "contentType": content_type}))
                    async for chunk in reply.iter_chunks(None):
                        await ws.send_bytes(tunnel_wire.data(request_id, chunk))
                        if streamed:
                            _set_cork(ws, False)  # A stream's chunks go out as they come.
                except BaseException:
                    reply.close()  # Cancelled by the hub, or failed: the model stops.
                    raise
                reply.release()
                await ws.send_bytes(tunnel_wire.control({"type": "end", "id": request_id}))
            self.served += 1
        except (UpstreamError, ValueError) as exc:
            reason = f"local model server failed: {exc or type(exc).__name__}"
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(tunnel_wire.control(
                    {"type": "error", "id": request_id, "message": reason}))
        except (ConnectionError, RuntimeError):
            pass  # The tunnel itself went away; serve() notices and returns.
