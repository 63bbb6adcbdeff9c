"""HTTP handlers of the hub API. Short on purpose: validate, call the core, shape the reply."""

from __future__ import annotations

from aiohttp import web

from gambiarra_desktop.accounting.caller import ChatCall
from gambiarra_desktop.hub.api import room_chat, validation
from gambiarra_desktop.hub.api.bearer import bearer_value
from gambiarra_desktop.hub.api.prometheus import render_metrics
from gambiarra_desktop.hub.api.responses import ApiError, json_response, read_json_object
from gambiarra_desktop.hub.api.room_chat import open_room
from gambiarra_desktop.hub.keys import (
    PASSWORDS,
    PROXY,
    REGISTRY,
    SCHEDULER,
    STATS,
    STREAMS,
    TUNNELS,
)
from gambiarra_desktop.hub.proxy.capacity import declared_source
from gambiarra_desktop.hub.proxy.reply import AiohttpStreamOut
from gambiarra_desktop.hub.rooms.room import JoinRequest, Room
from gambiarra_desktop.protocol import (
    PARTICIPANT_SECRET_HEADER,
    TUNNEL_PARTICIPANT_HEADER,
    ErrorText,
    ModelEntry,
    ParticipantInfo,
)

routes = web.RouteTableDef()


def _room(request: web.Request) -> Room:
    return request.app[REGISTRY].require(request.match_info["code"])


def _bearer(request: web.Request) -> str | None:
    return bearer_value(request.headers)


async def _open_room(request: web.Request) -> Room:
    """The room of the path, for using it (see :func:`room_chat.open_room`)."""
    return await open_room(request.app, ChatCall.of(request), request.match_info["code"])


def _vouching_peer(request: web.Request) -> str | None:
    """The socket's peer address, when it may vouch for the caller; ``None`` for a web page.

    A browser adds ``Origin`` to every cross-origin request (and to same-origin POSTs): such
    a request runs in somebody's browser, so its address is the *visitor's*, not the page
    author's. It must not act for the participants that visitor's machine joined, nor count
    as "on the hub's machine" (which would let any page opened there point a participant at
    the hub machine's loopback). Such callers use the participant secret instead."""
    return None if "Origin" in request.headers else request.remote


def _participant_secret(request: web.Request) -> str | None:
    return request.headers.get(PARTICIPANT_SECRET_HEADER) or None


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: rooms, participants, per-participant work and queues."""
    app = request.app
    text = render_metrics(app[REGISTRY], app[STATS], app[SCHEDULER])
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


@routes.post("/rooms")
async def create_room(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    name = validation.room_name(body)
    password = validation.room_password(body)
    created = await request.app[REGISTRY].create(name, password, request.remote)
    # "creatorSecret" is an extension: shown once, it lets the creator delete the room.
    return json_response({"room": created.room.public_info(), "hostId": created.host_id,
                          "creatorSecret": created.creator_secret}, 201)


@routes.delete("/rooms/{code}")
async def delete_room(request: web.Request) -> web.Response:
    """Extension to the seed: the room's creator or the hub's owner deletes a room."""
    room = _room(request)
    await request.app[REGISTRY].delete(room, _bearer(request))
    return json_response({"success": True})


@routes.get("/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    return json_response({"rooms": request.app[REGISTRY].list_rooms()})


@routes.post("/rooms/{code}/join")
async def join_room(request: web.Request) -> web.Response:
    room = _room(request)
    body = await read_json_object(request)
    transport = validation.transport(body)
    fields = validation.join_fields(body)
    password = validation.optional_string(body, "password") or ""
    join = JoinRequest(
        **fields,
        specs=validation.optional_object(body, "specs"),
        config=validation.optional_object(body, "config"),
        transport=transport,
        joined_from=_vouching_peer(request),
        client_address=request.remote,
        secret=_participant_secret(request),
    )
    concurrency = validation.max_concurrent(join.config)
    await request.app[PASSWORDS].check(room, password, request.remote)
    await validation.check_endpoint(join.endpoint, join.joined_from, transport == "tunnel",
                                    request.app[PROXY].policy)
    joined = await request.app[REGISTRY].join(room, join)
    request.app[STATS].get(room.code, join.id).capacity.configure(
        concurrency, declared_source(join.config))
    request.app[SCHEDULER].dispatch(room.code)  # New capacity for queued requests.
    if transport != "tunnel":
        request.app[TUNNELS].drop(room.code, join.id)  # Now direct: its old tunnel is void.
    # Extras to the seed's fields: the participant's secret (for leave, health and
    # re-join from elsewhere) and, for tunnel participants, the same secret as the token
    # that opens its tunnel.
    reply: dict[str, object] = {"participant": joined.participant, "roomId": room.stored.id,
                                "participantSecret": joined.secret}
    if transport == "tunnel":
        reply["tunnelToken"] = joined.secret
    return json_response(reply, 201)


@routes.delete("/rooms/{code}/leave/{participant_id}")
async def leave_room(request: web.Request) -> web.Response:
    room = _room(request)
    participant_id = request.match_info["participant_id"]
    await request.app[REGISTRY].leave(
        room, participant_id, _participant_secret(request), _vouching_peer(request))
    request.app[TUNNELS].drop(room.code, participant_id)
    request.app[STATS].forget(room.code, participant_id)
    return json_response({"success": True})


@routes.post("/rooms/{code}/health")
async def participant_health(request: web.Request) -> web.Response:
    room = _room(request)
    body = await read_json_object(request)
    participant_id = body.get("id")
    if not participant_id:
        raise ApiError(400, ErrorText.PARTICIPANT_ID_REQUIRED)
    if not isinstance(participant_id, str):
        raise ApiError(400, "Invalid field: id must be a string")
    loading = body.get("loading") is True  # Extra to the seed: "still loading my model".
    # Extra to the seed: "serving": false, "my model server does not answer" (offline
    # until a health call without it); a seed client never sends it, so it stays served.
    serving = body.get("serving") is not False
    await request.app[REGISTRY].heartbeat(
        room, participant_id, loading, _participant_secret(request), _vouching_peer(request),
        serving=serving)
    request.app[SCHEDULER].dispatch(room.code)
    return json_response({"success": True})


@routes.get("/rooms/{code}/participants")
async def list_participants(request: web.Request) -> web.Response:
    room = await _open_room(request)
    stats = request.app[STATS]
    participants = [
        {**p, "loading": p["id"] in room.loading,
         "metrics": stats.get(room.code, p["id"]).snapshot()}
        for p in room.participants.values()
    ]
    # Seed fields first, as stored; "loading", "metrics" and "queue" are extras.
    return json_response({"participants": participants,
                          "queue": {"waiting": request.app[SCHEDULER].waiting(room.code)}})


@routes.get("/rooms/{code}/v1/models")
async def list_models(request: web.Request) -> web.Response:
    room = await _open_room(request)
    online = room.online_participants()
    # Participant entries exactly as the original hub lists them. Then one entry per model
    # name, so a client that picks by model name (a dropdown, the openai SDK) finds it.
    # gambiarra-sdk's listModels() reads the "gambiarra" block of every entry, so a
    # model-name entry carries one as well, from the first participant (earliest to join)
    # serving that model: a real nickname and endpoint, never an empty one. Its owned_by
    # names everyone serving the model.
    entries = [(p["id"], p, p["nickname"]) for p in online]
    serving: dict[str, list[ParticipantInfo]] = {}
    for p in sorted(online, key=lambda p: p["joinedAt"]):
        serving.setdefault(p["model"], []).append(p)
    entries += [(name, ps[0], ", ".join(p["nickname"] for p in ps))
                for name, ps in serving.items()
                if name not in room.participants]  # An id wins over a model name.
    models = [
        ModelEntry(
            id=entry_id, object="model", created=p["joinedAt"] // 1000, owned_by=owners,
            gambiarra={"nickname": p["nickname"], "model": p["model"], "endpoint": p["endpoint"]},
        )
        for entry_id, p, owners in entries
    ]
    return json_response({"object": "list", "data": models})


@routes.post("/rooms/{code}/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    """Usually served by the hub's front end (``hub/front/``); aiohttp serves the requests
    the front end hands over (chunked bodies, ``Expect``, a connection that began with
    another route), through the same steps."""
    call = ChatCall.of(request)
    out = AiohttpStreamOut(request)
    answer = await room_chat.chat(request.app, call, request.match_info["code"],
                                  lambda: read_json_object(request), out)
    return answer if answer is not None else out.response


@routes.get("/rooms/{code}/tunnel")
async def tunnel(request: web.Request) -> web.StreamResponse:
    """A participant's outbound WebSocket: the hub sends it chat requests for its model."""
    room = _room(request)
    participant_id = request.headers.get(TUNNEL_PARTICIPANT_HEADER, "")
    participant = room.participants.get(participant_id)
    if participant is None:
        raise ApiError(404, ErrorText.PARTICIPANT_NOT_FOUND)
    if not room.tunnel_token_matches(participant_id, _bearer(request) or ""):
        raise ApiError(401, ErrorText.INVALID_TUNNEL_TOKEN)
    # An authenticated tunnel is as good a sign of life as a health call.
    await request.app[REGISTRY].heartbeat(room, participant_id, trusted=True)
    return await request.app[TUNNELS].serve(request, room.code, participant_id)


@routes.get("/rooms/{code}/events")
async def room_events(request: web.Request) -> web.StreamResponse:
    room = await _open_room(request)
    return await request.app[STREAMS].handle(request, room.code)
