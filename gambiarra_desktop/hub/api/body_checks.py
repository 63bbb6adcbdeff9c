"""Checks on a request body made before it is parsed: its media type, its encoding and how
deeply its JSON nests.

Why at the door: a browser may send a ``text/plain`` or form POST cross-origin without a
preflight, so only JSON bodies are accepted and every cross-origin write needs one. A
compressed body is refused rather than inflated (a small zip bomb is a large allocation).
And JSON nested hundreds of levels deep parses fine but breaks every later step that
walks it (re-encoding it for events, for the store, for ``/participants``), so it is
refused before it is parsed or stored. The functions return the refusal's message, or
``None``: the caller turns that into the seed's error shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_JSON_DEPTH = 32
TOO_DEEP = f"JSON nested too deeply (limit {MAX_JSON_DEPTH} levels)"
NOT_JSON = "Content-Type must be application/json"
ENCODED = "Content-Encoding is not supported; send an uncompressed JSON body"

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
"""Methods whose body a handler may read; a cross-origin one must be JSON."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_INNERMOST_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or ``application/<something>+json``, given the media type in
    lower case without its parameters (such as the charset)."""
    kind, _, subtype = content_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def media_type_refusal(method: str, headers: Mapping[str, str]) -> str | None:
    """Why a request's declared body type is refused, if it is. The header is parsed here,
    not by aiohttp, whose parser raises on some malformed values (``;0*``)."""
    if method not in BODY_METHODS:
        return None
    media_type = headers.get("Content-Type", "").partition(";")[0].strip().lower()
    return None if is_json_media_type(media_type) else NOT_JSON


def encoding_refusal(headers: Mapping[str, str]) -> str | None:
    """Any ``Content-Encoding`` but ``identity`` is refused, for every method."""
    encodings = [e.strip().lower() for e in headers.get("Content-Encoding", "").split(",")]
    if any(e not in ("", "identity") for e in encodings):
        return ENCODED
    return None


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects more than ``limit`` levels deep.

    No recursion and no Python loop over the body's bytes: string literals are cut out
    (their brackets do not count), everything but brackets is dropped, then each round
    removes the innermost ``[]``/``{}`` pairs, one level a round. Text that still holds
    brackets after ``limit`` rounds is deeper than ``limit``. Malformed JSON gives some
    answer; the parser that runs next refuses it anyway.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # Too few openers to nest that deep: the common case, in O(n) C code.
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = _INNERMOST_PAIR.sub(b"", brackets)
    return bool(brackets)
