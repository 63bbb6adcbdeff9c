"""Checks on request fields, each failing with a clear 400 in the seed's error format."""

from __future__ import annotations

from typing import Any, cast

import orjson

from gambiarra_desktop.accounting.api_keys import KEY_PREFIX, looks_like_key
from gambiarra_desktop.hub.api.responses import ApiError
from gambiarra_desktop.hub.proxy.endpoint_policy import (
    EndpointError,
    EndpointPolicy,
    normalize_endpoint,
)
from gambiarra_desktop.protocol import (
    ANY_MODEL_ALIASES,
    MAX_CONCURRENT,
    MODEL_PREFIX,
    ErrorText,
    Transport,
)

MAX_LENGTHS = {
    "id": 200,
    "nickname": 100,
    "model": 256,
    "endpoint": 2048,
    "name": 100,
    "password": 1024,
}
JOIN_REQUIRED = ("id", "nickname", "model", "endpoint")
MAX_OBJECT_BYTES = {"specs": 16 * 1024, "config": 16 * 1024}
"""Serialized size caps: a participant's specs and config are copied into every event,
every ``/participants`` reply and the store, so a large one multiplies (8 MB of specs
once froze the hub for 10 s and took 2.5 GB with 300 event listeners)."""
_BIDI_CONTROLS = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))


def has_control_characters(value: str) -> bool:
    """C0, DEL, C1 and the Unicode bidi overrides: they can rewrite what a terminal or a
    page shows (escape sequences, reversed text) when the value is printed."""
    return any(
        (code := ord(c)) < 32 or 127 <= code <= 159 or code in _BIDI_CONTROLS for c in value
    )


def optional_string(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"Invalid field: {field} must be a string")
    limit = MAX_LENGTHS.get(field)
    if limit is not None and len(value) > limit:
        raise ApiError(400, f"Invalid field: {field} is too long (max {limit} characters)")
    return value


def optional_object(body: dict[str, Any], field: str) -> dict[str, Any]:
    value = body.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"Invalid field: {field} must be an object")
    limit = MAX_OBJECT_BYTES.get(field)
    if limit is not None:
        try:
            size = len(orjson.dumps(value))
        except orjson.JSONEncodeError as exc:  # Only an over-deep value; the door stops those.
            raise ApiError(400, f"Invalid field: {field} cannot be stored") from exc
        if size > limit:
            raise ApiError(400, f"Invalid field: {field} is too large (max {limit} bytes)")
    return value


def transport(body: dict[str, Any]) -> Transport:
    value = body.get("transport", "direct")
    if value not in ("direct", "tunnel"):
        raise ApiError(400, 'Invalid field: transport must be "direct" or "tunnel"')
    return cast(Transport, value)


def join_fields(body: dict[str, Any]) -> dict[str, str]:
    """The four required join fields, as the seed demands them, with the endpoint
    normalized (IDNA, percent-encoding)."""
    if not all(body.get(field) for field in JOIN_REQUIRED):
        raise ApiError(400, ErrorText.MISSING_JOIN_FIELDS)
    fields = {field: optional_string(body, field) or "" for field in JOIN_REQUIRED}
    if not all(value.strip() for value in fields.values()):
        raise ApiError(400, ErrorText.MISSING_JOIN_FIELDS)
    for field, value in fields.items():
        if has_control_characters(value):
            # They end up in headers, logs, terminals and metrics labels.
            raise ApiError(400, f"Invalid field: {field} must not contain control characters")
    if fields["id"] in ANY_MODEL_ALIASES or fields["id"].startswith(MODEL_PREFIX):
        # A request's model names a participant by id first: such an id would take every
        # request for any model, or for one model by name, from the people serving it.
        raise ApiError(400, 'Invalid field: id must not be "*" or "any", or start with'
                            ' "model:" (a request\'s model field uses those)')
    try:
        fields["endpoint"] = normalize_endpoint(fields["endpoint"])
    except EndpointError as exc:
        raise ApiError(400, str(exc)) from exc
    return fields


async def check_endpoint(
    endpoint: str, joined_from: str | None, via_tunnel: bool, policy: EndpointPolicy,
) -> None:
    """The endpoint against the hub's policy, as early feedback at join (the connect step
    checks the address it dials again). It may resolve a name, so the join route calls it
    only after the password check. A tunnel participant's endpoint is only ever dialed by
    the participant itself, so it may be its localhost."""
    if via_tunnel:
        return
    refusal = await policy.join_refusal(endpoint, joined_from)
    if refusal is not None:
        raise ApiError(400, refusal)




def max_concurrent(config: dict[str, Any]) -> int | None:
    """``config.maxConcurrent``: how many requests the participant serves at once; None
    when it does not say (original Gambiarra clients): the hub then learns it."""
    value = config.get("maxConcurrent")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not (
            1 <= value <= MAX_CONCURRENT):
        raise ApiError(400, "Invalid field: config.maxConcurrent must be a whole number"
                            f" from 1 to {MAX_CONCURRENT}")
    return value


def room_name(body: dict[str, Any]) -> str:
    name = optional_string(body, "name")
    if name is None or not name.strip():
        raise ApiError(400, ErrorText.NAME_REQUIRED)
    if has_control_characters(name):
        # `gambiarra list` and every room list print the name.
        raise ApiError(400, "Invalid field: name must not contain control characters")
    return name.strip()


def room_password(body: dict[str, Any]) -> str | None:
    """A new room's password. One starting ``gk-`` is refused: a ``gk-`` bearer is always
    read as an API key, so such a room could never be opened with its own password (401
    "Invalid API key" on every route but join)."""
    password = optional_string(body, "password")
    if password is not None and looks_like_key(password):
        raise ApiError(400, f"Invalid field: password must not start with {KEY_PREFIX}"
                            " (that prefix marks API keys)")
    return password


def requested_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None or model == "":
        raise ApiError(400, "Missing required field: model")
    if not isinstance(model, str):
        raise ApiError(400, "Invalid field: model must be a string")
    return model
