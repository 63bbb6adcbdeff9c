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
from types import EllipsisType
from typing import Any
from urllib.parse import quote

import aiohttp

from gambiarra_desktop.http_session import SessionHolder
from gambiarra_desktop.hub_client import (
    NOT_JSON,
    HubApiError,
    HubUnreachableError,
    error_parts,
)

DEFAULT_TIMEOUT_S = 10.0
"""Admin calls: a login spends argon2 time on the hub, the rest read or write a row."""
DEFAULT_CHAT_TIMEOUT_S = 300.0
"""A whole non-streamed answer, possibly escalated and cross-checked by a second model."""
MAX_REPLY_BYTES = 32 * 1024 * 1024
"""A reply larger than this is not the gateway's; reading it whole could exhaust memory."""
GAMBIARRA_HEADER_PREFIX = "x-gambiarra-"
WRONG_SHAPE = ("the hub answered JSON that is not a gateway's reply"
               " (an older hub, or a wrong address?)")
TOO_LARGE = f"the hub's reply is larger than {MAX_REPLY_BYTES // (1024 * 1024)} MB"


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
        long: bool = False,
    ) -> tuple[Any, dict[str, str]]:
        """The reply's JSON and its ``X-Gambiarra-*`` headers, or a :class:`GatewayApiError`.
        The admin token goes with every call once there is one; public routes ignore it.
        ``long``: a chat, which may take minutes, not an admin call's seconds."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
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
            reason = str(exc) or type(exc).__name__
            raise GatewayUnreachableError(
                f"cannot reach the hub at {self.base_url}: {reason}") from exc
        text = raw.decode("utf-8", "replace")
        if status >= 400:
            parts = error_parts(text)
            if parts is None:  # A proxy's or portal's page: its HTML is no message.
                raise GatewayApiError(status, f"HTTP {status}: {NOT_JSON}")
            raise GatewayApiError(status, *parts)
        try:
            return (json.loads(text) if text else None), gambiarra
        except ValueError:
            raise GatewayApiError(502, NOT_JSON) from None

    async def _object(self, method: str, path: str, payload: Any = None,
                      field: str | None = None) -> dict[str, Any]:
        """A reply that must be a JSON object; with ``field``, that field of it (an object)."""
        data, _ = await self._call(method, path, payload)
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


def _segment(value: str) -> str:
    """An id as one path segment: ``/`` and the like are escaped, never a different route."""
    return quote(value, safe="")


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise GatewayApiError(502, TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)
