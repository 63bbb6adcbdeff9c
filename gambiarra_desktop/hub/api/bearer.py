"""``Authorization: Bearer <value>``, read one way everywhere.

The same header carries a room password, a participant's tunnel token, the admin's token
and API keys (``gk-...``); one parser keeps every reader agreeing on what the value is
(scheme case-insensitive, surrounding blanks dropped, an empty value is no value)."""

from __future__ import annotations

from collections.abc import Mapping


def bearer_value(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None
