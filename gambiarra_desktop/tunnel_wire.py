"""Frames of the participant tunnel, shared by the hub and the participant agent.

One WebSocket carries many concurrent chat requests, told apart by a request id. Every
frame is binary and starts with a kind byte:

- ``C`` + JSON: a control message, ``{"type": ..., "id": ...}``:
  hub to agent ``request`` (with ``path`` and ``body``) and ``cancel``;
  agent to hub ``head`` (``status``, ``contentType``), ``end`` and ``error`` (``message``).
- ``D`` + 4-byte big-endian request id + raw bytes: a piece of a response body, sent by the
  agent the moment its model server produced it.

Body bytes travel untouched (no base64, no JSON escaping), so a streamed reply crosses the
tunnel exactly as it left the model server.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

CONTROL = b"C"
DATA = b"D"
_REQUEST_ID = struct.Struct("!I")
MAX_FRAME_BYTES = 16 * 1024 * 1024


class TunnelProtocolError(Exception):
    """A frame that does not follow the tunnel protocol."""


def control(message: dict[str, Any]) -> bytes:
    return CONTROL + orjson.dumps(message)


def data(request_id: int, chunk: bytes) -> bytes:
    return DATA + _REQUEST_ID.pack(request_id) + chunk


def parse(frame: bytes) -> tuple[dict[str, Any] | None, int, bytes]:
    """``(control message, 0, b"")`` or ``(None, request id, chunk)``."""
    kind = frame[:1]
    if kind == CONTROL:
        try:
            message = orjson.loads(frame[1:])
        except orjson.JSONDecodeError as exc:
            raise TunnelProtocolError(f"bad control frame: {exc}") from exc
        if not isinstance(message, dict) or not isinstance(message.get("id"), int):
            raise TunnelProtocolError("control frame without a request id")
        return message, 0, b""
    if kind == DATA and len(frame) >= 1 + _REQUEST_ID.size:
        (request_id,) = _REQUEST_ID.unpack_from(frame, 1)
        return None, request_id, frame[1 + _REQUEST_ID.size:]
    raise TunnelProtocolError(f"unknown frame kind {kind!r}")
