"""Usage and API keys in words and numbers, for the desktop app's Usage page and the CLI.

Pure functions over the hub's JSON (``/v1/keys``, ``/v1/usage``, participant usage), so
both front-ends show the same words and the tests check them without Qt or a network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DAY_MS = 86_400_000
PERIODS: dict[str, tuple[str, int]] = {
    "today": ("Today", 1), "7d": ("Last 7 days", 7), "30d": ("Last 30 days", 30)}
"""Picker value -> (label, whole UTC days counted back, today included)."""
KEY_COLUMNS = ["Name", "Prefix", "Limits", "Budget", "Usage", "Created", "Revoked"]
SERVED_COLUMNS = ["Person", "Requests", "Tokens"]
MAX_BARS = 12
"""Bars per person/model chart: more would be unreadable; the rest sum into "others"."""
MAX_KEY_NAME = 64


@dataclass(frozen=True)
class Series:
    """One chart's bars: a label per bar, with its tokens and its cost."""

    labels: list[str]
    tokens: list[int]
    cost: list[float]


def period_range(period: str, now_ms: int) -> tuple[int, int]:
    """``(from_ms, to_ms)`` of a picker choice: whole UTC days, today's included, to now."""
    days = PERIODS[period][1]
    midnight = now_ms - now_ms % DAY_MS
    return midnight - (days - 1) * DAY_MS, now_ms


def days_between(from_ms: int, to_ms: int) -> list[str]:
    """Every UTC day (``YYYY-MM-DD``) from ``from_ms`` to ``to_ms``, both included."""
    first = datetime.fromtimestamp(from_ms / 1000, UTC).date()
    last = datetime.fromtimestamp(to_ms / 1000, UTC).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def total_tokens(row: dict[str, Any]) -> int:
    total = row.get("totalTokens")
    if isinstance(total, int | float):
        return int(total)
    return int(row.get("promptTokens") or 0) + int(row.get("completionTokens") or 0)


def day_series(rows: Iterable[dict[str, Any]], days: list[str]) -> Series:
    """One bar per day of the period, zero where the ledger has nothing: a quiet day shows
    as a gap, not as a missing day."""
    tokens = dict.fromkeys(days, 0)
    cost = dict.fromkeys(days, 0.0)
    for row in rows:
        day = str(row.get("day") or "")[:10]
        if day in tokens:
            tokens[day] += total_tokens(row)
            cost[day] += float(row.get("cost") or 0)
    return Series([d[5:] for d in days], list(tokens.values()), list(cost.values()))


def person_label(row: dict[str, Any]) -> str:
    """A key's name, else the client's address (keyless requests are counted by it)."""
    return str(row.get("key") or row.get("address") or "unknown")


def model_label(row: dict[str, Any]) -> str:
    return str(row.get("model") or "unknown")


def group_series(rows: Iterable[dict[str, Any]], label: Callable[[dict[str, Any]], str],
                 limit: int = MAX_BARS) -> Series:
    """Bars per label, busiest first; past ``limit`` the rest are summed as "others"."""
    tokens: dict[str, int] = {}
    cost: dict[str, float] = {}
    for row in rows:
        name = label(row)
        tokens[name] = tokens.get(name, 0) + total_tokens(row)
        cost[name] = cost.get(name, 0.0) + float(row.get("cost") or 0)
    order = sorted(tokens, key=lambda n: (-tokens[n], n))
    if len(order) > limit:
        kept, rest = order[:limit - 1], order[limit - 1:]
        tokens["others"] = sum(tokens[n] for n in rest)
        cost["others"] = sum(cost[n] for n in rest)
        order = [*kept, "others"]
    return Series(order, [tokens[n] for n in order], [cost[n] for n in order])


def money(amount: float | None) -> str:
    """Dollars: cents for sums people budget with, four places for the tiny ones."""
    if amount is None:
        return "—"
    if amount != 0 and abs(amount) < 0.01:
        return f"${amount:.4f}"
    return f"${amount:,.2f}"


def count(n: float | None) -> str:
    return "—" if n is None else f"{int(n):,}"


def date_text(epoch_ms: Any) -> str:
    if not isinstance(epoch_ms, int | float) or epoch_ms <= 0:
        return "—"
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def limits_text(key: dict[str, Any]) -> str:
    parts = []
    if key.get("rpm"):
        parts.append(f"{count(key['rpm'])} req/min")
    if key.get("tpm"):
        parts.append(f"{count(key['tpm'])} tokens/min")
    if key.get("rooms"):
        parts.append("rooms " + ", ".join(str(r) for r in key["rooms"]))
    if key.get("priority"):
        parts.append(f"priority {key['priority']}")
    return " · ".join(parts) or "hub defaults"


def budget_text(key: dict[str, Any]) -> str:
    if key.get("budget") is None:
        return "no budget"
    period = key.get("budgetPeriod") or "month"
    spent = (key.get("usage") or {}).get("periodCost")
    spent_text = f"{money(spent)} of " if isinstance(spent, int | float) else ""
    return f"{spent_text}{money(key['budget'])} per {period}"


def key_usage_text(key: dict[str, Any]) -> str:
    usage = key.get("usage") or {}
    requests = int(usage.get("requests") or 0)
    tokens = int(usage.get("promptTokens") or 0) + int(usage.get("completionTokens") or 0)
    plural = "" if requests == 1 else "s"
    return f"{requests:,} request{plural} · {tokens:,} tokens · {money(usage.get('cost') or 0)}"


def key_row(key: dict[str, Any]) -> list[str]:
    """One row of the keys table (:data:`KEY_COLUMNS`): never the key's secret, which
    the list does not carry anyway; the prefix is enough to recognise a key."""
    return [str(key.get("name", "")), str(key.get("prefix") or f"gk-{key.get('id', '')}"),
            limits_text(key), budget_text(key), key_usage_text(key),
            date_text(key.get("createdAt")), "revoked" if key.get("revoked") else ""]


def served_row(person: dict[str, Any]) -> list[str]:
    """One row of "served by me" (:data:`SERVED_COLUMNS`)."""
    tokens = int(person.get("promptTokens") or 0) + int(person.get("completionTokens") or 0)
    return [str(person.get("person") or "unknown"), count(person.get("requests") or 0),
            count(tokens)]


def cost_alert_text(data: dict[str, Any]) -> str:
    day = data.get("day") or "today"
    return (f"The gateway's cost on {day} reached {money(_number(data.get('cost')))},"
            f" past the alert threshold of {money(_number(data.get('threshold')))}.")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def optional_int(text: str, field: str, low: int = 1, high: int = 10**9) -> int | None:
    """A typed number or nothing; words say what is wrong, as the hub would."""
    text = text.strip().replace(",", "").replace("_", "")
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{field}: a whole number, or empty for none") from None
    if not low <= value <= high:
        raise ValueError(f"{field}: between {low:,} and {high:,}, or empty for none")
    return value


def optional_money(text: str, field: str, high: float = 1e6) -> float | None:
    text = text.strip().lstrip("$").replace(",", "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{field}: an amount in US dollars, or empty for none") from None
    if not math.isfinite(value) or not 0 <= value <= high:
        raise ValueError(f"{field}: between $0 and ${high:,.0f}, or empty for none")
    return value


def room_codes(text: str) -> list[str]:
    """``"abc123, XYZ789"`` -> ``["ABC123", "XYZ789"]``: the hub checks they exist."""
    return [code.strip().upper() for code in text.replace(";", ",").split(",")
            if code.strip()]


def key_request(name: str, rpm: str, tpm: str, budget: str, period: str, rooms: str,
                priority: int) -> dict[str, Any]:
    """The create dialog's fields as :meth:`GatewayClient.create_key` arguments, or a
    ``ValueError`` in words before anything is sent."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_KEY_NAME:
        raise ValueError(f"Name: 1 to {MAX_KEY_NAME} characters")
    return {"name": name, "rpm": optional_int(rpm, "Requests per minute"),
            "tpm": optional_int(tpm, "Tokens per minute"),
            "budget": optional_money(budget, "Budget"), "budget_period": period,
            "rooms": room_codes(rooms) or None, "priority": priority}


def table_lines(rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell, for a terminal."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            .rstrip() for row in rows]


USAGE_GROUP_LABEL: dict[str, Callable[[dict[str, Any]], str]] = {
    "key": person_label, "model": model_label,
    "participant": lambda row: str(row.get("participant") or "—"),
    "room": lambda row: str(row.get("room") or "gateway"),
    "day": lambda row: str(row.get("day") or "—"),
}


def usage_rows(rows: list[dict[str, Any]], group_by: str) -> list[list[str]]:
    """``gambiarra usage``: a header and one line per group."""
    label = USAGE_GROUP_LABEL.get(group_by, person_label)
    header = [group_by, "requests", "errors", "prompt", "completion", "cost"]
    return [header] + [[label(r), count(r.get("requests") or 0), count(r.get("errors") or 0),
                        count(r.get("promptTokens") or 0),
                        count(r.get("completionTokens") or 0), money(r.get("cost") or 0)]
                       for r in rows]
