"""The event bus knows who wants which event type, so a type nobody listens for costs a
publisher nothing, and a subscriber for one type (the mDNS publisher's ``room:created``)
no longer switches on the ``llm:*`` events of every proxied request."""

from __future__ import annotations

import asyncio

from gambiarra_desktop.discovery.announcement import HubAnnouncement
from gambiarra_desktop.discovery.publisher import HubPublisher
from gambiarra_desktop.events import Event, EventBus, EventType
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.keys import BUS

LLM_TYPES = (EventType.LLM_QUEUED, EventType.LLM_REQUEST, EventType.LLM_COMPLETE,
             EventType.LLM_ERROR, EventType.QUEUE_CHANGED)


def test_wants_answers_per_type_and_follows_unsubscribes() -> None:
    bus = EventBus()
    assert not any(bus.wants(event_type) for event_type in EventType)
    seen: list[Event] = []
    stop_created = bus.subscribe(seen.append, (EventType.ROOM_CREATED,))
    assert bus.wants(EventType.ROOM_CREATED)
    assert [t for t in EventType if bus.wants(t)] == [EventType.ROOM_CREATED]
    stop_all = bus.subscribe(seen.append)  # None: every type, as before.
    assert all(bus.wants(event_type) for event_type in EventType)
    assert bus.subscriber_count == 2
    stop_all()
    stop_all()  # Twice is harmless, and removes nobody else.
    assert [t for t in EventType if bus.wants(t)] == [EventType.ROOM_CREATED]
    assert bus.subscriber_count == 1
    stop_created()
    assert not any(bus.wants(event_type) for event_type in EventType)
    assert bus.subscriber_count == 0


def test_one_callable_subscribed_twice_is_two_subscriptions() -> None:
    bus = EventBus()
    seen: list[Event] = []
    first = bus.subscribe(seen.append, (EventType.LLM_REQUEST,))
    bus.subscribe(seen.append, (EventType.LLM_REQUEST,))
    first()
    assert bus.wants(EventType.LLM_REQUEST)
    bus.publish(Event(EventType.LLM_REQUEST, "ROOMAA"))
    assert len(seen) == 1


def test_a_subscriber_gets_only_its_types_in_publish_order() -> None:
    bus = EventBus()
    created: list[Event] = []
    everything: list[Event] = []
    bus.subscribe(created.append, [EventType.ROOM_CREATED])
    bus.subscribe(everything.append)
    published = [Event(EventType.LLM_REQUEST, "ROOMAA", {"n": 1}),
                 Event(EventType.ROOM_CREATED, "ROOMAA", {"n": 2}),
                 Event(EventType.LLM_COMPLETE, "ROOMAA", {"n": 3}),
                 Event(EventType.ROOM_CREATED, "ROOMBB", {"n": 4})]
    for event in published:
        bus.publish(event)
    assert created == [published[1], published[3]]
    assert everything == published


def test_a_subscriber_may_unsubscribe_itself_while_handling_an_event() -> None:
    bus = EventBus()
    calls: list[str] = []
    stop_first = None

    def first(_event: Event) -> None:
        calls.append("first")
        assert stop_first is not None
        stop_first()

    stop_first = bus.subscribe(first)
    bus.subscribe(lambda _event: calls.append("second"))
    bus.publish(Event(EventType.ROOM_CREATED, "ROOMAA"))
    bus.publish(Event(EventType.ROOM_CREATED, "ROOMAA"))
    assert calls == ["first", "second", "second"]


async def test_the_mdns_publisher_listens_for_room_creation_only(hub: HubServer) -> None:
    bus = hub.app[BUS]
    publisher = HubPublisher(HubAnnouncement("hub-id-123", "Bench", hub.port, ("127.0.0.1",)))
    publisher.follow_rooms(bus, lambda: len(hub.registry))
    try:
        assert bus.wants(EventType.ROOM_CREATED)
        for event_type in LLM_TYPES:  # The proxy builds none of these for it.
            assert not bus.wants(event_type), event_type
            assert not hub.registry.listens(event_type), event_type
        await hub.registry.create("Counted", None)
        # It still follows creations: its TXT record's room count (kept while unpublished).
        for _ in range(200):
            if publisher.announcement.room_count == 1:
                break
            await asyncio.sleep(0.01)
        assert publisher.announcement.room_count == 1
    finally:
        await publisher.stop()
    assert not bus.wants(EventType.ROOM_CREATED)
