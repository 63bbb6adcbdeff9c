"""The hop header: every request the hub proxies says it passed through this hub.

Why: a participant's endpoint can lead back into a hub, this one or another whose
participant leads back here. Refusing the hub's own address (the endpoint policy) catches
the direct case; two hubs pointing at each other's rooms are only visible in the request
itself. So the hub appends ``Via: 1.1 gambiarra-<hub id>`` (RFC 9110's ``Via``) to what it
forwards, and refuses a chat whose ``Via`` already names it, or that already passed through
:data:`MAX_GAMBIARRA_HOPS` hubs.
"""

from __future__ import annotations

import re

from gambiarra_desktop.hub.errors import RequestLoopError

MAX_GAMBIARRA_HOPS = 4
MAX_FORWARDED_VIA_CHARS = 1024
"""A longer incoming ``Via`` is cut down to the Gambiarra entries before being forwarded."""
PSEUDONYM_PREFIX = "gambiarra-"
_OURS = re.compile(r"^\S+\s+(gambiarra-[0-9A-Za-z-]{1,64})(?:\s|$)")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")


class HopHeader:
    """Builds one hub's outgoing ``Via`` line and spots loops in incoming ones."""

    def __init__(self, hub_id: str) -> None:
        self.pseudonym = PSEUDONYM_PREFIX + hub_id
        self._entry = f"1.1 {self.pseudonym}"
        self._alone = f"Via: {self._entry}\r\n"

    def outgoing(self, incoming: list[str]) -> str:
        """The ``Via: ...\\r\\n`` line to send upstream, given the request's ``Via``
        values. Raises :class:`RequestLoopError` for a loop or too many hops."""
        if not incoming:
            return self._alone  # The common case: a client, not another hub.
        entries = [entry.strip() for value in incoming for entry in value.split(",")
                   if entry.strip()]
        hubs = [m.group(1) for entry in entries if (m := _OURS.match(entry))]
        if self.pseudonym in hubs:
            raise RequestLoopError(
                "request loop detected (the request already passed through this hub)")
        if len(hubs) >= MAX_GAMBIARRA_HOPS:
            raise RequestLoopError(
                f"request loop detected (the request already passed through {len(hubs)}"
                f" Gambiarra hubs; at most {MAX_GAMBIARRA_HOPS} are allowed)")
        joined = ", ".join(entries)
        if len(joined) > MAX_FORWARDED_VIA_CHARS or not _PRINTABLE.match(joined):
            entries = [f"1.1 {hub}" for hub in hubs]
        return f"Via: {', '.join([*entries, self._entry])}\r\n"
