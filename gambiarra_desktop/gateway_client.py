"""A client of the hub's gateway API (seed 002 at the hub's root), for the CLI and the GUI.

Every failure is one exception type, :class:`GatewayApiError`, with the seed's ``error``
and ``details``, so a window or a command can show both and never a traceback: the hub
refused (its status), the hub could not be reached (:class:`GatewayUnreachableError`,
status 0), or something that is not the gateway answered (a captive portal's HTML, a
proxy's error page: status 502 with a plain message). They subclass the room client's
:class:`HubApiError` and :class:`HubUnreachableError`, so code that already handles a
hub's failures handles these too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import EllipsisType
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from gambiarra_desktop.http_session import SessionHolder, read_capped
from gambiarra_desktop.hub_client import (
    HubApiError,
    HubUnreachableError,
    error_parts,
)
from gambiarra_desktop.plain_errors import HUB, not_ours_text, unreachable_text
from gambiarra_desktop.protocol import PARTICIPANT_SECRET_HEADER

DEFAULT_TIMEOUT_S = 10.0
"""Admin calls: a login spends argon2 time on the hub, the rest read or write a row."""
DEFAULT_CHAT_TIMEOUT_S = 300.0
"""A whole non-streamed answer, possibly escalated and cross-checked by a second model."""
MAX_REPLY_BYTES = 32 * 1024 * 1024
"""A reply larger than this is not the gateway's; reading it whole could exhaust memory."""
GAMBIARRA_HEADER_PREFIX = "x-gambiarra-"
WRONG_SHAPE = ("The hub answered JSON that is not a gateway's reply: an older hub, or a"
               " wrong address? Check the address and port.")
TOO_LARGE = (f"The hub's reply is larger than {MAX_REPLY_BYTES // (1024 * 1024)} MB, which no"
             " gateway sends. Check the address and port.")
MAX_EVENT_BYTES = 64 * 1024
"""One ``/v1/events`` event larger than this is not the hub's; the stream is dropped."""


class GatewayApiError(HubApiError):
    """``status`` is the HTTP status (0: no answer at all); ``message`` and ``details`` are
    the seed's ``error`` and ``details`` fields, or this client's plain words."""

    def __init__(self, status: int, message: str, details: str | None = None) -> None:
        super().__init__(status, message)
        self.details = details

    def __str__(self) -> str:
        return f"{self.message} ({self.details})" if self.details else self.message


class GatewayUnreachableError(GatewayApiError, HubUnreachableError):
    """No HTTP answer: refused, timed out, name not resolved."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)


def _header_name(name: str) -> str:
    """``x-gambiarra-cross-check`` -> ``X-Gambiarra-Cross-Check``, whatever case the hub
    or a proxy in the way used, so callers can index the dict by the documented names."""
    return "-".join(part.capitalize() for part in name.split("-"))


class GatewayClient(SessionHolder):
    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        chat_timeout_s: float = DEFAULT_CHAT_TIMEOUT_S,
        token: str | None = None,
    ) -> None:
        """``base_url`` is the hub's root (``http://host:3000``). ``token`` is an admin token
        from an earlier :meth:`login`; :meth:`login` sets it too."""
        self.base_url = base_url.rstrip("/")
        self.token = token
        super().__init__(session)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._chat_timeout = aiohttp.ClientTimeout(total=chat_timeout_s, sock_connect=10)

    async def _call(
        self, method: str, path: str, payload: Any = None,
        long: bool = False, extra_headers: dict[str, str] | None = None,
    ) -> tuple[Any, dict[str, str]]:
        """The reply's JSON and its ``X-Gambiarra-*`` headers, or a :class:`GatewayApiError`.
        The admin token goes with every call once there is one; public routes ignore it.
        ``long``: a chat, which may take minutes, not an admin call's seconds."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra_headers or {})
        try:
            async with self.session.request(
                method, self.base_url + path, json=payload, headers=headers,
                timeout=self._chat_timeout if long else self._timeout,
            ) as response:
                raw = await _read_capped(response)
                status = response.status
                gambiarra = {_header_name(name): value for name, value in response.headers.items()
                             if name.lower().startswith(GAMBIARRA_HEADER_PREFIX)}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayUnreachableError(
                unreachable_text(HUB, self.base_url + path, exc)) from exc
        text = raw.decode("utf-8", "replace")
        if status >= 400:
            parts = error_parts(text)
            if parts is None:  # A proxy's or portal's page: its HTML is no message.
                raise GatewayApiError(status, not_ours_text(HUB, self.base_url, status))
            raise GatewayApiError(status, *parts)
        try:
            return (json.loads(text) if text else None), gambiarra
        except ValueError:
            raise GatewayApiError(502, not_ours_text(HUB, self.base_url, status)) from None

    async def _object(self, method: str, path: str, payload: Any = None,
                      field: str | None = None,
                      extra_headers: dict[str, str] | None = None) -> dict[str, Any]:
        """A reply that must be a JSON object; with ``field``, that field of it (an object)."""
        data, _ = await self._call(method, path, payload, extra_headers=extra_headers)
        if isinstance(data, dict) and field is not None:
            data = data.get(field)
        if not isinstance(data, dict):
            raise GatewayApiError(502, WRONG_SHAPE)
        return data

    async def _list(self, path: str, field: str) -> list[dict[str, Any]]:
        data, _ = await self._call("GET", path)
        items = data.get(field) if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise GatewayApiError(502, WRONG_SHAPE)
        return items

    async def login(self, password: str, username: str = "admin") -> str:
        """Log in as the admin; the token is kept for the calls that need it."""
        data = await self._object("POST", "/v1/auth/login",
                                  {"username": username, "password": password})
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise GatewayApiError(502, WRONG_SHAPE)
        self.token = token
        return token

    async def health(self) -> dict[str, Any]:
        return await self._object("GET", "/health")

    async def models(self) -> list[dict[str, Any]]:
        """Every model entry (public), in the hub's order: layer, priority, cost, id."""
        return await self._list("/v1/models", "data")

    async def layers(self) -> dict[str, Any]:
        """``{"L0": {"enabled", "models", "providers"}, ..., "L3": ...}`` (the reply's
        ``layers`` field)."""
        return await self._object("GET", "/v1/models/layers", field="layers")

    async def add_model(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The stored entry, with the hub's defaults filled in."""
        return await self._object("POST", "/v1/models", entry)

    async def update_model(self, model_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """A partial update; the whole entry as stored after it."""
        return await self._object("PUT", f"/v1/models/{_segment(model_id)}", changes)

    async def delete_model(self, model_id: str) -> None:
        await self._object("DELETE", f"/v1/models/{_segment(model_id)}")

    async def config(self) -> dict[str, Any]:
        """The configuration block itself (the reply's ``configuration`` field)."""
        return await self._object("GET", "/v1/config", field="configuration")

    async def set_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        """A partial update; the whole configuration block after it."""
        return await self._object("PUT", "/v1/config", changes, field="configuration")

    async def providers(self) -> list[dict[str, Any]]:
        """Each direct provider's base URL, whether it has a key (never the key) and health."""
        return await self._list("/v1/providers", "providers")

    async def set_provider(
        self, provider_id: str, base_url: str | None = None,
        api_key: str | None | EllipsisType = ...,
    ) -> dict[str, Any]:
        """Change a provider's base URL and/or key. ``api_key`` left out keeps the key;
        ``None`` clears the admin-set key (an environment key, if any, applies again)."""
        changes: dict[str, Any] = {}
        if base_url is not None:
            changes["baseUrl"] = base_url
        if not isinstance(api_key, EllipsisType):
            changes["apiKey"] = api_key
        return await self._object("PUT", f"/v1/providers/{_segment(provider_id)}", changes)

    async def chat(self, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """A non-streamed chat completion: the answer's JSON (with ``crossCheck`` when it
        was cross-checked) and the ``X-Gambiarra-*`` headers (``X-Gambiarra-Model``,
        ``-Layer``, ``-Participant``, ``-Cross-Check``) that say who answered."""
        data, headers = await self._call("POST", "/v1/chat/completions",
                                         {**body, "stream": False}, long=True)
        if not isinstance(data, dict):
            raise GatewayApiError(502, WRONG_SHAPE)
        return data, headers

    # API keys and usage (issue 11). ``token`` may also be an API key (``gk-...``): the hub
    # then answers /v1/usage with that key's own rows only.

    async def keys(self) -> list[dict[str, Any]]:
        """Every key the admin made (never its secret), with its usage so far."""
        return await self._list("/v1/keys", "data")

    async def create_key(
        self, name: str, rpm: int | None = None, tpm: int | None = None,
        budget: float | None = None, budget_period: str | None = None,
        rooms: list[str] | None = None, priority: int | None = None,
    ) -> dict[str, Any]:
        """The new key's record with ``key``, its whole text: shown this once, never again.
        Only what was given is sent, so the hub's documented defaults apply to the rest."""
        body: dict[str, Any] = {"name": name}
        for field, value in (("rpm", rpm), ("tpm", tpm), ("budget", budget),
                             ("budgetPeriod", budget_period), ("rooms", rooms),
                             ("priority", priority)):
            if value is not None:
                body[field] = value
        created = await self._object("POST", "/v1/keys", body)
        if not isinstance(created.get("key"), str) or not isinstance(created.get("id"), str):
            raise GatewayApiError(502, WRONG_SHAPE)
        return created

    async def revoke_key(self, key_id: str) -> None:
        """Revoked at once: the next request carrying the key is refused."""
        await self._object("DELETE", f"/v1/keys/{_segment(key_id)}")

    async def usage(self, group_by: str = "key", start: str | int | None = None,
                    end: str | int | None = None) -> dict[str, Any]:
        """``{"groupBy", "from", "to", "data": [row, ...]}``; ``start``/``end`` are epoch
        ms or ISO-8601 dates (UTC); left out, the hub takes the last 30 days."""
        query: dict[str, str] = {"groupBy": group_by}
        if start is not None:
            query["from"] = str(start)
        if end is not None:
            query["to"] = str(end)
        reply = await self._object("GET", "/v1/usage?" + urlencode(query))
        rows = reply.get("data")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise GatewayApiError(502, WRONG_SHAPE)
        return reply

    async def participant_usage(self, code: str, participant_id: str,
                                secret: str | None = None) -> list[dict[str, Any]]:
        """Who was served through one participant (busiest first): its own secret proves
        it is that participant; without one, the admin token must."""
        extra = {PARTICIPANT_SECRET_HEADER: secret} if secret else None
        reply = await self._object(
            "GET", f"/rooms/{_segment(code)}/participants/{_segment(participant_id)}/usage",
            extra_headers=extra)
        people = reply.get("people")
        if not isinstance(people, list) or not all(isinstance(p, dict) for p in people):
            raise GatewayApiError(502, WRONG_SHAPE)
        return people

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """The gateway-wide events (``cost:alert``) as ``(name, data)``, with the admin
        token, until the hub ends the stream. A refusal is a :class:`GatewayApiError`."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        try:
            async with self.session.get(self.base_url + "/v1/events", headers=headers,
                                        timeout=timeout) as response:
                if response.status >= 400:
                    text = (await _read_capped(response)).decode("utf-8", "replace")
                    parts = error_parts(text)
                    raise GatewayApiError(response.status, *(parts or (
                        not_ours_text(HUB, self.base_url, response.status),)))
                async for name, data in _sse(response):
                    yield name, data
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayUnreachableError(
                unreachable_text(HUB, self.base_url + "/v1/events", exc)) from exc


def _segment(value: str) -> str:
    """An id as one path segment: ``/`` and the like are escaped, never a different route."""
    return quote(value, safe="")


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    body = await read_capped(response, MAX_REPLY_BYTES)
    if body is None:
        raise GatewayApiError(502, TOO_LARGE)
    return body


async def _sse(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    """Server-sent events as ``(name, data)``; comments (keep-alives) are skipped, and an
    event that is not JSON or too large ends the stream as not the gateway's."""
    name, data_lines, size = "message", [], 0
    async for raw in response.content:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        size += len(raw)
        if size > MAX_EVENT_BYTES:
            raise GatewayApiError(502, TOO_LARGE)
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data_lines.append(line[5:].strip())
        elif not line:
            if data_lines:
                try:
                    data = json.loads("\n".join(data_lines))
                except ValueError:
                    raise GatewayApiError(
                        502, not_ours_text(HUB, str(response.url), response.status)) from None
                yield name, data
            name, data_lines, size = "message", [], 0
