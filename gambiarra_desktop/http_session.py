"""An aiohttp session a client either borrows or owns, shared by the hub and gateway
clients so both open it lazily and close only what they made; and the one capped way
they read a reply's body."""

from __future__ import annotations

from typing import Self

import aiohttp


class SessionHolder:
    def __init__(self, session: aiohttp.ClientSession | None) -> None:
        self._own_session = session is None
        self._session = session

    @property
    def session(self) -> aiohttp.ClientSession:
        """The borrowed session, or one made on first use (inside the running loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the session if this client made it; a borrowed one stays open."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or ``None`` when it is larger than ``limit`` bytes: a server that answers
    with endless bytes (or a huge declared length) is never read whole into memory."""
    if (response.content_length or 0) > limit:
        return None
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
