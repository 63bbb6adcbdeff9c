"""The life of rooms and their participants: the one place that changes them.

A participant moves through these states; every arrow is a method of
:class:`RoomRegistry`, and every arrow publishes the event named on it::

    (none)  --join------------------------------> online   participant:joined
    online  --health------------------------------> online   (lastSeen; "loading" flag)
    online  --sweep: silent > timeout (x4 loading)-> offline  participant:offline
    online  --its tunnel dropped (mark_offline)----> offline  participant:offline
    online  --health "serving": false--------------> offline  participant:offline (reason)
    offline --health, or its tunnel opens---------> online   participant:online
              (not while its last health call said "serving": false: then only lastSeen)
    any     --join again (same owner)-------------> online   participant:joined
    any     --leave (same owner)------------------> (none)   participant:left

"Same owner" means the caller presents the participant secret its last join returned, or
calls from the address that joined it (:meth:`Room.may_act_for`); anyone else gets
:class:`NotYourParticipantError`, so nobody can take over or remove someone else's seat.

A room is created, is *idle* while no participant is online (``idle_since``), and is
deleted by its creator or the hub's owner (``room:deleted``), or expires once it has been
idle for ``room_idle_ttl_s`` (7 days by default).

Limits (rooms per hub, participants per room) are checked and the new entry reserved with
no ``await`` in between, so concurrent requests cannot overshoot them. Reads come from
memory, so routing a chat request never touches the disk. Every change is written through
to the :class:`Store` and runs shielded from cancellation: the server cancels the handler of
a client that hangs up, and a change cut in half would leave memory and disk disagreeing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from gambiarra_desktop.events import Event, EventBus, EventType
from gambiarra_desktop.hub.errors import (
    LimitReachedError,
    NotRoomOwnerError,
    NotYourParticipantError,
    ParticipantNotFoundError,
    RoomNotFoundError,
)
from gambiarra_desktop.hub.rooms.identifiers import (
    new_room_code,
    new_room_id,
    normalize_code,
    now_ms,
)
from gambiarra_desktop.hub.rooms.passwords import hash_password
from gambiarra_desktop.hub.rooms.room import (
    Joined,
    JoinRequest,
    Room,
    new_secret,
    normalize_peer,
    secret_hash,
    secret_matches,
)
from gambiarra_desktop.hub.rooms.store import Store, StoredRoom
from gambiarra_desktop.protocol import ParticipantInfo, RoomListEntry

__all__ = ["Joined", "JoinRequest", "Room", "RoomLimits", "RoomRegistry"]

log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")
LIMIT_RETRY_AFTER_S = 60
MODEL_SERVER_DOWN = "its model server is not answering"


def _shielded(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.shield(method(*args, **kwargs))

    return wrapper


class _Reservation:
    """One creation's place in :attr:`RoomRegistry._creating`, given back once."""

    __slots__ = ("_counts", "_creator", "_held")

    def __init__(self, counts: Counter[str | None], creator: str | None) -> None:
        self._counts = counts
        self._creator = creator
        self._held = True
        counts[creator] += 1

    def release_after(self, hashing: asyncio.Future[str]) -> None:
        """Done-callback of a hash nobody waits for any more: its outcome is dropped."""
        if not hashing.cancelled():
            hashing.exception()  # Retrieved, so a failure is not reported as never seen.
        self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._counts[self._creator] -= 1
            if self._counts[self._creator] <= 0:
                del self._counts[self._creator]


@dataclass(frozen=True, slots=True)
class RoomLimits:
    max_rooms: int = 1000
    max_participants_per_room: int = 256
    room_idle_ttl_s: float = 7 * 24 * 3600.0
    max_rooms_per_address: int = 50
    """Rooms one client address may hold at once, so one script cannot take all of them."""
    max_participants_per_address: int = 32
    """Seats one client address may hold in one room, so one script cannot fill it."""
    participant_forget_s: float = 24 * 3600.0
    """A participant offline for this long is removed: it left without saying so."""


@dataclass(frozen=True, slots=True)
class CreatedRoom:
    room: Room
    host_id: str
    creator_secret: str
    """Shown once, in the ``POST /rooms`` reply: it lets the creator delete the room."""


class RoomRegistry:
    def __init__(
        self, store: Store, bus: EventBus, limits: RoomLimits | None = None,
        owner_token_hash: str | None = None,
        on_removed: Callable[[str], None] | None = None,
    ) -> None:
        """``on_removed(code)`` runs when a room is deleted or expires (state kept elsewhere
        for it, such as remembered passwords, goes with it)."""
        self._on_removed = on_removed
        self._store = store
        self._bus = bus
        self._limits = limits or RoomLimits()
        self._owner_token_hash = owner_token_hash
        self._rooms: dict[str, Room] = {}
        self._creators: dict[str, str] = {}
        """Room code -> the address that created it (per-address quota)."""
        self._creating: Counter[str | None] = Counter()
        """Creations that passed the limits and are hashing their password, by creator:
        counted against the limits from the check on, so a burst of creations spends
        argon2 time on the rooms that can be made, not on ones that will be refused."""

    async def load(self) -> None:
        """Restore rooms after a restart. Participants start offline until their next health
        call proves they are still there; a room nobody is online in is idle from now on,
        unless it already was."""
        now = now_ms()
        for loaded in await self._store.load():
            room = Room(loaded.room, secret_hashes=dict(loaded.secret_hashes),
                        joined_from=dict(loaded.joined_from),
                        seat_holders=dict(loaded.joined_from),
                        idle_since=loaded.idle_since or now)
            for participant in loaded.participants:
                participant["status"] = "offline"
                room.participants[participant["id"]] = participant
            self._rooms[room.code] = room

    # -- reads -------------------------------------------------------------------------

    def get(self, code: str) -> Room | None:
        return self._rooms.get(normalize_code(code))

    def require(self, code: str) -> Room:
        room = self.get(code)
        if room is None:
            raise RoomNotFoundError
        return room

    def list_rooms(self) -> list[RoomListEntry]:
        return [
            RoomListEntry(**room.public_info(), participantCount=len(room.participants))
            for room in self._rooms.values()
        ]

    def __len__(self) -> int:
        return len(self._rooms)

    # -- rooms -------------------------------------------------------------------------

    def _check_room_limit(self, pending: int = 0) -> None:
        limit = self._limits.max_rooms
        if len(self._rooms) + pending >= limit:  # A room is inserted before its write awaits.
            raise LimitReachedError(
                f"This hub already holds its limit of {limit} rooms", LIMIT_RETRY_AFTER_S)

    def _check_creator_quota(self, creator: str | None, pending: int = 0) -> None:
        limit = self._limits.max_rooms_per_address
        if creator is not None and pending + sum(
                1 for who in self._creators.values() if who == creator) >= limit:
            raise LimitReachedError(
                f"Your address already holds {limit} rooms; delete one first",
                LIMIT_RETRY_AFTER_S)

    async def create(
        self, name: str, password: str | None, creator: str | None = None
    ) -> CreatedRoom:
        """Create a room; the reply carries the host id and the creator's secret.
        ``creator`` is the client's address, for the per-address room quota (kept in memory:
        a restart forgets it, which errs on the side of the user)."""
        # Early, before spending argon2 time on the password, counting the creations still
        # hashing theirs; checked and reserved with no await in between.
        self._check_room_limit(self._creating.total())
        self._check_creator_quota(creator, self._creating[creator])
        reservation = _Reservation(self._creating, creator)
        hashing = asyncio.ensure_future(hash_password(password)) if password else None
        try:
            password_hash = await asyncio.shield(hashing) if hashing is not None else None
            return await self._add_room(name, password_hash, creator, reservation)
        finally:
            if hashing is None or hashing.done():
                reservation.release()
            else:  # A client that left does not stop its argon2 thread: nor its count.
                hashing.add_done_callback(reservation.release_after)

    @_shielded
    async def _add_room(
        self, name: str, password_hash: str | None, creator: str | None,
        reservation: _Reservation,
    ) -> CreatedRoom:
        reservation.release()  # Counted as a room from here on, or refused.
        self._check_room_limit()
        self._check_creator_quota(creator)
        creator_secret = new_secret()
        stored = StoredRoom(
            id=new_room_id(), code=new_room_code(self._rooms), name=name,
            host_id=str(uuid.uuid4()), created_at=now_ms(), password_hash=password_hash,
            creator_secret_hash=secret_hash(creator_secret),
        )
        room = Room(stored, idle_since=stored.created_at)
        self._rooms[room.code] = room  # Reserved at once; undone if the write fails.
        if creator is not None:
            self._creators[room.code] = creator
        try:
            await self._store.save_room(stored)
        except BaseException:
            self._creators.pop(room.code, None)
            self._rooms.pop(room.code, None)
            raise
        log.info("room %s created: %r%s", room.code, name,
                 " (password protected)" if password_hash else "")
        if self.listens(EventType.ROOM_CREATED):
            self._publish(EventType.ROOM_CREATED, room, dict(room.public_info()))
        return CreatedRoom(room, stored.host_id, creator_secret)

    def may_delete(self, room: Room, bearer: str | None) -> bool:
        """The room's creator (its creator secret) or the hub's owner (the owner token)."""
        return secret_matches(room.stored.creator_secret_hash, bearer) or secret_matches(
            self._owner_token_hash, bearer)

    async def delete(self, room: Room, bearer: str | None) -> None:
        if not self.may_delete(room, bearer):
            raise NotRoomOwnerError
        await self._remove_room(room, "deleted by its owner")

    @_shielded
    async def _remove_room(self, room: Room, reason: str) -> None:
        if room.deleted:
            return
        room.deleted = True
        self._rooms.pop(room.code, None)
        self._creators.pop(room.code, None)
        if self._on_removed is not None:
            self._on_removed(room.code)
        await self._store.delete_room(room.stored.id)
        log.info("room %s %s", room.code, reason)
        if self.listens(EventType.ROOM_DELETED):
            self._publish(EventType.ROOM_DELETED, room, {"code": room.code, "reason": reason})

    async def expire_idle_rooms(self) -> int:
        """Delete rooms nobody has been online in for ``room_idle_ttl_s``; return how many."""
        cutoff = now_ms() - int(self._limits.room_idle_ttl_s * 1000)
        expired = [room for room in self._rooms.values()
                   if room.idle_since is not None and room.idle_since < cutoff]
        for room in expired:
            await self._remove_room(room, "expired: nobody was online in it for too long")
        return len(expired)

    # -- participants ------------------------------------------------------------------

    def _authorize(self, room: Room, participant_id: str, secret: str | None,
                   peer: str | None) -> ParticipantInfo:
        participant = room.participants.get(participant_id)
        if participant is None:
            raise ParticipantNotFoundError
        if not room.may_act_for(participant_id, secret, peer):
            raise NotYourParticipantError
        return participant

    @_shielded
    async def join(self, room: Room, request: JoinRequest) -> Joined:
        """Add a participant, or update it in place when its owner joins again. Every join
        returns a fresh participant secret (which is also the tunnel token)."""
        if room.deleted:
            raise RoomNotFoundError
        pid = request.id
        previous = room.participants.get(pid)
        if previous is not None:
            self._authorize(room, pid, request.secret, request.joined_from)
        elif pid not in room.joining:
            self._check_seat_limits(room, request.client_address)
        new_seat = pid not in room.seat_holders
        if new_seat and request.client_address is not None:
            room.seat_holders[pid] = request.client_address
        room.joining.add(pid)  # Counted against the caps while the write runs.
        try:
            return await self._write_join(room, request, previous)
        except BaseException:
            if new_seat and pid not in room.participants:
                room.seat_holders.pop(pid, None)
            raise
        finally:
            room.joining.discard(pid)

    def _check_seat_limits(self, room: Room, address: str | None) -> None:
        limit = self._limits.max_participants_per_room
        # A set union: an id just written is in both while its join finishes.
        if len(room.participants.keys() | room.joining) >= limit:
            raise LimitReachedError(
                f"This room already holds its limit of {limit} participants",
                LIMIT_RETRY_AFTER_S)
        per_address = self._limits.max_participants_per_address
        if address is not None and sum(
                1 for who in room.seat_holders.values() if who == address) >= per_address:
            raise LimitReachedError(
                f"Your address already holds {per_address} seats in this room",
                LIMIT_RETRY_AFTER_S)

    async def _write_join(
        self, room: Room, request: JoinRequest, previous: ParticipantInfo | None
    ) -> Joined:
        now = now_ms()
        participant = ParticipantInfo(
            id=request.id, nickname=request.nickname, model=request.model,
            endpoint=request.endpoint, specs=request.specs, config=request.config,
            status="online", joinedAt=previous["joinedAt"] if previous else now, lastSeen=now,
            transport=request.transport,
        )
        secret = new_secret()
        hashed = secret_hash(secret)
        peer = normalize_peer(request.joined_from)
        try:
            await self._store.save_participant(room.stored.id, participant, hashed, peer)
        except Exception:
            if room.deleted:  # Deleted while the write ran: the row has no room any more.
                raise RoomNotFoundError from None
            raise
        if room.deleted:
            raise RoomNotFoundError  # Deleted while the write ran; the cascade took it.
        room.participants[participant["id"]] = participant
        room.secret_hashes[participant["id"]] = hashed
        if peer is not None:
            room.joined_from[participant["id"]] = peer
        room.loading.discard(participant["id"])
        room.model_down.discard(participant["id"])  # It checked its server to join.
        await self._set_active(room)
        log.info("room %s: %s %s with %s at %s", room.code, request.nickname,
                 "rejoined" if previous else "joined", request.model, request.endpoint)
        if self.listens(EventType.PARTICIPANT_JOINED):
            self._publish(EventType.PARTICIPANT_JOINED, room, dict(participant))
        return Joined(participant, secret)

    @_shielded
    async def leave(self, room: Room, participant_id: str, secret: str | None = None,
                    peer: str | None = None) -> None:
        gone = self._authorize(room, participant_id, secret, peer)
        await self._remove_participant(room, participant_id)
        log.info("room %s: %s left", room.code, gone["nickname"])

    async def _remove_participant(self, room: Room, participant_id: str) -> None:
        await self._store.delete_participant(room.stored.id, participant_id)
        room.participants.pop(participant_id, None)
        room.secret_hashes.pop(participant_id, None)
        room.joined_from.pop(participant_id, None)
        room.seat_holders.pop(participant_id, None)
        room.loading.discard(participant_id)
        room.model_down.discard(participant_id)
        if self.listens(EventType.PARTICIPANT_LEFT):
            self._publish(EventType.PARTICIPANT_LEFT, room, {"participantId": participant_id})
        await self._update_idle(room)

    @_shielded
    async def heartbeat(self, room: Room, participant_id: str, loading: bool = False,
                        secret: str | None = None, peer: str | None = None,
                        trusted: bool = False, serving: bool | None = None) -> None:
        """Record a health call; a participant that was offline comes back online.
        ``trusted`` skips the owner check (the caller already proved it, e.g. a tunnel
        that opened with the participant's secret).

        ``serving`` is what the participant says of its own model server. ``False`` (it
        does not answer) takes the participant offline and keeps it there, tunnel or not,
        until a health call says otherwise: an open tunnel to a dead server only turns
        every request into a 502, while "offline" lets the router answer as it does when
        nobody is online, or pick someone else. ``None`` (a tunnel opening) says nothing
        about the server, so it cannot undo what the last health call said."""
        if trusted:
            participant = room.participants.get(participant_id)
            if participant is None:
                raise ParticipantNotFoundError
        else:
            participant = self._authorize(room, participant_id, secret, peer)
        if loading:
            room.loading.add(participant_id)
        else:
            room.loading.discard(participant_id)
        if serving is True:
            room.model_down.discard(participant_id)
        elif serving is False:
            room.model_down.add(participant_id)
        if participant_id in room.model_down:
            participant["lastSeen"] = now_ms()  # Alive, so never swept or forgotten.
            went = self._go_offline(room, participant, MODEL_SERVER_DOWN,
                                    said_by_participant=True)
            await self._store.update_presence(
                room.stored.id, participant_id, "offline", participant["lastSeen"])
            if went:
                await self._update_idle(room)
            return
        was_offline = participant["status"] == "offline"
        participant["lastSeen"] = now_ms()
        participant["status"] = "online"
        if was_offline:  # Said with the change, before any await (see _go_offline).
            log.info("room %s: %s is back online", room.code, participant["nickname"])
            if self.listens(EventType.PARTICIPANT_ONLINE):
                self._publish(EventType.PARTICIPANT_ONLINE, room,
                              {"participantId": participant_id})
        await self._store.update_presence(
            room.stored.id, participant_id, "online", participant["lastSeen"]
        )
        if was_offline:
            await self._set_active(room)

    def _go_offline(self, room: Room, participant: ParticipantInfo, reason: str,
                    said_by_participant: bool) -> bool:
        """Offline in memory and said to the room, in one step with no await: two health
        calls at once (a server down, then up again) must leave the events in the order of
        the states, so the last event said is the state the participant is in. False when
        it was offline already."""
        if participant["status"] == "offline":
            return False
        participant["status"] = "offline"
        log.info("room %s: %s is offline: %s", room.code, participant["nickname"], reason)
        if self.listens(EventType.PARTICIPANT_OFFLINE):
            data: dict[str, Any] = {"participantId": participant["id"]}
            if said_by_participant:  # An extra to the seed's event: the room sees why.
                data["reason"] = reason
            self._publish(EventType.PARTICIPANT_OFFLINE, room, data)
        return True

    @_shielded
    async def mark_offline(self, room: Room, participant_id: str, reason: str,
                           said_by_participant: bool = False) -> None:
        """Offline at once, for example when the participant's tunnel dropped.
        ``said_by_participant``: the participant itself gave ``reason`` (its model server
        is down), so the event carries it; the hub's own guesses stay in its log."""
        participant = room.participants.get(participant_id)
        if participant is None or not self._go_offline(room, participant, reason,
                                                       said_by_participant):
            return
        await self._store.update_presence(
            room.stored.id, participant_id, "offline", participant["lastSeen"])
        await self._update_idle(room)

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
                    marked += 1
                    await self.mark_offline(room, participant["id"], "went silent")
        return marked

    async def forget_long_offline(self) -> int:
        """Remove participants offline for ``participant_forget_s``: they left without a
        word (a crashed laptop), and would hold their seat forever. Return how many."""
        cutoff = now_ms() - int(self._limits.participant_forget_s * 1000)
        forgotten = 0
        for room in list(self._rooms.values()):
            for participant in list(room.participants.values()):
                if participant["status"] == "offline" and participant["lastSeen"] < cutoff:
                    forgotten += 1
                    log.info("room %s: %s was offline too long and is removed", room.code,
                             participant["nickname"])
                    await self._shielded_remove(room, participant["id"])
        return forgotten

    @_shielded
    async def _shielded_remove(self, room: Room, participant_id: str) -> None:
        if participant_id in room.participants:
            await self._remove_participant(room, participant_id)

    # -- idle tracking -----------------------------------------------------------------

    async def _set_active(self, room: Room) -> None:
        if room.idle_since is not None:
            room.idle_since = None
            await self._store.set_room_idle_since(room.stored.id, None)

    async def _update_idle(self, room: Room) -> None:
        if room.idle_since is None and not room.online_participants() and not room.deleted:
            room.idle_since = now_ms()
            await self._store.set_room_idle_since(room.stored.id, room.idle_since)

    # -- events ------------------------------------------------------------------------

    def listens(self, event_type: EventType) -> bool:
        """Whether anyone subscribed to ``event_type``: check it before building an
        event's data, so an event nobody wants costs nothing (an O(1) lookup)."""
        return self._bus.wants(event_type)

    def publish(self, event_type: EventType, room: Room, data: dict[str, Any]) -> None:
        """Announce a room event that is not a state change, such as an LLM request."""
        self._publish(event_type, room, data)

    def _publish(self, event_type: EventType, room: Room, data: dict[str, Any]) -> None:
        self._bus.publish(Event(event_type, room.code, data))
