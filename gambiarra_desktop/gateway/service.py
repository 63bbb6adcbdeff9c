"""One hub's gateway: its stores, accounts, providers, models and chat path, built once
per app (no globals) and opened and closed with the hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from gambiarra_desktop.gateway.accounts import AdminAccounts
from gambiarra_desktop.gateway.completions import GatewayChat
from gambiarra_desktop.gateway.layers import LAYERS
from gambiarra_desktop.gateway.model_entries import PROVIDERS, ROOM_PROVIDER
from gambiarra_desktop.gateway.provider_relay import ProviderRelay
from gambiarra_desktop.gateway.providers import DIRECT_PROVIDERS, Providers
from gambiarra_desktop.gateway.registry import ModelRegistry
from gambiarra_desktop.gateway.settings import GatewaySettings, settings_from_json
from gambiarra_desktop.gateway.store import CONFIGURATION, GatewayStore
from gambiarra_desktop.gateway.tokens import TokenSigner, load_or_create_signing_key
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.proxy.forward import ChatProxy
from gambiarra_desktop.hub.proxy.stats import StatsBook
from gambiarra_desktop.hub.proxy.tunnel import TunnelHub
from gambiarra_desktop.hub.rooms.lifecycle import RoomRegistry
from gambiarra_desktop.hub.rooms.store import Store

log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, config: HubConfig, store: Store, data_dir: Path | None,
                 rooms: RoomRegistry, proxy: ChatProxy, tunnels: TunnelHub,
                 stats: StatsBook) -> None:
        self._data_dir = data_dir
        self._config = config
        self.store = GatewayStore(store)
        self.models = ModelRegistry(self.store)
        self.providers = Providers(self.store, proxy.pool, config.gateway_probe_interval_s)
        self.accounts: AdminAccounts | None = None
        """Made at :meth:`open`: the signing key is read from (or written to) the data dir."""
        self.settings = GatewaySettings()
        self.database_ok = False
        self._rooms = rooms
        relay = ProviderRelay(config, self.providers, proxy)
        self.chat = GatewayChat(self.models, relay, proxy, rooms, tunnels, stats,
                                lambda: self.settings, self.providers.is_usable)
        self._prober: asyncio.Task[None] | None = None
        self.redis_answering: Callable[[], bool] = lambda: False
        """``/health``'s ``redis``: the app points it at the rate limiter's cached PING
        result, so health costs no round trip (memory counters: always false)."""

    async def open(self) -> None:
        await self.store.open()
        self.settings = settings_from_json(await self.store.load_setting(CONFIGURATION))
        await self.models.load()
        await self.providers.load()
        key = await asyncio.to_thread(load_or_create_signing_key, self._data_dir)
        self.accounts = AdminAccounts(self.store, TokenSigner(key), self._data_dir,
                                      self._config.login_max_failures,
                                      self._config.login_failure_window_s)
        await self.accounts.bootstrap()
        self.database_ok = True
        self._prober = asyncio.create_task(self.providers.probe_forever(),
                                           name="gambiarra-provider-probe")

    async def close(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober

    async def update_settings(self, changes: dict[str, Any]) -> GatewaySettings:
        updated = self.settings.updated(changes)
        previous, self.settings = self.settings, updated
        try:
            await self.store.save_setting(CONFIGURATION, updated.to_json())
        except BaseException:
            if self.settings is updated:
                self.settings = previous
            raise
        return updated

    def room_provider_healthy(self) -> bool:
        """Some room entry has a participant online that serves its model."""
        return any(self.chat.load(m) is not None for m in self.models.models
                   if m.provider == ROOM_PROVIDER)

    def provider_health(self) -> dict[str, bool]:
        health = {p: self.providers.is_healthy(p) for p in DIRECT_PROVIDERS}
        health[ROOM_PROVIDER] = self.room_provider_healthy()
        return {p: health[p] for p in sorted(PROVIDERS, key=_seed_order)}

    def health(self) -> dict[str, Any]:
        """Seed 002's ``/health`` fields (the hub adds ``status`` and ``timestamp``)."""
        providers = self.provider_health()
        layers = {layer: {"enabled": any(m.enabled for m in self.models.models
                                         if m.layer == layer),
                          "models": [m.id for m in self.models.models if m.layer == layer]}
                  for layer in LAYERS}
        return {"redis": self.redis_answering(), "database": self.database_ok,
                "providers": providers,
                "healthyProviders": [p for p, ok in providers.items() if ok],
                "layers": layers, "configuration": self.settings.to_json()}


def _seed_order(provider: str) -> int:
    order = ("openai", "anthropic", "openrouter", "oss-local", ROOM_PROVIDER)
    return order.index(provider) if provider in order else len(order)


GATEWAY = web.AppKey("gateway", Gateway)
