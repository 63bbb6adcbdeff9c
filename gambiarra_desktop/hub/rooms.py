"""Rooms and their participants: the hub's state and the rules that change it.

Reads come from memory, so routing a chat request never touches the disk. Every change is
written through to the :class:`Store` and announced on the :class:`EventBus`. Each change
runs shielded from cancellation: the server cancels the handler of a client that hangs up,
and a change cut in half would leave memory and disk disagreeing.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from gambiarra_desktop.events import Event, EventBus, EventType
from gambiarra_desktop.hub.identifiers import new_room_code, new_room_id, normalize_code, now_ms
from gambiarra_desktop.hub.passwords import hash_password, verify_password
from gambiarra_desktop.hub.store import Store, StoredRoom
from gambiarra_desktop.protocol import ParticipantInfo, RoomInfo, RoomListEntry, Transport

log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")


def _shielded(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.shield(method(*args, **kwargs))

    return wrapper


@dataclass(slots=True)
class Room:
    stored: StoredRoom
    participants: dict[str, ParticipantInfo] = field(default_factory=dict)
    tunnel_token_hashes: dict[str, str] = field(default_factory=dict)
    """SHA-256 of each tunnel participant's secret; kept apart so no listing can show it."""
    loading: set[str] = field(default_factory=set)
    """Participants whose health calls say their model is still loading: not routed to,
    and given a longer grace period before they count as gone."""
    joined_from: dict[str, str] = field(default_factory=dict)
    """The socket peer address each participant joined from: it decides whether a
    loopback endpoint means "the participant's own machine" (allowed only when that is the
    hub's machine) and who may act for the participant without its secret."""

    @property
    def code(self) -> str:
        return self.stored.code

    def public_info(self) -> RoomInfo:
        """The room as clients see it: ``hasPassword`` instead of the hash."""
        s = self.stored
        return RoomInfo(
            id=s.id, code=s.code, name=s.name, hostId=s.host_id, createdAt=s.created_at,
            hasPassword=s.password_hash is not None,
        )

    def online_participants(self) -> list[ParticipantInfo]:
        return [p for p in self.participants.values() if p["status"] == "online"]

    def tunnel_token_matches(self, participant_id: str, token: str) -> bool:
        expected = self.tunnel_token_hashes.get(participant_id)
        if expected is None:
            return False
        return hmac.compare_digest(expected, _token_hash(token))


def _token_hash(token: str) -> str:
    """Tunnel tokens are 256 random bits, so a plain hash suffices (no argon2 needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class JoinRequest:
    id: str
    nickname: str
    model: str
    endpoint: str
    specs: dict[str, Any]
    config: dict[str, Any]
    transport: Transport = "direct"
    joined_from: str | None = None
    """The peer address of the join request's socket (never a header)."""


@dataclass(frozen=True, slots=True)
class Joined:
    participant: ParticipantInfo
    tunnel_token: str | None
    """Only for tunnel participants, and only in the join response."""


class RoomRegistry:
    def __init__(self, store: Store, bus: EventBus) -> None:
        self._store = store
        self._bus = bus
        self._rooms: dict[str, Room] = {}

    async def load(self) -> None:
        """Restore rooms after a restart. Participants start offline until their next health
        call proves they are still there."""
        for loaded in await self._store.load():
            room = Room(loaded.room, tunnel_token_hashes=dict(loaded.tunnel_token_hashes))
            for participant in loaded.participants:
                participant["status"] = "offline"
                room.participants[participant["id"]] = participant
            self._rooms[room.code] = room

    def get(self, code: str) -> Room | None:
        return self._rooms.get(normalize_code(code))

    def list_rooms(self) -> list[RoomListEntry]:
        return [
            RoomListEntry(**room.public_info(), participantCount=len(room.participants))
            for room in self._rooms.values()
        ]

    def __len__(self) -> int:
        return len(self._rooms)

    async def create(self, name: str, password: str | None) -> tuple[Room, str]:
        """Create a room and return it with the new host id."""
        password_hash = await hash_password(password) if password else None
        return await self._add_room(name, password_hash)

    @_shielded
    async def _add_room(self, name: str, password_hash: str | None) -> tuple[Room, str]:
        host_id = str(uuid.uuid4())
        stored = StoredRoom(
            id=new_room_id(), code=new_room_code(self._rooms), name=name, host_id=host_id,
            created_at=now_ms(), password_hash=password_hash,
        )
        await self._store.save_room(stored)
        room = Room(stored)
        self._rooms[room.code] = room
        log.info("room %s created: %r%s", room.code, name,
                 " (password protected)" if password_hash else "")
        self._publish(EventType.ROOM_CREATED, room, dict(room.public_info()))
        return room, host_id

    async def check_password(self, room: Room, password: str) -> bool:
        expected = room.stored.password_hash
        if expected is None:
            return True
        if not password:
            return False
        return await verify_password(password, expected)

    @_shielded
    async def join(self, room: Room, request: JoinRequest) -> Joined:
        """Add a participant, or update it in place when its id joins again. A tunnel
        participant gets a fresh secret for its tunnel each time it joins."""
        now = now_ms()
        previous = room.participants.get(request.id)
        participant = ParticipantInfo(
            id=request.id, nickname=request.nickname, model=request.model,
            endpoint=request.endpoint, specs=request.specs, config=request.config,
            status="online", joinedAt=previous["joinedAt"] if previous else now, lastSeen=now,
            transport=request.transport,
        )
        token = secrets.token_urlsafe(32) if request.transport == "tunnel" else None
        token_hash = _token_hash(token) if token else None
        await self._store.save_participant(room.stored.id, participant, token_hash)
        room.participants[participant["id"]] = participant
        if request.joined_from is not None:
            room.joined_from[participant["id"]] = request.joined_from
        if token_hash:
            room.tunnel_token_hashes[participant["id"]] = token_hash
        else:
            room.tunnel_token_hashes.pop(participant["id"], None)
        log.info("room %s: %s %s with %s at %s", room.code, request.nickname,
                 "rejoined" if previous else "joined", request.model, request.endpoint)
        self._publish(EventType.PARTICIPANT_JOINED, room, dict(participant))
        return Joined(participant, token)

    @_shielded
    async def leave(self, room: Room, participant_id: str) -> bool:
        if participant_id not in room.participants:
            return False
        await self._store.delete_participant(room.stored.id, participant_id)
        gone = room.participants.pop(participant_id, None)
        room.tunnel_token_hashes.pop(participant_id, None)
        room.loading.discard(participant_id)
        log.info("room %s: %s left", room.code, gone["nickname"] if gone else participant_id)
        self._publish(EventType.PARTICIPANT_LEFT, room, {"participantId": participant_id})
        return True

    @_shielded
    async def heartbeat(self, room: Room, participant_id: str, loading: bool = False) -> bool:
        """Record a health call; a participant that was offline comes back online."""
        participant = room.participants.get(participant_id)
        if participant is None:
            return False
        if loading:
            room.loading.add(participant_id)
        else:
            room.loading.discard(participant_id)
        was_offline = participant["status"] == "offline"
        participant["lastSeen"] = now_ms()
        participant["status"] = "online"
        await self._store.update_presence(
            room.stored.id, participant_id, "online", participant["lastSeen"]
        )
        if was_offline:
            log.info("room %s: %s is back online", room.code, participant["nickname"])
            self._publish(EventType.PARTICIPANT_ONLINE, room, {"participantId": participant_id})
        return True

    @_shielded
    async def mark_offline(self, room: Room, participant_id: str, reason: str) -> None:
        """Offline at once, for example when the participant's tunnel dropped."""
        participant = room.participants.get(participant_id)
        if participant is None or participant["status"] == "offline":
            return
        participant["status"] = "offline"
        await self._store.update_presence(
            room.stored.id, participant_id, "offline", participant["lastSeen"])
        log.info("room %s: %s is offline: %s", room.code, participant["nickname"], reason)
        self._publish(EventType.PARTICIPANT_OFFLINE, room, {"participantId": participant_id})

    async def mark_stale_offline(self, timeout_s: float, loading_factor: float = 1.0) -> int:
        """Mark participants silent for longer than ``timeout_s`` offline (``loading_factor``
        times longer for those loading a model); return how many."""
        now = now_ms()
        marked = 0
        for room in list(self._rooms.values()):
            for participant in list(room.participants.values()):
                grace = timeout_s * (loading_factor if participant["id"] in room.loading else 1)
                cutoff = now - int(grace * 1000)
                if participant["status"] != "offline" and participant["lastSeen"] < cutoff:
                    participant["status"] = "offline"
                    marked += 1
                    log.info("room %s: %s went silent, now offline", room.code,
                             participant["nickname"])
                    await self._store.update_presence(
                        room.stored.id, participant["id"], "offline", participant["lastSeen"]
                    )
                    self._publish(
                        EventType.PARTICIPANT_OFFLINE, room, {"participantId": participant["id"]}
                    )
        return marked

    @property
    def has_listeners(self) -> bool:
        return self._bus.subscriber_count > 0

    def publish(self, event_type: EventType, room: Room, data: dict[str, Any]) -> None:
        """Announce a room event that is not a state change, such as an LLM request."""
        self._publish(event_type, room, data)

    def _publish(self, event_type: EventType, room: Room, data: dict[str, Any]) -> None:
        self._bus.publish(Event(event_type, room.code, data))
