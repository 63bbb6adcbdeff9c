"""One room's in-memory state, and who may act for its participants.

The registry (:mod:`gambiarra_desktop.hub.rooms.lifecycle`) changes this state; this module only
holds it and answers questions about it, with no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from gambiarra_desktop.hub.ip_addresses import parse_ip
from gambiarra_desktop.hub.rooms.store import StoredRoom
from gambiarra_desktop.protocol import ParticipantInfo, RoomInfo, Transport


def new_secret() -> str:
    """256 random bits, URL-safe: participant secrets, tunnel tokens, creator secrets."""
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """Secrets are 256 random bits, so a plain hash suffices (argon2 is for passwords that
    people choose); only the hash is kept, in memory and on disk."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(expected_hash: str | None, secret: str | None) -> bool:
    if not expected_hash or not secret:
        return False
    return hmac.compare_digest(expected_hash, secret_hash(secret))


def normalize_peer(peer: str | None) -> str | None:
    """One spelling per address: ``::ffff:10.0.0.5`` and ``10.0.0.5`` are the same peer."""
    address = parse_ip(peer)
    return str(address) if address is not None else peer or None


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
    secret: str | None = None
    """The participant secret the joiner presented, needed to re-join an existing id from
    another address."""
    client_address: str | None = None
    """The socket's peer address whoever the caller is, for the per-address seat quota."""


@dataclass(frozen=True, slots=True)
class Joined:
    participant: ParticipantInfo
    secret: str
    """The participant's new secret, shown once in the join reply (and, for tunnel
    participants, also as ``tunnelToken``: the same secret opens its tunnel)."""


@dataclass(slots=True)
class Room:
    stored: StoredRoom
    participants: dict[str, ParticipantInfo] = field(default_factory=dict)
    secret_hashes: dict[str, str] = field(default_factory=dict)
    """SHA-256 of each participant's secret; kept apart so no listing can show it."""
    loading: set[str] = field(default_factory=set)
    """Participants whose health calls say their model is still loading: not routed to,
    and given a longer grace period before they count as gone."""
    model_down: set[str] = field(default_factory=set)
    """Participants whose health calls say their model server does not answer: offline
    (not routed to) until a health call says it answers again, even with a tunnel up."""
    joined_from: dict[str, str] = field(default_factory=dict)
    """The socket peer address each participant joined from: it decides whether a
    loopback endpoint means "the participant's own machine" (allowed only when that is the
    hub's machine) and who may act for the participant without its secret."""
    seat_holders: dict[str, str] = field(default_factory=dict)
    """The client address that took each seat (a web page's too, unlike ``joined_from``),
    for the per-address seat quota."""
    joining: set[str] = field(default_factory=set)
    """Ids whose join is being written: they count against the participant cap, so
    concurrent joins cannot overshoot it."""
    idle_since: int | None = None
    """Since when no participant has been online (ms); the room expires after a while."""
    deleted: bool = False

    @property
    def code(self) -> str:
        return self.stored.code

    @property
    def has_password(self) -> bool:
        return self.stored.password_hash is not None

    def public_info(self) -> RoomInfo:
        """The room as clients see it: ``hasPassword`` instead of the hash."""
        s = self.stored
        return RoomInfo(
            id=s.id, code=s.code, name=s.name, hostId=s.host_id, createdAt=s.created_at,
            hasPassword=self.has_password,
        )

    def online_participants(self) -> list[ParticipantInfo]:
        return [p for p in self.participants.values() if p["status"] == "online"]

    def tunnel_token_matches(self, participant_id: str, token: str) -> bool:
        participant = self.participants.get(participant_id)
        if participant is None or participant["transport"] != "tunnel":
            return False
        return secret_matches(self.secret_hashes.get(participant_id), token)

    def may_act_for(self, participant_id: str, secret: str | None, peer: str | None) -> bool:
        """Whether a caller may re-join, heartbeat or remove ``participant_id``: it holds
        the participant's secret, or calls from the address that joined it (the original
        Gambiarra clients know no secret, and re-join from the same machine).

        ``peer`` is ``None`` for a web page (see ``api/routes.py``), whose address proves
        nothing. Participants stored by an older hub have neither secret nor address; they
        stay open to non-browser callers, as they were, until their next join binds them."""
        if secret_matches(self.secret_hashes.get(participant_id), secret):
            return True
        joined_from = self.joined_from.get(participant_id)
        if peer is None:
            return False  # A web page: its address vouches for nobody.
        if joined_from is None:
            return participant_id not in self.secret_hashes
        return joined_from == normalize_peer(peer)
