"""Where a streamed answer goes: aiohttp's response, or the hub's own chat front end.

The relay (``stream_relay.py``) and the proxy write a stream through this one small
interface, so the rules of a stream (nothing sent before the model's first chunk, every
chunk written as it arrives, an error event when it breaks) live once, whichever server
read the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aiohttp import web


class StreamOut(Protocol):
    """A response sent in pieces: a head, then chunks as they come, then its end."""

    async def start(self, status: int, headers: Mapping[str, str]) -> None: ...
    async def write(self, chunk: bytes) -> None: ...
    async def finish(self) -> None: ...


class AiohttpStreamOut:
    """A :class:`StreamOut` onto an aiohttp request; :attr:`response` is the handler's
    return value once started."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._response: web.StreamResponse | None = None

    @property
    def response(self) -> web.StreamResponse:
        if self._response is None:
            raise RuntimeError("the stream was not started")
        return self._response

    async def start(self, status: int, headers: Mapping[str, str]) -> None:
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(self._request)
        self._response = response

    async def write(self, chunk: bytes) -> None:
        await self.response.write(chunk)

    async def finish(self) -> None:
        await self.response.write_eof()
