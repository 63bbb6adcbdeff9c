"""The gateway's model entries: in memory for every read, written through to SQLite.

Changes are checked and applied in memory with no ``await`` in between (two admins adding
the same id at once get one 201 and one 409), then stored; a write that fails is undone
in memory, so what the API shows is what a restart will load.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gambiarra_desktop.gateway.errors import (
    DuplicateModelError,
    InvalidFieldError,
    ModelNotFoundError,
)
from gambiarra_desktop.gateway.layers import LAYERS
from gambiarra_desktop.gateway.model_entries import (
    MAX_MODELS,
    ModelConfig,
    model_from_stored,
    new_model,
    updated_model,
)
from gambiarra_desktop.gateway.store import GatewayStore

log = logging.getLogger(__name__)

EntryCheck = Callable[[ModelConfig], Awaitable[None]]
"""A check that needs I/O (a room's password): run before the entry is applied."""


class ModelRegistry:
    def __init__(self, store: GatewayStore | None) -> None:
        self._store = store
        self._models: dict[str, ModelConfig] = {}
        self._ordered: tuple[ModelConfig, ...] = ()
        self.version = 0
        """Bumped on every change, so callers may cache what they derive from the list."""

    async def load(self) -> None:
        if self._store is None:
            return
        for data in await self._store.load_models():
            model = model_from_stored(data)
            if model is None:
                log.warning("Skipped a stored gateway model that no longer checks out: %.80r",
                            data.get("id"))
                continue
            self._models[model.id] = model
        self._changed()

    def _changed(self) -> None:
        self._ordered = tuple(sorted(self._models.values(), key=lambda m: m.order_key))
        self.version += 1

    @property
    def models(self) -> tuple[ModelConfig, ...]:
        """Every entry, by layer, priority, relative cost and id."""
        return self._ordered

    def get(self, model_id: str) -> ModelConfig | None:
        return self._models.get(model_id)

    def require(self, model_id: str) -> ModelConfig:
        model = self._models.get(model_id)
        if model is None:
            raise ModelNotFoundError(model_id)
        return model

    async def add(self, body: dict[str, Any], check: EntryCheck | None = None) -> ModelConfig:
        model = new_model(body)
        if check is not None:
            await check(model)
        if model.id in self._models:
            raise DuplicateModelError(model.id)
        if len(self._models) >= MAX_MODELS:
            raise InvalidFieldError("id", f"this hub already has {MAX_MODELS} model entries")
        self._models[model.id] = model
        self._changed()
        await self._write(model, previous=None)
        return model

    async def update(self, model_id: str, changes: dict[str, Any],
                     check: EntryCheck | None = None) -> ModelConfig:
        model = updated_model(self.require(model_id), changes)
        if check is not None:
            await check(model)
        previous = self.require(model_id)  # Again: it may have gone during the check.
        model = updated_model(previous, changes)
        self._models[model_id] = model
        self._changed()
        await self._write(model, previous)
        return model

    async def delete(self, model_id: str) -> None:
        previous = self.require(model_id)
        del self._models[model_id]
        self._changed()
        if self._store is None:
            return
        try:
            await self._store.delete_model(model_id)
        except BaseException:
            self._models.setdefault(model_id, previous)
            self._changed()
            raise

    async def _write(self, model: ModelConfig, previous: ModelConfig | None) -> None:
        if self._store is None:
            return
        try:
            await self._store.save_model(model.id, model.stored())
        except BaseException:
            if self._models.get(model.id) is model:  # Not changed again meanwhile.
                if previous is None:
                    del self._models[model.id]
                else:
                    self._models[model.id] = previous
                self._changed()
            raise

    def layers(self) -> dict[str, Any]:
        """Seed 002's ``GET /v1/models/layers`` shape."""
        layers: dict[str, Any] = {}
        for layer in LAYERS:
            entries = [m for m in self._ordered if m.layer == layer]
            layers[layer] = {
                "enabled": any(m.enabled for m in entries),
                "models": [{"id": m.id, "provider": m.provider, "apiModelName": m.apiModelName,
                            "enabled": m.enabled, "priority": m.priority} for m in entries],
                "providers": sorted({m.provider for m in entries}),
            }
        return layers
