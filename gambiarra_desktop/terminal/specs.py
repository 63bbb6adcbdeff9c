"""The bodies of the terminal routes, checked field by field before anything runs.

Every field is bounded (security rule 5) and an unknown one is named in the error rather
than ignored: a typo like ``"pasword"`` should not silently open an unauthenticated try.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from gambiarra_desktop.execution.runner import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S
from gambiarra_desktop.terminal.errors import InvalidSessionRequestError
from gambiarra_desktop.terminal.session import SessionType

MAX_HOST_CHARS = 253
MAX_USERNAME_CHARS = 64
MAX_PASSWORD_CHARS = 1024
MAX_PRIVATE_KEY_CHARS = 16 * 1024
MAX_FINGERPRINT_CHARS = 100
MAX_COMMAND_CHARS = 64 * 1024
MAX_SEND_CHARS = 64 * 1024
FIELDS: dict[str, frozenset[str]] = {
    "local": frozenset({"type"}),
    "ssh": frozenset({"type", "host", "port", "username", "password", "privateKey",
                      "hostKeyFingerprint"}),
    "telnet": frozenset({"type", "host", "port"}),
}
DEFAULT_PORTS = {"ssh": 22, "telnet": 23}
NAME_FIELDS = frozenset({"host", "username", "hostKeyFingerprint"})
"""Fields no real value of has a control or format character (line breaks, bidi overrides,
zero-width spaces)."""


@dataclass(frozen=True, slots=True)
class SessionSpec:
    type: SessionType
    host: str = ""
    port: int = 0
    username: str = ""
    password: str | None = None
    private_key: str | None = None
    host_key_fingerprint: str | None = None

    @property
    def target(self) -> str:
        if self.type == "local":
            return "local"
        user = f"{self.username}@" if self.username else ""
        return f"{user}{self.host}:{self.port}"

    def __repr__(self) -> str:  # Never a password or key in a log line or a traceback.
        return f"SessionSpec(type={self.type!r}, target={self.target!r})"


def session_spec(body: dict[str, Any]) -> SessionSpec:
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in FIELDS:  # [] or {}: unhashable, a 500.
        raise InvalidSessionRequestError('"type" must be "local", "ssh" or "telnet"')
    unknown = sorted(set(body) - FIELDS[kind])
    if unknown:
        raise InvalidSessionRequestError(f"unknown field {unknown[0]!r} for a {kind} session")
    if kind == "local":
        return SessionSpec("local")
    host = _required(body, "host", MAX_HOST_CHARS)
    port = body.get("port", DEFAULT_PORTS[kind])
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidSessionRequestError('"port" must be a whole number from 1 to 65535')
    if kind == "telnet":
        return SessionSpec("telnet", host, port)
    username = _required(body, "username", MAX_USERNAME_CHARS)
    password = _text(body, "password", MAX_PASSWORD_CHARS)
    private_key = _text(body, "privateKey", MAX_PRIVATE_KEY_CHARS)
    if (password is None) == (private_key is None):
        raise InvalidSessionRequestError('send one of "password" or "privateKey"')
    fingerprint = _text(body, "hostKeyFingerprint", MAX_FINGERPRINT_CHARS)
    if fingerprint is not None and not fingerprint.startswith("SHA256:"):
        raise InvalidSessionRequestError('"hostKeyFingerprint" looks like "SHA256:..."')
    return SessionSpec("ssh", host, port, username, password, private_key, fingerprint)


def command_of(body: dict[str, Any]) -> tuple[str, float]:
    """(command, timeout in seconds) of an ``execute`` body. ``timeout`` (seconds) is an
    extension to the seed: default 30, at most 300."""
    unknown = sorted(set(body) - {"command", "timeout"})
    if unknown:
        raise InvalidSessionRequestError(f"unknown field {unknown[0]!r}")
    command = _required(body, "command", MAX_COMMAND_CHARS)
    timeout = body.get("timeout", DEFAULT_TIMEOUT_S)
    if (isinstance(timeout, bool) or not isinstance(timeout, int | float)
            or not 0 < timeout <= MAX_TIMEOUT_S):
        raise InvalidSessionRequestError(
            f'"timeout" must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}')
    return command, float(timeout)


def data_of(body: dict[str, Any]) -> str:
    unknown = sorted(set(body) - {"data"})
    if unknown:
        raise InvalidSessionRequestError(f"unknown field {unknown[0]!r}")
    return _required(body, "data", MAX_SEND_CHARS, allow_empty=True)


def _required(body: dict[str, Any], name: str, limit: int, *, allow_empty: bool = False) -> str:
    value = _text(body, name, limit, allow_empty=allow_empty)
    if value is None:
        raise InvalidSessionRequestError(f'"{name}" is required')
    return value


def _text(body: dict[str, Any], name: str, limit: int, *,
          allow_empty: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or (not value and not allow_empty):
        raise InvalidSessionRequestError(f'"{name}" must be a non-empty string')
    if len(value) > limit:
        raise InvalidSessionRequestError(f'"{name}" is longer than {limit} characters')
    if "\x00" in value and name != "data":
        raise InvalidSessionRequestError(f'"{name}" may not hold a NUL character')
    if name in NAME_FIELDS and any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        # Shown in the host's approval dialog and the audit before any connection fails:
        # a line break or a bidi override there would let the caller write its own words.
        raise InvalidSessionRequestError(f'"{name}" may not hold control or format'
                                         " characters")
    return value
