"""The four layers of seed 002: L0 is the cheapest, fastest tier; L3 the strongest."""

from __future__ import annotations

from typing import Literal, get_args

Layer = Literal["L0", "L1", "L2", "L3"]
LAYERS: tuple[Layer, ...] = get_args(Layer)
LAYER_INDEX: dict[str, int] = {name: index for index, name in enumerate(LAYERS)}


def is_layer(value: object) -> bool:
    return isinstance(value, str) and value in LAYER_INDEX
