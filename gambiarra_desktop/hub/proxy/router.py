"""Which participants may serve a chat request, from the request's ``model`` field.

The order follows the TypeScript hub, so existing clients keep working: a participant id,
then ``model:<name>``, then ``*``/``any``, then a bare model name. Choosing among the
matches (by load) is the scheduler's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gambiarra_desktop.hub.errors import NoParticipantError, ParticipantOfflineError
from gambiarra_desktop.hub.rooms.lifecycle import Room
from gambiarra_desktop.protocol import ANY_MODEL_ALIASES, MODEL_PREFIX, ParticipantInfo

Usable = Callable[[str, ParticipantInfo], bool]
"""Whether the hub can send a participant work right now (its tunnel is up, it is not
still loading its model)."""


@dataclass(slots=True)
class Match:
    room: Room
    requested: str
    usable: Usable
    named: bool
    """A request for one participant by id: served by that participant or not at all."""
    found: list[ParticipantInfo] | None = None
    """The candidates :func:`match_request` found, handed to the first :meth:`candidates`
    call (the scheduler's, in the same step with no await between): matching once per
    request, not twice. Later calls (a failover, a queued wait) look again."""

    def candidates(self) -> list[ParticipantInfo]:
        found, self.found = self.found, None
        if found is not None:
            return found
        room = self.room
        if self.named:
            named = room.participants.get(self.requested)
            return [named] if named is not None and named["status"] == "online" else []
        online = [p for p in room.online_participants() if self.usable(room.code, p)]
        if self.requested.startswith(MODEL_PREFIX):
            wanted = self.requested.removeprefix(MODEL_PREFIX)
            return [p for p in online if p["model"] == wanted]
        if self.requested in ANY_MODEL_ALIASES:
            return online
        return [p for p in online if p["model"] == self.requested]


def match_request(room: Room, requested: str, usable: Usable) -> Match:
    """The participants that may serve ``requested``; a domain error (with the seed's
    text) when none can."""
    named = room.participants.get(requested)
    if named is not None and _someone_else_serves(room, requested):
        # An id that is also a model someone else serves is read as the model: else anyone
        # could take a model's requests from the people serving it by joining under its
        # name (a deliberate departure from the TypeScript hub, in this collision only).
        named = None
    if named is not None and named["status"] != "online":
        raise ParticipantOfflineError
    match = Match(room, requested, usable, named=named is not None)
    match.found = match.candidates()
    if not match.found:
        raise NoParticipantError
    return match


def _someone_else_serves(room: Room, model: str) -> bool:
    return any(p["model"] == model and p["id"] != model for p in room.participants.values())
