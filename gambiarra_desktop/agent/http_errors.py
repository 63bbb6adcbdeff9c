"""The one place the agent API's errors become HTTP statuses, in the seed's shape
``{"error": message}``; anything unexpected is a logged 500 with no traceback sent."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from gambiarra_desktop.agent import errors
from gambiarra_desktop.agent.guard import admit
from gambiarra_desktop.agent.keys import TOKEN
from gambiarra_desktop.hub.api.responses import STATUS_MESSAGES, ApiError, error_response

log = logging.getLogger(__name__)

STATUSES: tuple[tuple[type[errors.AgentError], int], ...] = (
    (errors.AgentForbiddenError, 403),
    (errors.AgentUnauthorizedError, 401),
    (errors.AgentNeedsJsonError, 415),
    (errors.InvalidAgentRequestError, 400),
    (errors.SessionNotFoundError, 404),
    (errors.RelayNotFoundError, 404),
    (errors.TooManySessionsError, 429),
    (errors.ModelCallError, 502),
)


def agent_error_response(error: errors.AgentError) -> web.Response:
    status = next((code for kind, code in STATUSES if isinstance(error, kind)), 400)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429:
        headers = {"Retry-After": "5"}
    return error_response(status, error.message, headers)


@web.middleware
async def agent_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        admit(request, request.app[TOKEN])
        return await handler(request)
    except errors.AgentError as exc:
        return agent_error_response(exc)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:  # 404/405/413 from aiohttp itself, as JSON.
        if exc.status < 400:
            raise
        return error_response(exc.status, STATUS_MESSAGES.get(exc.status, exc.reason))
    except Exception:
        log.exception("agent API request failed: %s %s", request.method, request.path)
        return error_response(500, "Internal server error")
