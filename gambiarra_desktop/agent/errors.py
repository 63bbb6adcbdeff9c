"""The agent's domain errors. The core raises these; :mod:`agent.http_errors` is the one
place that maps them to statuses and the seed's ``{"error": ...}`` shape.

A tool's failure is not an HTTP error: :class:`ToolError` becomes the call's
``tool_result`` output, so the model reads what went wrong and can try again.
"""

from __future__ import annotations

from gambiarra_desktop.hub.errors import HubError

INVALID_JSON = "Invalid JSON body"
MODEL_AND_MESSAGES_REQUIRED = "model and messages are required"
SESSION_NOT_FOUND = "Session not found"
RELAY_NOT_FOUND = "Relay not found"


class AgentError(HubError):
    """Base of the agent API's refusals."""


class AgentForbiddenError(AgentError):
    """Not from this machine, from a web page, or to a foreign ``Host`` (403)."""


class AgentUnauthorizedError(AgentError):
    """No agent token, or a wrong one (401)."""

    def __init__(self) -> None:
        super().__init__("Missing or invalid agent token (Authorization: Bearer <token from"
                         " the agent-token file in the data dir>)")


class AgentNeedsJsonError(AgentError):
    """A body that is not ``application/json`` (415): HTML forms cannot send JSON."""

    def __init__(self, message: str = "Content-Type must be application/json") -> None:
        super().__init__(message)


class InvalidAgentRequestError(AgentError):
    """A body the API cannot act on (400)."""


class SessionNotFoundError(AgentError):
    def __init__(self) -> None:
        super().__init__(SESSION_NOT_FOUND)


class RelayNotFoundError(AgentError):
    def __init__(self) -> None:
        super().__init__(RELAY_NOT_FOUND)


class TooManySessionsError(AgentError):
    """Every session slot is taken (429): each one may hold running commands."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Too many agent sessions at once (limit {limit}); try again later")


class ModelCallError(AgentError):
    """The model server failed or answered something that is not a chat completion; sent
    to the client as an ``error`` event (the stream has started by then)."""


class ToolError(Exception):
    """A tool could not do what it was asked; ``message`` is the model's to read."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
