"""The ``auto`` decision: which model entries to try, in which order. A plain function of
(request needs, model registry, availability and load, settings), so tests call it with
no sockets and the hot path pays for a short sort of a short list.

Rules, in order:
- Start at the configured ``defaultLayer``, or the request's ``layer``.
- Needs the request states plainly can push the start higher: tools or images that no
  entry of a lower layer supports, or a prompt longer than a lower entry's context. The
  prompt's *text* never steers routing (a prompt saying "use the big model" routes the
  same as any other).
- Within a layer: enabled and available entries, lowest ``priority`` first, ties by lower
  ``relativeCost``, then by the lighter load (a room's busy share), then by id.
- With ``enableAutoEscalate`` the plan goes on to the next layers up to
  ``maxEscalationLayer``: a failure before the first byte moves down the list. Without it,
  the plan is the first usable layer's entries only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gambiarra_desktop.gateway.errors import NoModelAvailableError
from gambiarra_desktop.gateway.layers import LAYER_INDEX, LAYERS, Layer
from gambiarra_desktop.gateway.model_entries import ModelConfig

CHARS_PER_TOKEN = 4
"""A rough, cheap prompt size: only compared with context lengths, never billed."""


@dataclass(frozen=True, slots=True)
class Needs:
    tools: bool
    images: bool
    prompt_tokens: int


def needs_of(body: dict[str, Any]) -> Needs:
    """What the request asks of a model, from its structure (never its meaning)."""
    chars = 0
    images = False
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") in ("image_url", "input_image", "image"):
                    images = True
                text = part.get("text")
                if isinstance(text, str):
                    chars += len(text)
    tools = bool(body.get("tools")) or bool(body.get("functions"))
    return Needs(tools=tools, images=images, prompt_tokens=chars // CHARS_PER_TOKEN)


def fits(model: ModelConfig, needs: Needs) -> bool:
    if needs.tools and not model.supportsTools:
        return False
    if needs.images and not model.supportsVision:
        return False
    return model.contextLength is None or needs.prompt_tokens < model.contextLength


Load = Callable[[ModelConfig], float | None]
"""An entry's load from 0 (idle) upwards, or ``None`` when it cannot serve now."""


def plan_auto(
    needs: Needs, models: Iterable[ModelConfig], load: Load, start: Layer, max_layer: Layer,
    escalate: bool,
) -> list[ModelConfig]:
    """The entries to try, best first; :class:`NoModelAvailableError` when there is none."""
    first = LAYER_INDEX[start]
    last = max(first, LAYER_INDEX[max_layer])
    by_layer: list[list[tuple[tuple[int, float, float, str], ModelConfig]]] = [
        [] for _ in LAYERS]
    enabled_in_range = 0
    for model in models:
        index = LAYER_INDEX[model.layer]
        if not model.enabled or index < first:
            continue
        enabled_in_range += 1
        if not fits(model, needs):
            continue
        current = load(model)
        if current is None:
            continue
        by_layer[index].append(((model.priority, model.relativeCost, current, model.id), model))
    usable = [index for index in range(first, len(LAYERS)) if by_layer[index]]
    if not usable:
        raise NoModelAvailableError(_why_none(needs, start, enabled_in_range))
    begin = usable[0]  # Needs may push the start above the configured layer.
    end = max(begin, last) if escalate else begin
    plan: list[ModelConfig] = []
    for index in range(begin, end + 1):
        plan.extend(model for _key, model in sorted(by_layer[index], key=lambda kv: kv[0]))
    return plan


def _why_none(needs: Needs, start: Layer, enabled: int) -> str:
    if enabled == 0:
        return f"no enabled model in layer {start} or above; add one with POST /v1/models"
    wanted = [what for what, asked in (("tools", needs.tools), ("images", needs.images))
              if asked]
    if wanted:
        return (f"no enabled, reachable model from {start} up takes {' and '.join(wanted)}"
                " (supportsTools / supportsVision) and fits the prompt")
    return f"no enabled model from {start} up is reachable right now"


def entries_in_order(models: Sequence[ModelConfig]) -> list[ModelConfig]:
    return sorted(models, key=lambda m: m.order_key)
