"""The ``/chat`` and ``/chat/relay`` bodies, checked before anything starts: a bad body is
a 400 with a clear message, never a stream that dies later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gambiarra_desktop.agent.config import MAX_ITERATIONS_CAP
from gambiarra_desktop.agent.errors import (
    MODEL_AND_MESSAGES_REQUIRED,
    InvalidAgentRequestError,
)
from gambiarra_desktop.agent.orchestrator import RunSettings
from gambiarra_desktop.agent.permissions import request_permissions
from gambiarra_desktop.agent.relays import RelayAnswer

MAX_MESSAGES = 500
MAX_MODEL_CHARS = 256
MAX_REASON_CHARS = 1000
ROLES = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True, slots=True)
class ChatPlan:
    messages: list[dict[str, Any]]
    settings: RunSettings


def chat_plan(body: dict[str, Any], default_model: str | None,
              default_iterations: int) -> ChatPlan:
    model = body.get("model") or default_model
    messages = body.get("messages")
    if not model or not messages:
        raise InvalidAgentRequestError(MODEL_AND_MESSAGES_REQUIRED)
    if not isinstance(model, str) or len(model) > MAX_MODEL_CHARS:
        raise InvalidAgentRequestError(f"model must be a name of at most {MAX_MODEL_CHARS}"
                                       " characters")
    if not isinstance(messages, list) or len(messages) > MAX_MESSAGES:
        raise InvalidAgentRequestError(f"messages must be a list of at most {MAX_MESSAGES}"
                                       " messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise InvalidAgentRequestError(
                f"messages[{index}] must be an object with a role ({', '.join(sorted(ROLES))})")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidAgentRequestError(f"messages[{index}].content must be text or a"
                                           " list of parts")
    iterations = body.get("maxIterations", default_iterations)
    if iterations is None:
        iterations = default_iterations
    if not isinstance(iterations, int) or isinstance(iterations, bool) \
            or not 1 <= iterations <= MAX_ITERATIONS_CAP:
        raise InvalidAgentRequestError(
            f"maxIterations must be a whole number from 1 to {MAX_ITERATIONS_CAP}")
    return ChatPlan([dict(message) for message in messages],
                    RunSettings(model, iterations, request_permissions(body.get("permissions"))))


def relay_session_id(body: dict[str, Any]) -> str:
    session_id = body.get("sessionId")
    if not isinstance(session_id, str) or not session_id:
        raise InvalidAgentRequestError("sessionId is required")
    return session_id


def relay_answer(body: dict[str, Any]) -> RelayAnswer:
    """``{"approved": true, "always"?: true}`` or ``{"approved": false, "reason"?}``."""
    response = body.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("approved"), bool):
        raise InvalidAgentRequestError(
            'response must be {"approved": true|false, "always"?: true, "reason"?: "..."}')
    always = response.get("always", False)
    reason = response.get("reason")
    if not isinstance(always, bool):
        raise InvalidAgentRequestError("response.always must be true or false")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS):
        raise InvalidAgentRequestError(f"response.reason must be text of at most"
                                       f" {MAX_REASON_CHARS} characters")
    if response["approved"]:
        return RelayAnswer(True, always=always)
    return RelayAnswer(False, reason=reason or None)
