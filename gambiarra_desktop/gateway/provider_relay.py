"""Chats with the providers the gateway dials itself: a local server or a cloud API.

The same pooled HTTP client and stream relay as the room proxy, plus what a provider
needs: its API key in ``Authorization`` (added here, after the client's request was
read, so a client never sees or sets it), and its health recorded from every answer.
What a provider sends back is passed on with the key blanked out (``key_redaction.py``):
some APIs quote a wrong key in their errors, and an echoing proxy quotes any header.
Every call, answered or not, adds one row to the usage ledger (tokens and cost).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gambiarra_desktop.accounting.caller import Caller, caller_of
from gambiarra_desktop.accounting.ledger import UsageLabel, row_of_call
from gambiarra_desktop.gateway.model_entries import ModelConfig
from gambiarra_desktop.gateway.providers import Providers
from gambiarra_desktop.hub.api.responses import dump_json
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.errors import ProxyFailedError
from gambiarra_desktop.hub.proxy.forward import ChatProxy
from gambiarra_desktop.hub.proxy.metrics import CompletionMeter
from gambiarra_desktop.hub.proxy.stream_relay import (
    EVENT_STREAM,
    EmptyAnswerError,
    relay_stream,
)
from gambiarra_desktop.hub.proxy.upstream_client import Target, UpstreamError

PROVIDER_FAULT_STATUSES = frozenset({401, 403, 408, 429})
"""4xx answers that are the provider's problem (its key, its limits), not the request's."""


def label_of(model: ModelConfig) -> UsageLabel:
    """How the ledger names and prices a call to this entry."""
    return UsageLabel(model.provider, model.id, model.layer, model.inputPricePer1k,
                      model.outputPricePer1k)


@dataclass(slots=True)
class _Call:
    meter: CompletionMeter
    status: int = 0
    """The provider's status once its answer arrived whole; 0 until then."""


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
        call = _Call(CompletionMeter())
        try:
            return await self._call(request, model, body, headers, whole, target,
                                    payload, auth + hop, call)
        finally:  # One row per call, answered or not, client gone or not.
            self._record_usage(request, model, body, call)

    def _record_usage(self, request: web.Request, model: ModelConfig, body: dict[str, Any],
                      call: _Call) -> None:
        ledger = self._proxy.ledger
        if ledger is None:
            return
        caller = caller_of(request) or Caller(request.remote or "")
        ledger.record(row_of_call(label_of(model), caller, call.meter, call.status, body,
                                  call.meter.reported_prompt_tokens()))

    async def _call(self, request: web.Request, model: ModelConfig, body: dict[str, Any],
                    headers: Mapping[str, str], whole: bool, target: Target, payload: bytes,
                    extra_headers: str, call: _Call) -> web.StreamResponse:
        provider = model.provider
        config = self._config
        try:
            raw = await self._proxy.pool.post(
                target, payload, config.upstream_first_byte_timeout_s, on_hub_machine=True,
                extra_headers=extra_headers)
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
                        request, upstream, headers, config.upstream_idle_timeout_s,
                        call.meter.on_chunk, require_content=True)
                except UpstreamError as exc:
                    if not isinstance(exc, EmptyAnswerError):  # It answered: it is up.
                        self._providers.record_failure(provider, str(exc))
                    raise ProxyFailedError(f"{provider}: {exc}") from exc
                if broken is None:
                    call.status = upstream.status
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
            status = call.status = upstream.status
            call.meter.on_body(data)
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
