"""The one typed event bus through which the core reports outward.

The hub's SSE stream, the CLI monitor and (later) the GUI bridge all consume the same
events, so nothing polls. Publishing is synchronous and cheap: subscribers must not block;
the SSE stream, for example, only puts the event on a bounded queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)


class EventType(StrEnum):
    ROOM_CREATED = "room:created"
    ROOM_DELETED = "room:deleted"
    PARTICIPANT_JOINED = "participant:joined"
    PARTICIPANT_LEFT = "participant:left"
    PARTICIPANT_OFFLINE = "participant:offline"
    PARTICIPANT_ONLINE = "participant:online"
    LLM_QUEUED = "llm:queued"
    LLM_REQUEST = "llm:request"
    LLM_COMPLETE = "llm:complete"
    LLM_ERROR = "llm:error"
    QUEUE_CHANGED = "queue:changed"
    """An extension to the seed: the room's queue changed (a request waits, is served or
    gives up). ``{"waiting": N, "positions": {requestId: place}}``, where the ids are those
    clients sent as ``X-Request-Id`` (never prompts), so a client can show its own place."""
    COST_ALERT = "cost:alert"
    """Today's (UTC) cost crossed the alert threshold; published once per day with room
    code "" and never hub-wide: only the admin's ``/v1/events`` stream carries it."""


HUB_WIDE_EVENTS = frozenset({EventType.ROOM_CREATED, EventType.ROOM_DELETED})
"""Events every room's listeners receive: rooms are public (``GET /rooms`` lists them).
``room:deleted`` is an extension to the seed's events."""


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    room_code: str
    data: dict[str, Any] = field(default_factory=dict)

    def concerns(self, room_code: str) -> bool:
        """Whether a listener scoped to ``room_code`` should see this event."""
        return self.type in HUB_WIDE_EVENTS or self.room_code == room_code


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of core events to subscribers; one instance per hub, no globals."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber and return the function that removes it again."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: Event) -> None:
        # Iterate over a copy: a subscriber may unsubscribe itself while handling an event.
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                # One broken listener must not stop the others or the request that published.
                log.exception("event subscriber failed on %s", event.type)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
