"""A model entry of the gateway (seed 002's model configuration), checked field by field.

Every entry names a provider and the model's name there (``apiModelName``), sits in one
layer and carries what ``auto`` needs to choose without reading the prompt: priority,
relative cost, prices, context length, and whether it takes tools and images.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, fields, replace
from typing import Any

from gambiarra_desktop.gateway.errors import InvalidFieldError
from gambiarra_desktop.gateway.layers import LAYERS, Layer, is_layer
from gambiarra_desktop.hub.api.validation import has_control_characters
from gambiarra_desktop.protocol import ROOM_CODE_ALPHABET, ROOM_CODE_LENGTH

ROOM_PROVIDER = "gambiarra"
LOCAL_PROVIDER = "oss-local"
CLOUD_PROVIDERS = ("openai", "openrouter", "anthropic")
PROVIDERS = (ROOM_PROVIDER, LOCAL_PROVIDER, *CLOUD_PROVIDERS)
AUTO_MODEL = "auto"
RESERVED_IDS = frozenset({AUTO_MODEL, "layers"})
"""``auto`` routes; ``layers`` is the path ``GET /v1/models/layers``."""

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")
"""Ids go into URL paths (``/v1/models/{id}``): no slashes, spaces or percent signs."""
MAX_MODEL_NAME = 256
MAX_PRIORITY = 1_000_000
MAX_NUMBER = 1_000_000.0
MAX_CONTEXT = 100_000_000
MAX_MODELS = 1000
"""Entries per hub: the registry is sorted on every change and listed whole."""


@dataclass(frozen=True, slots=True)
class ModelConfig:
    id: str
    provider: str
    apiModelName: str  # noqa: N815 - the seed's JSON names, shown as they are.
    layer: Layer
    enabled: bool = True
    priority: int = 0
    relativeCost: float = 1.0  # noqa: N815
    room: str | None = None
    inputPricePer1k: float = 0.0  # noqa: N815
    outputPricePer1k: float = 0.0  # noqa: N815
    contextLength: int | None = None  # noqa: N815
    supportsTools: bool = True  # noqa: N815
    supportsVision: bool = False  # noqa: N815
    created: int = 0

    @property
    def priced(self) -> bool:
        """Costs money per token: needs a key at the root, counts against budgets."""
        return self.inputPricePer1k > 0 or self.outputPricePer1k > 0

    @property
    def order_key(self) -> tuple[int, int, float, str]:
        """Layer, then priority, then relative cost: the order ``auto`` tries entries in."""
        return (LAYERS.index(self.layer), self.priority, self.relativeCost, self.id)

    def to_json(self) -> dict[str, Any]:
        """The seed's fields, plus ``object``/``owned_by`` for the openai SDK's list."""
        data: dict[str, Any] = {
            "id": self.id, "object": "model", "created": self.created,
            "owned_by": self.provider, "provider": self.provider,
            "apiModelName": self.apiModelName, "layer": self.layer, "enabled": self.enabled,
            "priority": self.priority, "relativeCost": self.relativeCost,
            "inputPricePer1k": self.inputPricePer1k, "outputPricePer1k": self.outputPricePer1k,
            "contextLength": self.contextLength, "supportsTools": self.supportsTools,
            "supportsVision": self.supportsVision,
        }
        if self.room is not None:
            data["room"] = self.room
        return data

    def stored(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_FIELDS = {f.name for f in fields(ModelConfig)}
_READ_ONLY = {"created", "object", "owned_by"}


def new_model(body: dict[str, Any]) -> ModelConfig:
    """A new entry from a ``POST /v1/models`` body."""
    for name in ("id", "provider", "apiModelName", "layer"):
        if name not in body or body[name] is None:
            raise InvalidFieldError(name, "is required")
    model_id = body["id"]
    if not isinstance(model_id, str) or not _ID.fullmatch(model_id):
        raise InvalidFieldError("id", "1-128 letters, digits and . _ : @ + -, starting with a"
                                      " letter or digit")
    if model_id in RESERVED_IDS:
        raise InvalidFieldError("id", f"{model_id!r} is taken by the gateway itself")
    provider = body["provider"]
    if provider not in PROVIDERS:
        raise InvalidFieldError("provider", f"must be one of {', '.join(PROVIDERS)}")
    local = provider in (ROOM_PROVIDER, LOCAL_PROVIDER)
    base = ModelConfig(id=model_id, provider=provider, apiModelName="x", layer="L0",
                       relativeCost=0.0 if local else 1.0, created=int(time.time()))
    return updated_model(base, {k: v for k, v in body.items() if k not in ("id", "provider")},
                         creating=True)


def updated_model(model: ModelConfig, changes: dict[str, Any],
                  creating: bool = False) -> ModelConfig:
    """``model`` with ``changes`` (a ``PUT`` body) applied, every field checked first."""
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name in _READ_ONLY:
            continue
        if name in ("id", "provider") and not creating:
            if value == getattr(model, name):
                continue
            raise InvalidFieldError(name, "cannot be changed; delete the entry and add it again")
        if name not in _FIELDS:
            raise InvalidFieldError(name, "unknown field")
        values[name] = _checked(name, value)
    result = replace(model, **values)
    if result.provider == ROOM_PROVIDER and result.room is None:
        raise InvalidFieldError("room", "a gambiarra model names the room that serves it")
    if result.provider != ROOM_PROVIDER and result.room is not None:
        raise InvalidFieldError("room", "only gambiarra models name a room")
    return result


def _checked(name: str, value: Any) -> Any:
    if name == "apiModelName":
        if (not isinstance(value, str) or not value.strip() or len(value) > MAX_MODEL_NAME
                or has_control_characters(value)):
            raise InvalidFieldError(name, f"a model name of 1-{MAX_MODEL_NAME} characters")
        return value
    if name == "layer":
        if not is_layer(value):
            raise InvalidFieldError(name, f"must be one of {', '.join(LAYERS)}")
        return value
    if name in ("enabled", "supportsTools", "supportsVision"):
        if not isinstance(value, bool):
            raise InvalidFieldError(name, "must be true or false")
        return value
    if name == "priority":
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_PRIORITY:
            raise InvalidFieldError(name, f"a whole number from -{MAX_PRIORITY} to {MAX_PRIORITY}")
        return value
    if name in ("relativeCost", "inputPricePer1k", "outputPricePer1k"):
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or not 0 <= value <= MAX_NUMBER):
            raise InvalidFieldError(name, f"a number from 0 to {MAX_NUMBER:g}")
        return float(value)
    if name == "contextLength":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_CONTEXT:
            raise InvalidFieldError(name, f"a whole number of tokens from 1 to {MAX_CONTEXT}")
        return value
    if name == "room":
        if value is None:
            return None
        if (not isinstance(value, str) or len(value) != ROOM_CODE_LENGTH
                or any(c not in ROOM_CODE_ALPHABET for c in value.upper())):
            raise InvalidFieldError(name, f"a {ROOM_CODE_LENGTH}-character room code")
        return value.upper()
    raise InvalidFieldError(name, "unknown field")  # pragma: no cover - filtered before


def model_from_stored(data: dict[str, Any]) -> ModelConfig | None:
    """A stored entry, or ``None`` when it no longer checks out (skipped with a warning)."""
    try:
        base = new_model({k: data[k] for k in ("id", "provider", "apiModelName", "layer")})
        rest = {k: v for k, v in data.items() if k in _FIELDS and k not in ("id", "provider")}
        created = data.get("created")
        model = updated_model(base, {k: v for k, v in rest.items() if k != "created"},
                              creating=True)
        return replace(model, created=created if isinstance(created, int) else 0)
    except (InvalidFieldError, KeyError, TypeError):
        return None
