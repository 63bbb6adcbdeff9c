"""Chats with the providers the gateway dials itself: a local server or a cloud API.

The same pooled HTTP client and stream relay as the room proxy, plus what a provider
needs: its API key in ``Authorization`` (added here, after the client's request was
read, so a client never sees or sets it), and its health recorded from every answer.
What a provider sends back is passed on with the key blanked out (``key_redaction.py``):
some APIs quote a wrong key in their errors, and an echoing proxy quotes any header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gambiarra_desktop.gateway.model_entries import ModelConfig
from gambiarra_desktop.gateway.providers import Providers
from gambiarra_desktop.hub.api.responses import dump_json
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.errors import ProxyFailedError
from gambiarra_desktop.hub.proxy.forward import ChatProxy
from gambiarra_desktop.hub.proxy.stream_relay import (
    EVENT_STREAM,
    EmptyAnswerError,
    relay_stream,
)
from gambiarra_desktop.hub.proxy.upstream_client import UpstreamError

PROVIDER_FAULT_STATUSES = frozenset({401, 403, 408, 429})
"""4xx answers that are the provider's problem (its key, its limits), not the request's."""


def _ignore(_chunk: bytes) -> None:
    return None


class ProviderRelay:
    def __init__(self, config: HubConfig, providers: Providers, proxy: ChatProxy) -> None:
        self._config = config
        self._providers = providers
        self._proxy = proxy  # Its pool and hop header (the server sets the hub's id later).

    async def send(self, request: web.Request, model: ModelConfig, body: dict[str, Any],
                   headers: Mapping[str, str], whole: bool) -> web.StreamResponse:
        """The provider's answer: streamed to the client (prepared), or whole and unsent.
        Raises :class:`ProxyFailedError` when it failed before any byte was sent."""
        provider = model.provider
        try:
            target, auth = self._providers.chat_target(provider)
        except UpstreamError as exc:
            raise ProxyFailedError(str(exc)) from exc
        hop = self._proxy.hops.outgoing(request.headers.getall("Via", []))
        payload = dump_json({**body, "model": model.apiModelName})
        config = self._config
        try:
            raw = await self._proxy.pool.post(
                target, payload, config.upstream_first_byte_timeout_s, on_hub_machine=True,
                extra_headers=auth + hop)
        except UpstreamError as exc:
            self._providers.record_failure(provider, str(exc))
            raise ProxyFailedError(f"{provider}: {exc}") from exc
        upstream = self._providers.redacting(provider, raw)  # Answers and errors alike.
        try:
            content_type = upstream.header("Content-Type") or ""
            if not whole and upstream.status < 300 and (
                    body.get("stream") is True or content_type.startswith(EVENT_STREAM)):
                try:
                    response, broken = await relay_stream(
                        request, upstream, headers, config.upstream_idle_timeout_s, _ignore,
                        require_content=True)
                except UpstreamError as exc:
                    if not isinstance(exc, EmptyAnswerError):  # It answered: it is up.
                        self._providers.record_failure(provider, str(exc))
                    raise ProxyFailedError(f"{provider}: {exc}") from exc
                if broken is None:
                    self._providers.record_ok(provider)
                else:
                    self._providers.record_failure(provider, broken)
                return response
            try:
                data = await upstream.read(config.upstream_idle_timeout_s,
                                           config.max_upstream_body_bytes)
            except UpstreamError as exc:
                self._providers.record_failure(provider, str(exc))
                raise ProxyFailedError(f"{provider}: {exc}") from exc
            status = upstream.status
            if status >= 500 or status in PROVIDER_FAULT_STATUSES:
                self._providers.record_failure(provider, f"answered {status}")
            else:
                self._providers.record_ok(provider)
            response = web.Response(body=data, status=status, headers=headers)
            if content_type:
                response.headers["Content-Type"] = content_type
            return response
        except BaseException:
            upstream.close()  # Client gone or hub stopping: the provider stops generating.
            raise
        finally:
            upstream.release()
