"""Wire constants and types of the Gambiarra hub API.

Everything here is fixed by the seed contract (``shared/seeds/000_*`` and ``001_*``) or by
the TypeScript Gambiarra it mirrors, so it is named once and imported everywhere else. The
error texts are byte-for-byte the seed's: clients match on them.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

PROTOCOL_VERSION = "1.0"
DEFAULT_PORT = 3000
DEFAULT_HOST = "0.0.0.0"  # noqa: S104 - the hub is a LAN service by design (seed 000).

HEALTH_CHECK_INTERVAL_S = 10.0
"""How often the hub looks for participants that stopped sending health calls."""
PARTICIPANT_TIMEOUT_S = HEALTH_CHECK_INTERVAL_S * 3
"""A participant silent for longer than this is marked offline (three missed checks)."""
SSE_HEARTBEAT_S = 15.0
"""Comment lines keep idle event streams open through proxies and client timeouts."""

ROOM_CODE_LENGTH = 6
ROOM_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""Upper-case letters and digits without the look-alikes 0/O and 1/I, read aloud easily."""

MDNS_SERVICE_TYPE = "_gambiarra._tcp.local."

MAX_CONCURRENT = 64
"""The most requests one participant may be given at once (``config.maxConcurrent``)."""

ANY_MODEL_ALIASES = frozenset({"*", "any"})
MODEL_PREFIX = "model:"

ParticipantStatus = Literal["online", "busy", "offline"]
Transport = Literal["direct", "tunnel"]
"""How the hub reaches a participant's model: by dialing its endpoint (``direct``), or
through the WebSocket the participant opened to the hub (``tunnel``)."""

TUNNEL_PATH_SUFFIX = "/tunnel"
PARTICIPANT_HEADER = "X-Gambiarra-Participant"
"""On a room's chat reply: the id of the participant that answered (``%``-encoded where
needed). Clients (the Playground, the agent) name who answered from it."""
TUNNEL_PARTICIPANT_HEADER = PARTICIPANT_HEADER
"""On the tunnel's opening request: which participant the tunnel belongs to."""
MODEL_HEADER = "X-Gambiarra-Model"
"""On a gateway reply: the gateway model that answered."""
QUEUE_MS_HEADER = "X-Gambiarra-Queue-Ms"
"""On a room's chat reply: how long the request waited for a free model."""
REQUEST_ID_HEADER = "X-Request-Id"
"""A client's name for its request, echoed in the room's queue events (extension)."""
PARTICIPANT_SECRET_HEADER = "X-Gambiarra-Participant-Secret"  # noqa: S105 - a header name.
"""Extension: proves a leave, health call or re-join comes from whoever joined the id. The
join reply's ``participantSecret`` goes here (the original clients, which have none, are
recognised by their address instead)."""


class ErrorText:
    """The seed's error messages, exactly as clients expect them."""

    ROOM_NOT_FOUND = "Room not found"
    MISSING_JOIN_FIELDS = "Missing required fields: id, nickname, model, endpoint"
    INVALID_PASSWORD = "Invalid password"  # noqa: S105 - a message, not a secret.
    PARTICIPANT_NOT_FOUND = "Participant not found"
    PARTICIPANT_ID_REQUIRED = "Participant ID is required"
    PARTICIPANT_OFFLINE = "Participant is offline"
    NO_PARTICIPANT = "No available participant for the requested model"
    PROXY_FAILED_PREFIX = "Failed to proxy request: "
    NAME_REQUIRED = "Name is required"
    TUNNEL_NOT_CONNECTED = "the participant's tunnel is not connected"
    INVALID_TUNNEL_TOKEN = "Invalid tunnel token"  # noqa: S105 - a message, not a secret.
    # Extensions to the seed (this hub's ownership rules):
    NOT_YOUR_PARTICIPANT = (
        "This participant id belongs to someone else: send its participantSecret"
        " in X-Gambiarra-Participant-Secret, or use the address it joined from"
    )
    NOT_ROOM_OWNER = (
        "Only the room's creator (Authorization: Bearer <creatorSecret>) or the hub's owner"
        " can delete this room"
    )


class RoomInfo(TypedDict):
    """A room as the API shows it: never with its password hash."""

    id: str
    code: str
    name: str
    hostId: str
    createdAt: int
    hasPassword: bool


class RoomListEntry(RoomInfo):
    participantCount: int


class ParticipantInfo(TypedDict):
    """A participant as stored and returned by the hub (seed 001)."""

    id: str
    nickname: str
    model: str
    endpoint: str
    specs: dict[str, Any]
    config: dict[str, Any]
    status: ParticipantStatus
    joinedAt: int
    lastSeen: int
    transport: Transport


class LlmMetrics(TypedDict):
    tokens: int
    latencyFirstTokenMs: float
    durationMs: float
    tokensPerSecond: float


class ModelEntry(TypedDict):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    gambiarra: NotRequired[dict[str, Any]]
