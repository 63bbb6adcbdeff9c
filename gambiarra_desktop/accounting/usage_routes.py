"""HTTP handlers of the usage ledger: ``/v1/usage``, the admin's ``/v1/events`` and what a
participant's machine served. Short on purpose: who may read, then one query.

Who may read what:
- ``GET /v1/usage``: the admin token reads everything; a key (``Bearer gk-...``) reads only
  its own rows, whatever ``groupBy`` it asks for; anyone else: 401.
- A participant's usage: that participant's secret (``X-Gambiarra-Participant-Secret``) or
  the admin token. It names who used the machine, so a room's other members may not read it.
- ``GET /v1/events``: the admin token. It is the room event stream's machinery (its caps,
  its heartbeat, its end at shutdown) listening on the scope ``""`` that room events never
  use; ``cost:alert`` is published there and reaches no room's stream.
"""

from __future__ import annotations

from aiohttp import web

from gambiarra_desktop.accounting.api_keys import looks_like_key
from gambiarra_desktop.accounting.service import ACCOUNTING
from gambiarra_desktop.accounting.usage_queries import (
    group_by_of,
    parse_window,
    participant_people,
    usage_report,
)
from gambiarra_desktop.gateway.errors import AuthenticationRequiredError
from gambiarra_desktop.gateway.routes import require_admin
from gambiarra_desktop.hub.api.bearer import bearer_value
from gambiarra_desktop.hub.api.responses import json_response
from gambiarra_desktop.hub.errors import NotYourParticipantError
from gambiarra_desktop.hub.keys import REGISTRY, STREAMS
from gambiarra_desktop.hub.rooms.room import secret_matches
from gambiarra_desktop.protocol import PARTICIPANT_SECRET_HEADER

GATEWAY_EVENT_SCOPE = ""
"""The event scope of gateway-wide events (room codes are never empty)."""

routes = web.RouteTableDef()


async def _reader_key_id(request: web.Request) -> str | None:
    """``None`` for the admin (everything), else the id of the key that asks."""
    bearer = bearer_value(request.headers)
    if bearer is None:
        raise AuthenticationRequiredError
    if looks_like_key(bearer):
        return request.app[ACCOUNTING].keys.authenticate(bearer).id
    await require_admin(request)
    return None


@routes.get("/v1/usage")
async def usage(request: web.Request) -> web.Response:
    key_id = await _reader_key_id(request)
    query = request.query
    group_by = group_by_of(query.get("groupBy"))
    window = parse_window(query.get("from"), query.get("to"))
    data = await usage_report(request.app[ACCOUNTING].ledger, group_by, window, key_id)
    return json_response({"groupBy": group_by, "from": window.from_ms, "to": window.to_ms,
                          "data": data})


@routes.get("/v1/events")
async def gateway_events(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    return await request.app[STREAMS].handle(request, GATEWAY_EVENT_SCOPE)


@routes.get("/rooms/{code}/participants/{id}/usage")
async def participant_usage(request: web.Request) -> web.Response:
    room = request.app[REGISTRY].require(request.match_info["code"])
    participant_id = request.match_info["id"]
    secret = request.headers.get(PARTICIPANT_SECRET_HEADER)
    if secret:
        if not secret_matches(room.secret_hashes.get(participant_id), secret):
            raise NotYourParticipantError
    elif bearer_value(request.headers) is None:
        raise AuthenticationRequiredError
    else:
        await require_admin(request)
    people = await participant_people(request.app[ACCOUNTING].ledger, room.code,
                                      participant_id)
    return json_response({"participantId": participant_id, "people": people})
