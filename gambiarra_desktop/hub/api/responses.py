"""JSON responses, errors in the seed format, and the CORS and error middleware.

Every error the hub sends is built here as ``{"error": message}``, so no handler can leak a
traceback or an HTML error page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from gambiarra_desktop.accounting import errors as accounting_errors
from gambiarra_desktop.gateway import errors as gateway_errors
from gambiarra_desktop.hub import errors
from gambiarra_desktop.hub.api import body_checks
from gambiarra_desktop.hub.api.body_budget import BODY_BUDGET
from gambiarra_desktop.hub.api.private_origins import is_private_origin
from gambiarra_desktop.terminal import errors as terminal_errors
from gambiarra_desktop.terminal.paths import is_terminal_path

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"
CORS_ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
"""Seed 000's exact value for the room API."""
GATEWAY_CORS_ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
"""The gateway's paths (``/v1/...``) also take ``PUT`` (seed 002's model updates)."""
CORS_ALLOW_HEADERS = "Content-Type, Authorization"

STATUS_MESSAGES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
    429: "Too many requests",
    431: "Request header fields too large",
    500: "Internal server error",
    503: "Service unavailable",
}


BUSY_READING = "The hub is busy reading other requests; try again later"
BUSY_RETRY_AFTER_S = 2
"""What a client turned away for the body budget is told to wait: the bodies being read
finish within their deadline, most far sooner."""


DOMAIN_STATUSES: tuple[tuple[type[errors.HubError], int], ...] = (
    (terminal_errors.TerminalDisabledError, 403),
    (terminal_errors.TerminalForbiddenError, 403),
    (terminal_errors.TerminalNeedsJsonError, 415),
    (terminal_errors.SessionNotFoundError, 404),
    (terminal_errors.SessionEndedError, 409),
    (terminal_errors.InvalidSessionRequestError, 400),
    (terminal_errors.NotSupportedHereError, 400),
    (terminal_errors.TargetRefusedError, 403),
    (terminal_errors.TargetUnreachableError, 502),
    (terminal_errors.HostKeyUnknownError, 409),
    (terminal_errors.HostKeyMismatchError, 409),
    (terminal_errors.SshAuthError, 403),
    (terminal_errors.ApprovalDeniedError, 403),
    (accounting_errors.InvalidApiKeyError, 401),
    (accounting_errors.ApiKeyRequiredError, 401),
    (accounting_errors.KeyNotValidHereError, 403),
    (accounting_errors.ApiKeyNotFoundError, 404),
    (accounting_errors.TooManyKeysError, 400),
    (accounting_errors.RateLimitedError, 429),
    (accounting_errors.BudgetExceededError, 429),
    (gateway_errors.InvalidCredentialsError, 401),
    (gateway_errors.AuthenticationRequiredError, 401),
    (gateway_errors.InvalidTokenError, 401),
    (gateway_errors.CrossOriginLoginError, 403),
    (gateway_errors.InvalidFieldError, 400),
    (gateway_errors.ModelNotFoundError, 404),
    (gateway_errors.ProviderNotFoundError, 404),
    (gateway_errors.DuplicateModelError, 409),
    (gateway_errors.NoModelAvailableError, 503),
    (gateway_errors.AllModelsFailedError, 502),
    (errors.RoomNotFoundError, 404),
    (errors.ParticipantNotFoundError, 404),
    (errors.NoParticipantError, 404),
    (errors.ParticipantOfflineError, 503),
    (errors.ProxyFailedError, 502),
    (errors.RequestLoopError, 508),
    (errors.InvalidPasswordError, 401),
    (errors.NotYourParticipantError, 403),
    (errors.NotRoomOwnerError, 403),
    (errors.RetryLaterError, 429),
)
"""The core's errors as HTTP statuses (issue 12's terminal, issue 11's keys and limits,
seed 000's table, then the gateway's of seed 002), most specific first."""


def domain_error_response(error: errors.HubError) -> web.Response:
    """The one mapping from a domain error to a seed-format HTTP error: ``{"error"}``, and
    for the gateway's errors ``{"error", "details"}`` (seed 002's form)."""
    status = next((code for kind, code in DOMAIN_STATUSES if isinstance(error, kind)), 400)
    headers: dict[str, str] = {}
    if isinstance(error, errors.RetryLaterError):
        headers["Retry-After"] = str(error.retry_after_s)
    if isinstance(error, accounting_errors.RateLimitedError):
        headers.update(error.headers)  # X-RateLimit-* of the refusing rule.
    if status == 401 and isinstance(error, gateway_errors.GatewayError):
        headers["WWW-Authenticate"] = "Bearer"
    details = getattr(error, "details", None)
    if details:
        response = json_response({"error": error.message, "details": details}, status)
        response.headers.update(headers)
        return response
    return error_response(status, error.message, headers)


class ApiError(Exception):
    """Raised by handlers and helpers; the middleware turns it into a seed-format error."""

    def __init__(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def dump_json(data: Any) -> bytes:
    """Compact UTF-8 JSON, the same bytes ``JSON.stringify`` gives the TypeScript hub's
    clients. orjson, because the chat path parses and re-encodes every request body."""
    return orjson.dumps(data)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=dump_json(data), status=status, content_type=JSON_CONTENT_TYPE, charset="utf-8"
    )


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    response = json_response({"error": message}, status)
    response.headers.update(headers or {})
    return response


def raw_error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> bytes:
    """A whole HTTP/1.1 error response as bytes, for a connection refused before aiohttp
    reads a request from it (see ``connections.py``); it then closes."""
    body = dump_json({"error": message})
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"Content-Type: {JSON_CONTENT_TYPE}; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Access-Control-Allow-Origin: *",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


JSON_BODY_KEY: web.RequestKey[dict[str, Any]] = web.RequestKey("gambiarra.json_body", dict)
"""The parsed body, once read: admission (a tpm key's estimate) and the route both need it,
and parsing it twice cost every keyed chat a second depth scan and decode."""


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or an :class:`ApiError` that says what is wrong.

    The read is bounded in time and in hub-wide memory (see ``body_budget.py``): a declared
    length over the limit is refused before any byte is read, the hub's budget is reserved
    for the body before reading it (503 when spent), and the whole body must arrive within
    the deadline (408). Read once per request; later calls get the same object."""
    if JSON_BODY_KEY in request:
        return request[JSON_BODY_KEY]
    budget = request.config_dict[BODY_BUDGET]
    declared = request.content_length
    if declared is not None and declared > budget.max_body_bytes:
        raise ApiError(413, _too_large_message(request))
    size = budget.size_to_reserve(declared)
    if not budget.try_reserve(size):
        raise ApiError(503, BUSY_READING, {"Retry-After": str(BUSY_RETRY_AFTER_S)})
    try:
        if request.content.is_eof():  # All of it is here already: no timer to arm.
            raw = await request.read()
        else:
            async with asyncio.timeout(budget.timeout_s):
                raw = await request.read()
    except TimeoutError as exc:
        raise ApiError(
            408, body_too_slow_message(budget.timeout_s)) from exc
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError(413, _too_large_message(request)) from exc
    finally:
        budget.release(size)
    value = parse_json_object(raw)
    request[JSON_BODY_KEY] = value
    return value


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A body's bytes as a JSON object, or the :class:`ApiError` that says what is wrong
    (shared by aiohttp's routes and the hub's own chat front end)."""
    if body_checks.json_depth_exceeds(raw):
        raise ApiError(400, body_checks.TOO_DEEP)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "Invalid JSON body") from exc
    if not isinstance(value, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return value


def body_too_slow_message(timeout_s: float) -> str:
    return f"Request body took too long (limit {timeout_s:g} s)"


def body_too_large_message(max_body_bytes: int) -> str:
    return f"Request body too large (limit is {max_body_bytes} bytes)"


def _too_large_message(request: web.Request) -> str:
    return body_too_large_message(request.app._client_max_size)


def _preflight(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = (
        GATEWAY_CORS_ALLOW_METHODS if request.path.startswith("/v1/") else CORS_ALLOW_METHODS)
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
    if (request.headers.get("Access-Control-Request-Private-Network", "").lower() == "true"
            and is_private_origin(request.headers.get("Origin", ""))):
        # Chrome's Private Network Access: a page may reach a LAN hub only when the hub
        # opts in on the preflight, and it does so only for pages on a private network.
        response.headers["Access-Control-Allow-Private-Network"] = "true"
    return response


def _body_refusal(request: web.Request) -> ApiError | None:
    """Bodies the hub never reads: compressed ones (415, not inflated), and non-JSON ones
    on writes, which a browser could otherwise send cross-origin without a preflight."""
    message = body_checks.encoding_refusal(request.headers)
    if message is None:
        message = body_checks.media_type_refusal(request.method, request.headers)
    return None if message is None else ApiError(415, message)


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer preflights, and turn every failure into a JSON error with the right status."""
    if request.method == "OPTIONS":
        if is_terminal_path(request.path):  # No web page may call these: no preflight.
            return domain_error_response(terminal_errors.TerminalForbiddenError(
                "web pages may not use terminal sessions"))
        return _preflight(request)
    try:
        refusal = _body_refusal(request)
        if refusal is not None:
            raise refusal
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = STATUS_MESSAGES.get(exc.status, exc.reason)
        if exc.status == 413:
            message = _too_large_message(request)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        _log_refusal(request.method, request.raw_path, request.remote, exc.status, message)
        return error_response(exc.status, message, headers)
    except ConnectionResetError:  # The client left; there is no one to answer.
        raise
    except Exception as exc:
        return error_reply(exc, request.method, request.raw_path, request.remote)


def error_reply(exc: Exception, method: str, path: str, remote: str | None) -> web.Response:
    """The one mapping from what a handler raised to the error the client gets: refusals
    and domain errors in the seed format with their status; anything unforeseen is logged
    with its traceback and answered 500, never shown."""
    if isinstance(exc, ApiError):
        _log_refusal(method, path, remote, exc.status, exc.message)
        return error_response(exc.status, exc.message, exc.headers)
    if isinstance(exc, errors.HubError):
        response = domain_error_response(exc)
        _log_refusal(method, path, remote, response.status, exc.message)
        return response
    log.error("unexpected error handling %s %s", method, path, exc_info=exc)
    return error_response(500, STATUS_MESSAGES[500])


def _log_refusal(method: str, path: str, remote: str | None, status: int,
                 message: str) -> None:
    """Bad input is the client's mistake, not the hub's: one line at DEBUG, no traceback
    (a flood of bad requests must not flood the log)."""
    log.debug("%s %.200r from %s: %d %s", method, path, remote, status, message)


async def add_cors_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: CORS on every response, streams and errors included,
    except the terminal's (security rule 2: no web page may read them)."""
    if is_terminal_path(request.path):
        return
    response.headers["Access-Control-Allow-Origin"] = "*"
