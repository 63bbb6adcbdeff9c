"""Where the gateway's non-room models live, their keys, and whether they answer.

Base URL and API key per provider come from the environment (``OPENAI_API_KEY``,
``OPENAI_BASE_URL`` and the same for ``OPENROUTER``, ``ANTHROPIC`` and ``OSS_LOCAL``) or
from the admin (stored in the owner-only database); the admin's choice wins. Keys are
never returned by a route nor logged: :meth:`Providers.describe` says only whether one is
set and where it came from.

Health means "answered recently", not "has a key": a probe asks each configured provider
for its model list every ``probe_interval_s``, and every real request counts too. A
provider whose last contact failed is skipped by ``auto`` until it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from gambiarra_desktop.endpoints import chat_completions_url, openai_models_url
from gambiarra_desktop.gateway.errors import InvalidFieldError, ProviderNotFoundError
from gambiarra_desktop.gateway.key_redaction import RedactedResponse
from gambiarra_desktop.gateway.model_entries import CLOUD_PROVIDERS, LOCAL_PROVIDER
from gambiarra_desktop.gateway.store import PROVIDER_PREFIX, GatewayStore
from gambiarra_desktop.hub.proxy.endpoint_policy import EndpointError, normalize_endpoint
from gambiarra_desktop.hub.proxy.upstream_client import (
    ModelResponse,
    Target,
    UpstreamError,
    UpstreamPool,
)

log = logging.getLogger(__name__)

DIRECT_PROVIDERS = (LOCAL_PROVIDER, *CLOUD_PROVIDERS)
"""Providers the gateway dials itself (rooms are reached through their scheduler)."""
DEFAULT_BASE_URLS = {
    "oss-local": "http://127.0.0.1:11434/v1",
    "openai": "https://api.openai.com/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "anthropic": "https://api.anthropic.com/v1",
}
ENV_PREFIXES = {"oss-local": "OSS_LOCAL", "openai": "OPENAI", "openrouter": "OPENROUTER",
                "anthropic": "ANTHROPIC"}
PROBE_TIMEOUT_S = 5.0
MAX_PROBE_BODY_BYTES = 4 * 1024 * 1024
MAX_KEY_CHARS = 1024
KeySource = Literal["env", "admin"]


@dataclass
class ProviderState:
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    key_source: KeySource | None = None
    admin_base_url: bool = False
    last_ok_ms: int | None = None
    last_failure_ms: int | None = None
    last_error: str | None = None
    chat_target: Target | None = None
    auth_header: str = field(default="", repr=False)

    @property
    def needs_key(self) -> bool:
        return self.base_url != "" and self.api_key is None


class Providers:
    def __init__(self, store: GatewayStore | None, pool: UpstreamPool,
                 probe_interval_s: float = 30.0, healthy_window_s: float = 90.0) -> None:
        self._store = store
        self._pool = pool
        self.probe_interval_s = probe_interval_s
        self.healthy_window_s = healthy_window_s
        self._states: dict[str, ProviderState] = {}
        for provider in DIRECT_PROVIDERS:
            self._states[provider] = self._from_environment(provider)

    @staticmethod
    def _from_environment(provider: str) -> ProviderState:
        prefix = ENV_PREFIXES[provider]
        base = os.environ.get(f"{prefix}_BASE_URL") or DEFAULT_BASE_URLS[provider]
        key = os.environ.get(f"{prefix}_API_KEY") or None
        state = ProviderState(base_url=base, api_key=key, key_source="env" if key else None)
        _prepare(provider, state)
        return state

    async def load(self) -> None:
        """Apply what the admin stored over the environment's defaults."""
        if self._store is None:
            return
        for provider in DIRECT_PROVIDERS:
            stored = await self._store.load_setting(PROVIDER_PREFIX + provider) or {}
            state = self._states[provider]
            base, key = stored.get("baseUrl"), stored.get("apiKey")
            if isinstance(base, str) and base:
                state.base_url, state.admin_base_url = base, True
            if isinstance(key, str) and key:
                state.api_key, state.key_source = key, "admin"
            _prepare(provider, state)

    def _state(self, provider: str) -> ProviderState:
        state = self._states.get(provider)
        if state is None:
            raise ProviderNotFoundError(provider)
        return state

    async def configure(self, provider: str, changes: dict[str, Any]) -> dict[str, Any]:
        """The admin sets a base URL and/or a key (``apiKey: null`` clears the admin's)."""
        state = self._state(provider)
        for name in changes:
            if name not in ("baseUrl", "apiKey"):
                raise InvalidFieldError(name, "only baseUrl and apiKey can be set")
        base = changes.get("baseUrl", state.base_url if state.admin_base_url else None)
        if base is not None:
            if not isinstance(base, str):
                raise InvalidFieldError("baseUrl", "must be an http:// or https:// URL")
            try:
                base = normalize_endpoint(base)
            except EndpointError as exc:
                raise InvalidFieldError("baseUrl", str(exc)) from exc
        key = changes.get("apiKey", state.api_key if state.key_source == "admin" else None)
        if key is not None and (not isinstance(key, str) or not key.strip()
                                or len(key) > MAX_KEY_CHARS or not key.isascii()
                                or not key.isprintable()):
            raise InvalidFieldError("apiKey",
                                    f"a key of 1-{MAX_KEY_CHARS} printable ASCII characters")
        fresh = self._from_environment(provider)
        if base is not None:
            fresh.base_url, fresh.admin_base_url = base, True
        if key is not None:
            fresh.api_key, fresh.key_source = key.strip(), "admin"
        _prepare(provider, fresh)
        if self._store is not None:
            stored: dict[str, Any] = {}
            if base is not None:
                stored["baseUrl"] = base
            if key is not None:
                stored["apiKey"] = key.strip()
            await self._store.save_setting(PROVIDER_PREFIX + provider, stored)
        self._states[provider] = fresh
        return self.describe(provider)

    def describe(self, provider: str) -> dict[str, Any]:
        """What the API shows: never the key itself."""
        state = self._state(provider)
        return {"id": provider, "baseUrl": state.base_url, "hasKey": state.api_key is not None,
                "keySource": state.key_source, "healthy": self.is_healthy(provider),
                "lastOkAt": state.last_ok_ms, "lastError": state.last_error}

    def configured(self, provider: str) -> bool:
        """Local servers need no key; cloud providers are useless without one."""
        state = self._state(provider)
        return provider == LOCAL_PROVIDER or state.api_key is not None

    def is_healthy(self, provider: str) -> bool:
        state = self._state(provider)
        if state.last_ok_ms is None or not self.configured(provider):
            return False
        if state.last_failure_ms is not None and state.last_failure_ms > state.last_ok_ms:
            return False
        return _now_ms() - state.last_ok_ms <= self.healthy_window_s * 1000

    def is_usable(self, provider: str) -> bool:
        """Worth a try: configured, and its last contact (if any) did not fail."""
        state = self._states.get(provider)
        if state is None or not self.configured(provider):
            return False
        return state.last_failure_ms is None or (
            state.last_ok_ms is not None and state.last_ok_ms >= state.last_failure_ms)

    def chat_target(self, provider: str) -> tuple[Target, str]:
        """Where to POST chats, and the header lines (the key) that go with them."""
        state = self._state(provider)
        if state.chat_target is None:
            raise UpstreamError(f"{provider}'s base URL is not a valid URL")
        return state.chat_target, state.auth_header

    def redacting(self, provider: str, upstream: ModelResponse) -> ModelResponse:
        """``upstream`` with the provider's key blanked out of all it sends back."""
        key = self._state(provider).api_key
        return RedactedResponse(upstream, key.encode()) if key else upstream

    def record_ok(self, provider: str) -> None:
        state = self._states.get(provider)
        if state is not None:
            state.last_ok_ms, state.last_error = _now_ms(), None

    def record_failure(self, provider: str, reason: str) -> None:
        state = self._states.get(provider)
        if state is not None:
            state.last_failure_ms, state.last_error = _now_ms(), reason[:300]

    async def probe(self, provider: str) -> bool:
        """Ask for the provider's model list; record the outcome."""
        state = self._state(provider)
        if not self.configured(provider):
            return False
        try:
            target = Target.parse(openai_models_url(normalize_endpoint(state.base_url)))
            response = await self._pool.send("GET", target, b"", PROBE_TIMEOUT_S,
                                             on_hub_machine=True,
                                             extra_headers=state.auth_header)
            try:
                await response.read(PROBE_TIMEOUT_S, MAX_PROBE_BODY_BYTES)
                status = response.status
            finally:
                response.release()
        except (UpstreamError, OSError, ValueError, TimeoutError) as exc:  # EndpointError too.
            self.record_failure(provider, f"model list: {exc}")
            return False
        if status >= 400:
            self.record_failure(provider, f"model list answered {status}")
            return False
        self.record_ok(provider)
        return True

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(p) for p in DIRECT_PROVIDERS if self.configured(p)))

    async def probe_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.probe_all()
            await asyncio.sleep(self.probe_interval_s)


def _prepare(provider: str, state: ProviderState) -> None:
    """Parse the chat URL once and build the key's header line once."""
    try:
        state.chat_target = Target.parse(chat_completions_url(normalize_endpoint(state.base_url)))
    except (EndpointError, ValueError):
        log.warning("%s's base URL is not a valid http(s) URL; its models are skipped",
                    provider)
        state.chat_target = None
    key = state.api_key
    state.auth_header = f"Authorization: Bearer {key}\r\n" if key else ""


def _now_ms() -> int:
    return int(time.time() * 1000)
