"""A small client of the hub API, used by the CLI, the participant agent and the GUI.

Failures come in two kinds, because callers treat them differently: the hub answered with
an error (:class:`HubApiError`, with the seed's message) or could not be reached at all
(:class:`HubUnreachableError`, which an agent retries with backoff).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from gambiarra_desktop.http_session import SessionHolder, read_capped
from gambiarra_desktop.plain_errors import HUB, not_ours_text, unreachable_text
from gambiarra_desktop.protocol import PARTICIPANT_SECRET_HEADER

DEFAULT_TIMEOUT_S = 10.0
MAX_REPLY_BYTES = 32 * 1024 * 1024
"""A hub reply larger than this is not a hub's (its largest, a full room's participants,
is far smaller); more is refused unread."""
WRONG_SHAPE = ("The address answered JSON that is not a Gambiarra hub's reply."
               " Check the address and port.")


class HubApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HubUnreachableError(Exception):
    pass


def error_parts(text: str) -> tuple[str, str | None] | None:
    """The message and ``details`` of a seed-format error body (``{"error": ...,
    "details": ...}``; OpenAI's ``{"error": {"message": ...}}`` too), or None when the
    body is no such thing (HTML, plain text, other JSON)."""
    try:
        body = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    if not error:
        return None
    details = body.get("details")
    return str(error), None if details is None else str(details)


def error_message(status: int, text: str, url: str = "") -> str:
    """The message of a seed-format error body; for anything else (another server's HTML
    404 page, a proxy's text) a plain sentence, never the body itself."""
    parts = error_parts(text)
    return parts[0] if parts else not_ours_text(HUB, url, status)


class HubClient(SessionHolder):
    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        room_password: str | None = None,
    ) -> None:
        """``room_password`` is sent as ``Authorization: Bearer`` on every call: a password
        room's participants, models, chat and events need it (this hub's extension)."""
        self.base_url = base_url.rstrip("/")
        super().__init__(session)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = {"Authorization": f"Bearer {room_password}"} if room_password else {}

    async def request(
        self, method: str, path: str, payload: Any = None, secret: str | None = None,
        bearer: str | None = None,
    ) -> Any:
        """``secret``: the participant secret of the join reply, proving a health call,
        leave or re-join comes from whoever joined. ``bearer``: an ``Authorization`` for
        this call only (a creator secret or owner token), instead of the room password."""
        url = self.base_url + path
        headers = dict(self._headers)
        if secret:
            headers[PARTICIPANT_SECRET_HEADER] = secret
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            async with self.session.request(
                method, url, json=payload, timeout=self._timeout, headers=headers
            ) as response:
                text = await text_capped(response, url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HubUnreachableError(unreachable_text(HUB, url, exc)) from exc
        if response.status >= 400:
            raise HubApiError(response.status, error_message(response.status, text, url))
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            # A captive portal or a proxy's login page answers 200 with HTML: that is no
            # success, and callers that read fields from it would fail in odd ways.
            raise HubApiError(502, not_ours_text(HUB, url, response.status)) from None

    async def _object(
        self, method: str, path: str, payload: Any = None, required: str | None = None,
        secret: str | None = None,
    ) -> dict[str, Any]:
        """A request whose reply must be a JSON object (with a ``required`` object field)."""
        data = await self.request(method, path, payload, secret)
        if not isinstance(data, dict) or (
                required is not None and not isinstance(data.get(required), dict)):
            raise HubApiError(502, WRONG_SHAPE)
        return data

    async def health(self) -> dict[str, Any]:
        return await self._object("GET", "/health")

    async def create_room(self, name: str, password: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": name}
        if password:
            payload["password"] = password
        return await self._object("POST", "/rooms", payload, required="room")

    async def list_rooms(self) -> list[dict[str, Any]]:
        data = await self.request("GET", "/rooms")
        rooms: list[dict[str, Any]] = data.get("rooms", []) if isinstance(data, dict) else []
        return rooms

    async def join(
        self, code: str, payload: dict[str, Any], secret: str | None = None
    ) -> dict[str, Any]:
        """Join (or re-join: then ``secret`` is the previous join's participantSecret)."""
        result = await self._object("POST", f"/rooms/{code}/join", payload,
                                    required="participant", secret=secret)
        if not isinstance(result.get("tunnelToken", ""), str):
            raise HubApiError(502, WRONG_SHAPE)
        return result

    async def heartbeat(self, code: str, participant_id: str, secret: str | None = None) -> None:
        await self.request("POST", f"/rooms/{code}/health", {"id": participant_id}, secret)

    async def leave(self, code: str, participant_id: str, secret: str | None = None) -> None:
        await self.request("DELETE", f"/rooms/{code}/leave/{participant_id}", secret=secret)

    async def delete_room(self, code: str, bearer: str) -> None:
        """Delete a room with its creator secret or the hub's owner token."""
        await self.request("DELETE", f"/rooms/{code}", bearer=bearer)

    async def participants(self, code: str) -> list[dict[str, Any]]:
        data = await self._object("GET", f"/rooms/{code}/participants")
        result = data.get("participants", [])
        if not isinstance(result, list):
            raise HubApiError(502, WRONG_SHAPE)
        return result

    def tunnel_url(self, code: str) -> str:
        return f"{self.base_url}/rooms/{code}/tunnel"

    def openai_base_url(self, code: str) -> str:
        return f"{self.base_url}/rooms/{code}/v1"

    async def events(self, code: str) -> AsyncIterator[tuple[str, Any]]:
        """The room's events as ``(name, data)``, until the hub ends the stream."""
        url = f"{self.base_url}/rooms/{code}/events"
        try:
            async with self.session.get(
                url, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                headers=self._headers,
            ) as response:
                if response.status >= 400:
                    text = await text_capped(response, url)
                    raise HubApiError(response.status,
                                      error_message(response.status, text, url))
                name, data_lines = "message", []
                async for raw in response.content:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data_lines.append(line[5:].strip())
                    elif not line and data_lines:
                        yield name, json_or_not_ours("\n".join(data_lines), url)
                        name, data_lines = "message", []
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HubUnreachableError(unreachable_text(HUB, url, exc)) from exc
        except HttpProcessingError:
            # A line longer than aiohttp's buffer (LineTooLong): no hub sends one. Said as a
            # reply that is not the hub's, so a feed reconnects instead of dying unseen.
            raise HubApiError(502, not_ours_text(HUB, url, 200)) from None


def json_or_not_ours(text: str, url: str) -> Any:
    """A stream's event data: JSON, or the stream is not the hub's (a proxy's page)."""
    try:
        return json.loads(text)
    except ValueError:
        raise HubApiError(502, not_ours_text(HUB, url, 200)) from None


async def text_capped(response: aiohttp.ClientResponse, url: str) -> str:
    """A reply's text, at most :data:`MAX_REPLY_BYTES`: more is no hub's answer (a wrong
    address serving a download, say), and reading it whole could exhaust memory."""
    body = await read_capped(response, MAX_REPLY_BYTES)
    if body is None:
        raise HubApiError(502, not_ours_text(HUB, url, response.status))
    return body.decode("utf-8", "replace")  # The hub's JSON is UTF-8.
