"""How big a model is, and so which layer it starts in (issue 10's "Add this room's models").

A room's participants say only a model's name, and sometimes what their server reports
about it. The size decides the first layer: the issue's rule is ≤ 4B → L0, ≤ 14B → L1,
larger → L2, cloud models → L3. A size we cannot tell lands in L1, the middle, because a
guess of L0 would send hard requests to what may be a tiny model first, and L2 would skip
two cheap tiers. The admin can move any entry afterwards: this is only the first placement.

Pure functions, no I/O and no Qt, so the GUI and the tests call them directly.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from gambiarra_desktop.gateway.layers import Layer
from gambiarra_desktop.gateway.model_entries import CLOUD_PROVIDERS, ROOM_PROVIDER

SMALL_MAX_B = 4.0
MEDIUM_MAX_B = 14.0
MAX_PLAUSIBLE_B = 100_000.0
"""Anything larger is a misread number (a date, a context length), not a parameter count."""
MAX_ID_CHARS = 128

_UNITS = {"k": 1e-6, "m": 1e-3, "b": 1.0, "t": 1e3}
# "8x7b" (a mixture of experts: all weights count for memory and quality class).
_EXPERTS = re.compile(r"(?<![a-z0-9.])(\d+)x(\d+(?:\.\d+)?)([mbt])(?![a-z0-9])")
# "3b", "14B", "0.5b", "270m", "e4b" (Gemma 3n's effective size). Not "a3b" (active
# parameters of "qwen3-30b-a3b"): the letter before the number rules it out.
_PLAIN = re.compile(r"(?<![a-z0-9.])e?(\d+(?:\.\d+)?)([mbt])(?![a-z0-9])")
_SIZE_TEXT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmbt])?\s*", re.IGNORECASE)


def parameter_count_b(model_name: str, metadata: Mapping[str, Any] | None = None) -> float | None:
    """Billions of parameters, from the server's metadata when it says, else from the name.

    The metadata wins: "7.6B" from Ollama beats the "7b" in a name. Read keys:
    Ollama's ``details.parameter_size`` ("7.6B") and ``model_info["general.parameter_count"]``,
    llama.cpp's ``meta.n_params`` (a count), or the same keys at the top level.
    Returns ``None`` when neither tells ("phi-3-mini").
    """
    from_metadata = _from_metadata(metadata) if metadata else None
    if from_metadata is not None:
        return from_metadata
    return _from_name(model_name)


def _from_name(model_name: str) -> float | None:
    name = model_name.lower()
    sizes = [int(n) * float(each) * _UNITS[unit] for n, each, unit in _EXPERTS.findall(name)]
    if not sizes:
        sizes = [float(n) * _UNITS[unit] for n, unit in _PLAIN.findall(name)]
    sizes = [s for s in sizes if 0 < s <= MAX_PLAUSIBLE_B]
    return max(sizes) if sizes else None  # "llama-70b-draft-1b": the model is the 70B.


def _from_metadata(metadata: Mapping[str, Any]) -> float | None:
    places: list[Mapping[str, Any]] = [metadata]
    for key in ("details", "meta", "model_info"):
        inner = metadata.get(key)
        if isinstance(inner, Mapping):
            places.append(inner)
    for place in places:
        size = _size_text(place.get("parameter_size"))
        if size is not None:
            return size
        for key in ("n_params", "general.parameter_count", "parameter_count"):
            count = place.get(key)
            if (isinstance(count, int | float) and not isinstance(count, bool)
                    and math.isfinite(count) and 0 < count / 1e9 <= MAX_PLAUSIBLE_B):
                return count / 1e9
    return None


def _size_text(value: Any) -> float | None:
    """ "7.6B", "270M", "1.2T" or a bare "8" (billions) as billions."""
    if not isinstance(value, str):
        return None
    match = _SIZE_TEXT.fullmatch(value)
    if match is None:
        return None
    size = float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]
    return size if 0 < size <= MAX_PLAUSIBLE_B else None


def layer_for(params_b: float | None, provider: str) -> Layer:
    """The first layer for a model of ``params_b`` billions served by ``provider``."""
    if provider in CLOUD_PROVIDERS:
        return "L3"
    if params_b is None:
        return "L1"
    if params_b <= SMALL_MAX_B:
        return "L0"
    if params_b <= MEDIUM_MAX_B:
        return "L1"
    return "L2"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-.") or "model"


def room_entry_id(room_code: str, model_name: str) -> str:
    """``room-<code>-<slug>``: the same model of the same room always gets the same id, so
    adding a room's models twice finds the first ones already there. A slug cut to fit
    the id's 128 characters keeps a hash of the whole name, so two long names differ."""
    model_id = f"room-{room_code.lower()}-{_slug(model_name)}"
    if len(model_id) <= MAX_ID_CHARS:
        return model_id
    digest = hashlib.sha256(model_name.encode()).hexdigest()[:8]
    return f"{model_id[:MAX_ID_CHARS - 9].rstrip('-.')}-{digest}"


def room_entries(room_code: str,
                 models: Iterable[str | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Entries ready for ``POST /v1/models``, one per distinct model name of the room.

    ``models`` holds model names, or dicts with ``model`` (or ``name``/``id``) and optional
    ``metadata`` (what the participant's server said about it). Two names that make the
    same slug ("a:b" and "a-b") are told apart by a hash of the second name.
    """
    entries: list[dict[str, Any]] = []
    seen_names: set[str] = set()
    used_ids: set[str] = set()
    for item in models:
        metadata: Mapping[str, Any] | None = None
        if isinstance(item, str):
            name = item
        else:
            raw = item.get("model") or item.get("name") or item.get("id")
            name = raw if isinstance(raw, str) else ""
            meta = item.get("metadata")
            metadata = meta if isinstance(meta, Mapping) else None
        name = name.strip()
        if not name or name in seen_names:
            continue
        seen_names.add(name)
        model_id = room_entry_id(room_code, name)
        if model_id in used_ids:
            digest = hashlib.sha256(name.encode()).hexdigest()[:8]
            model_id = f"{model_id[:MAX_ID_CHARS - 9].rstrip('-.')}-{digest}"
        used_ids.add(model_id)
        entries.append({
            "id": model_id, "provider": ROOM_PROVIDER, "room": room_code.upper(),
            "apiModelName": name,
            "layer": layer_for(parameter_count_b(name, metadata), ROOM_PROVIDER),
        })
    return entries
