"""The gateway's configuration block (seed 002's ``configuration``), checked field by field.

Stored as the JSON the API shows, so ``GET /v1/config``, ``/health`` and the database agree
byte for byte. Seed defaults, except two: ``enableAutoEscalate`` is on (the original never
escalated, which is what users complained about) and ``maxEscalationLayer`` is ``L3``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from gambiarra_desktop.gateway.errors import InvalidFieldError
from gambiarra_desktop.gateway.layers import LAYERS, Layer, is_layer

LOG_LEVELS = ("debug", "info", "warn", "error")
MAX_COST_ALERT_USD = 1_000_000.0
MAX_RETENTION_DAYS = 3650


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    logLevel: str = "info"  # noqa: N815 - the seed's JSON names, shown as they are.
    defaultLayer: Layer = "L0"  # noqa: N815
    enableCrossCheck: bool = True  # noqa: N815
    enableAutoEscalate: bool = True  # noqa: N815
    maxEscalationLayer: Layer = "L3"  # noqa: N815
    enableCostTracking: bool = True  # noqa: N815
    costAlertThreshold: float = 1.0  # noqa: N815
    usageRetentionDays: int = 90  # noqa: N815 - how long the usage ledger keeps its rows.

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: dict[str, Any]) -> GatewaySettings:
        """A copy with ``changes`` applied; :class:`InvalidFieldError` names the first bad
        field, and nothing changes unless every field is good."""
        known = set(self.__dataclass_fields__)
        for name in changes:
            if name not in known:
                raise InvalidFieldError(name, f"unknown setting; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            values[name] = _checked(name, value)
        return replace(self, **values)


def _checked(name: str, value: Any) -> Any:
    if name == "logLevel":
        if value not in LOG_LEVELS:
            raise InvalidFieldError(name, f"must be one of {', '.join(LOG_LEVELS)}")
        return value
    if name in ("defaultLayer", "maxEscalationLayer"):
        if not is_layer(value):
            raise InvalidFieldError(name, f"must be one of {', '.join(LAYERS)}")
        return value
    if name == "costAlertThreshold":
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or not 0 <= value <= MAX_COST_ALERT_USD):
            raise InvalidFieldError(name, f"must be a number from 0 to {MAX_COST_ALERT_USD:g}")
        return float(value)
    if name == "usageRetentionDays":
        if (isinstance(value, bool) or not isinstance(value, int)
                or not 1 <= value <= MAX_RETENTION_DAYS):
            raise InvalidFieldError(name, f"must be a whole number of days from 1 to"
                                          f" {MAX_RETENTION_DAYS}")
        return value
    if not isinstance(value, bool):
        raise InvalidFieldError(name, "must be true or false")
    return value


def settings_from_json(stored: dict[str, Any] | None) -> GatewaySettings:
    """Stored settings; a field that no longer checks out keeps its default."""
    settings = GatewaySettings()
    for name, value in (stored or {}).items():
        try:
            settings = settings.updated({name: value})
        except InvalidFieldError:
            continue
    return settings
