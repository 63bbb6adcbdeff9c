"""HTTP handlers of seed 002's terminal API: each checks the caller (``guard.admit``),
calls the manager and shapes the seed's reply. Nothing here runs a command itself."""

from __future__ import annotations

from aiohttp import web

from gambiarra_desktop.hub.api.responses import json_response, read_json_object
from gambiarra_desktop.terminal import guard
from gambiarra_desktop.terminal.specs import command_of, data_of

routes = web.RouteTableDef()


@routes.post("/v1/terminal/sessions")
async def create_session(request: web.Request) -> web.Response:
    manager, actor = await guard.admit(request)
    body = await read_json_object(request)
    info = await manager.create(body, actor, peer=request.remote or "")
    return json_response({"session": info.to_json()}, 201)


@routes.get("/v1/terminal/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    manager, _ = await guard.admit(request)
    return json_response({"sessions": [info.to_json() for info in manager.sessions()]})


@routes.post("/v1/terminal/{id}/execute")
async def execute(request: web.Request) -> web.Response:
    manager, actor = await guard.admit(request)
    command, timeout_s = command_of(await read_json_object(request))
    result = await manager.execute(request.match_info["id"], command, actor,
                                   peer=request.remote or "", timeout_s=timeout_s)
    return json_response({"result": result.to_json()})


@routes.post("/v1/terminal/{id}/send")
async def send(request: web.Request) -> web.Response:
    manager, actor = await guard.admit(request)
    data = data_of(await read_json_object(request))
    await manager.send(request.match_info["id"], data, actor, peer=request.remote or "")
    return json_response({"success": True})


@routes.get("/v1/terminal/{id}/output")
async def output(request: web.Request) -> web.Response:
    """The chunks produced since the previous read of this session's output (then gone)."""
    manager, _ = await guard.admit(request)
    return json_response({"output": manager.output(request.match_info["id"])})


@routes.delete("/v1/terminal/{id}")
async def close(request: web.Request) -> web.Response:
    manager, actor = await guard.admit(request)
    await manager.close(request.match_info["id"], actor, peer=request.remote or "")
    return json_response({"success": True})
