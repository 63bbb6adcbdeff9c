"""HTTP handlers of the hub API. Short on purpose: validate, call the core, shape the reply."""

from __future__ import annotations

from aiohttp import web

from gambiarra_desktop.hub import validation
from gambiarra_desktop.hub.identifiers import now_ms
from gambiarra_desktop.hub.keys import (
    CONFIG,
    PROXY,
    REGISTRY,
    SCHEDULER,
    STATS,
    STREAMS,
    TUNNELS,
)
from gambiarra_desktop.hub.prometheus import render_metrics
from gambiarra_desktop.hub.responses import ApiError, json_response, read_json_object
from gambiarra_desktop.hub.rooms import JoinRequest, Room
from gambiarra_desktop.hub.router import match_request
from gambiarra_desktop.protocol import (
    TUNNEL_PARTICIPANT_HEADER,
    ErrorText,
    ModelEntry,
    ParticipantInfo,
)

routes = web.RouteTableDef()


def _room(request: web.Request) -> Room:
    room = request.app[REGISTRY].get(request.match_info["code"])
    if room is None:
        raise ApiError(404, ErrorText.ROOM_NOT_FOUND)
    return room


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "timestamp": now_ms()})


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
    password = validation.optional_string(body, "password")
    registry, limit = request.app[REGISTRY], request.app[CONFIG].max_rooms
    if len(registry) >= limit:
        raise ApiError(429, f"This hub already holds its limit of {limit} rooms")
    room, host_id = await registry.create(name, password)
    return json_response({"room": room.public_info(), "hostId": host_id}, 201)


@routes.get("/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    return json_response({"rooms": request.app[REGISTRY].list_rooms()})


@routes.post("/rooms/{code}/join")
async def join_room(request: web.Request) -> web.Response:
    room = _room(request)
    body = await read_json_object(request)
    transport = validation.transport(body)
    fields = validation.join_fields(body, request.remote, via_tunnel=transport == "tunnel")
    password = validation.optional_string(body, "password") or ""
    join = JoinRequest(
        **fields,
        specs=validation.optional_object(body, "specs"),
        config=validation.optional_object(body, "config"),
        transport=transport,
        joined_from=request.remote,
    )
    concurrency = validation.max_concurrent(join.config)
    registry = request.app[REGISTRY]
    if not await registry.check_password(room, password):
        raise ApiError(401, ErrorText.INVALID_PASSWORD)
    limit = request.app[CONFIG].max_participants_per_room
    if join.id not in room.participants and len(room.participants) >= limit:
        raise ApiError(429, f"This room already holds its limit of {limit} participants")
    joined = await registry.join(room, join)
    request.app[STATS].get(room.code, join.id).max_concurrent = concurrency
    request.app[SCHEDULER].dispatch(room.code)  # New capacity for queued requests.
    if joined.tunnel_token is None:
        request.app[TUNNELS].drop(room.code, join.id)  # Now direct: its old tunnel is void.
    reply: dict[str, object] = {"participant": joined.participant, "roomId": room.stored.id}
    if joined.tunnel_token is not None:
        # Extra to the seed's fields: the secret that opens this participant's tunnel.
        reply["tunnelToken"] = joined.tunnel_token
    return json_response(reply, 201)


@routes.delete("/rooms/{code}/leave/{participant_id}")
async def leave_room(request: web.Request) -> web.Response:
    room = _room(request)
    participant_id = request.match_info["participant_id"]
    if not await request.app[REGISTRY].leave(room, participant_id):
        raise ApiError(404, ErrorText.PARTICIPANT_NOT_FOUND)
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
    if not await request.app[REGISTRY].heartbeat(room, participant_id, loading):
        raise ApiError(404, ErrorText.PARTICIPANT_NOT_FOUND)
    request.app[SCHEDULER].dispatch(room.code)
    return json_response({"success": True})


@routes.get("/rooms/{code}/participants")
async def list_participants(request: web.Request) -> web.Response:
    room = _room(request)
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
    room = _room(request)
    online = room.online_participants()
    models: list[ModelEntry] = [
        ModelEntry(
            id=p["id"], object="model", created=p["joinedAt"] // 1000, owned_by=p["nickname"],
            gambiarra={"nickname": p["nickname"], "model": p["model"], "endpoint": p["endpoint"]},
        )
        for p in online
    ]
    # Each distinct model name too, so a client can pick by model name from a dropdown.
    by_name: dict[str, list[str]] = {}
    for p in online:
        by_name.setdefault(p["model"], []).append(p["nickname"])
    for name, nicknames in by_name.items():
        if name in room.participants:
            continue  # A participant id wins over a model name of the same spelling.
        models.append(
            ModelEntry(
                id=name, object="model",
                created=min(p["joinedAt"] for p in online if p["model"] == name) // 1000,
                owned_by=", ".join(nicknames),
            )
        )
    return json_response({"object": "list", "data": models})


@routes.post("/rooms/{code}/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    room = _room(request)
    body = await read_json_object(request)
    tunnels = request.app[TUNNELS]

    def usable(room_code: str, participant: ParticipantInfo) -> bool:
        return participant["id"] not in room.loading and tunnels.reachable(room_code, participant)

    match = match_request(room, validation.requested_model(body), usable)
    return await request.app[PROXY].forward(request, match, body)


@routes.get("/rooms/{code}/tunnel")
async def tunnel(request: web.Request) -> web.StreamResponse:
    """A participant's outbound WebSocket: the hub sends it chat requests for its model."""
    room = _room(request)
    participant_id = request.headers.get(TUNNEL_PARTICIPANT_HEADER, "")
    participant = room.participants.get(participant_id)
    if participant is None:
        raise ApiError(404, ErrorText.PARTICIPANT_NOT_FOUND)
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not room.tunnel_token_matches(participant_id, token):
        raise ApiError(401, ErrorText.INVALID_TUNNEL_TOKEN)
    # An authenticated tunnel is as good a sign of life as a health call.
    await request.app[REGISTRY].heartbeat(room, participant_id)
    return await request.app[TUNNELS].serve(request, room.code, participant_id)


@routes.get("/rooms/{code}/events")
async def room_events(request: web.Request) -> web.StreamResponse:
    room = _room(request)
    return await request.app[STREAMS].handle(request, room.code)
