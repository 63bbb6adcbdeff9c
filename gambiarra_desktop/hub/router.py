"""Which participant serves a chat request, from the request's ``model`` field.

The order follows the TypeScript hub, so existing clients keep working: a participant id,
then ``model:<name>``, then ``*``/``any``, then a bare model name.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from gambiarra_desktop.hub.responses import ApiError
from gambiarra_desktop.hub.rooms import Room
from gambiarra_desktop.protocol import (
    ANY_MODEL_ALIASES,
    MODEL_PREFIX,
    ErrorText,
    ParticipantInfo,
)


def resolve_participant(
    room: Room, requested: str, reachable: Callable[[str, ParticipantInfo], bool]
) -> ParticipantInfo:
    """The participant for ``requested``, or an :class:`ApiError` with the seed's text.

    ``reachable`` tells whether the hub can reach a participant right now (a tunnel
    participant whose tunnel is down cannot); a request for "any" skips those.
    """
    named = room.participants.get(requested)
    if named is not None:
        if named["status"] != "online":
            raise ApiError(503, ErrorText.PARTICIPANT_OFFLINE)
        return named
    online = [p for p in room.online_participants() if reachable(room.code, p)]
    if requested.startswith(MODEL_PREFIX):
        wanted = requested.removeprefix(MODEL_PREFIX)
        candidates = [p for p in online if p["model"] == wanted]
    elif requested in ANY_MODEL_ALIASES:
        candidates = online
    else:
        candidates = [p for p in online if p["model"] == requested]
    if not candidates:
        raise ApiError(404, ErrorText.NO_PARTICIPANT)
    return choose(candidates)


def choose(candidates: Sequence[ParticipantInfo]) -> ParticipantInfo:
    """Spread requests over equal candidates (load-aware choice comes with routing metrics)."""
    return random.choice(candidates)  # noqa: S311 - load spreading, not security.
