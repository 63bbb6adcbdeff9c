"""The hub's domain errors: what went wrong in the core, in words, with no HTTP in sight.

Rooms, the router and the scheduler raise these; :mod:`gambiarra_desktop.hub.api.responses`
is the one place that maps them to statuses and the seed's ``{"error": ...}`` shape. Keeping
HTTP out of the core means the GUI and tests can call it directly and still get a typed
reason, and a status code is chosen once rather than in every handler.
"""

from __future__ import annotations

from gambiarra_desktop.protocol import ErrorText


class HubError(Exception):
    """Base of every domain error. ``message`` is what the client reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RetryLaterError(HubError):
    """The hub is busy for this caller; the same request may succeed after a while."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class RoomNotFoundError(HubError):
    def __init__(self) -> None:
        super().__init__(ErrorText.ROOM_NOT_FOUND)


class ParticipantNotFoundError(HubError):
    def __init__(self) -> None:
        super().__init__(ErrorText.PARTICIPANT_NOT_FOUND)


class ParticipantOfflineError(HubError):
    def __init__(self) -> None:
        super().__init__(ErrorText.PARTICIPANT_OFFLINE)


class NoParticipantError(HubError):
    def __init__(self) -> None:
        super().__init__(ErrorText.NO_PARTICIPANT)


class ProxyFailedError(HubError):
    """No participant could answer (seed: 502 ``Failed to proxy request: <details>``)."""

    def __init__(self, details: str) -> None:
        super().__init__(ErrorText.PROXY_FAILED_PREFIX + details)


class RequestLoopError(HubError):
    """The request already passed through this hub: a participant's endpoint leads back."""

    def __init__(self, details: str) -> None:
        super().__init__(ErrorText.PROXY_FAILED_PREFIX + details)


class InvalidPasswordError(HubError):
    def __init__(self) -> None:
        super().__init__(ErrorText.INVALID_PASSWORD)


class NotYourParticipantError(HubError):
    """Someone else's participant id: only the joiner (its secret, or its address) may
    re-join it, send its health or make it leave."""

    def __init__(self) -> None:
        super().__init__(ErrorText.NOT_YOUR_PARTICIPANT)


class NotRoomOwnerError(HubError):
    def __init__(self) -> None:
        super().__init__(ErrorText.NOT_ROOM_OWNER)


class LimitReachedError(RetryLaterError):
    """A hub-wide cap (rooms, participants per room) is full."""


class QueueFullError(RetryLaterError):
    """Every matching participant is busy and the room's queue is full."""


class QueueTimeoutError(RetryLaterError):
    """The request waited in the queue for as long as the hub allows."""


class TooManyPasswordFailuresError(RetryLaterError):
    """This address guessed wrong too often: no more password checks for a while."""
