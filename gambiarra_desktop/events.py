"""The one typed event bus through which the core reports outward.

The hub's SSE stream, the CLI monitor and (later) the GUI bridge all consume the same
events, so nothing polls. Publishing is synchronous and cheap: subscribers must not block;
the SSE stream, for example, only puts the event on a bounded queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
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

HUB_LEVEL_EVENTS = frozenset({EventType.COST_ALERT})
"""Events of the hub itself, published with room code "": what a stream scoped to ""
(the admin's ``/v1/events``) receives besides :data:`HUB_WIDE_EVENTS`."""


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    room_code: str
    data: dict[str, Any] = field(default_factory=dict)

    def concerns(self, room_code: str) -> bool:
        """Whether a listener scoped to ``room_code`` should see this event."""
        return self.type in HUB_WIDE_EVENTS or self.room_code == room_code


Subscriber = Callable[[Event], None]

ALL_EVENT_TYPES = frozenset(EventType)


class EventBus:
    """Fan-out of core events to subscribers; one instance per hub, no globals.

    Subscribers say which event types they want, and the bus keeps, per type, the tuple
    of subscribers to call: a publisher asks :meth:`wants` (one dict lookup) before it
    builds an event's data, so a type nobody listens for costs a request nothing, and a
    subscriber that only wants ``room:created`` (the mDNS publisher) no longer switches on
    the ``llm:*`` events of every proxied request."""

    def __init__(self) -> None:
        self._subscriptions: list[tuple[Subscriber, frozenset[EventType]]] = []
        """In subscription order, which is the order of delivery."""
        self._targets: dict[EventType, tuple[Subscriber, ...]] = {}
        """Per type, the subscribers to call; a type with none is absent. Rebuilt on each
        (rare) subscribe and unsubscribe, so publishing never scans or copies."""

    def subscribe(self, subscriber: Subscriber,
                  types: Iterable[EventType] | None = None) -> Callable[[], None]:
        """Add a subscriber for ``types`` (``None``: every type) and return the function
        that removes it again (calling that twice is harmless)."""
        entry = (subscriber, ALL_EVENT_TYPES if types is None else frozenset(types))
        self._subscriptions.append(entry)
        self._rebuild()

        def unsubscribe() -> None:
            # By identity: the same callable subscribed twice is two subscriptions.
            for index, existing in enumerate(self._subscriptions):
                if existing is entry:
                    del self._subscriptions[index]
                    self._rebuild()
                    return

        return unsubscribe

    def _rebuild(self) -> None:
        targets: dict[EventType, list[Subscriber]] = {}
        for subscriber, types in self._subscriptions:
            for event_type in types:
                targets.setdefault(event_type, []).append(subscriber)
        self._targets = {event_type: tuple(subscribers)
                         for event_type, subscribers in targets.items()}

    def wants(self, event_type: EventType) -> bool:
        """Whether any subscriber listens for ``event_type``: ask before building data."""
        return event_type in self._targets

    def publish(self, event: Event) -> None:
        # A tuple taken before the calls: a subscriber may unsubscribe itself meanwhile.
        for subscriber in self._targets.get(event.type, ()):
            try:
                subscriber(event)
            except Exception:
                # One broken listener must not stop the others or the request that published.
                log.exception("event subscriber failed on %s", event.type)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)
