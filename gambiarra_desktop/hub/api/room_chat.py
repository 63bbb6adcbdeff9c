"""A room's chat completion, from the opened room to the answer: the steps of
``POST /rooms/{code}/v1/chat/completions``.

Two servers read that route: aiohttp (``routes.py``) and the hub's own front end
(``hub/front/``), which serves it with less work per request. Both run these same steps
(admission, password, body checks, matching, forwarding), so a rule changed here holds for
both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gambiarra_desktop.accounting.caller import ChatCall
from gambiarra_desktop.accounting.service import ACCOUNTING
from gambiarra_desktop.hub.api import validation
from gambiarra_desktop.hub.api.bearer import bearer_value
from gambiarra_desktop.hub.api.responses import ApiError, parse_json_object
from gambiarra_desktop.hub.errors import HubError
from gambiarra_desktop.hub.keys import PASSWORDS, PROXY, REGISTRY, TUNNELS
from gambiarra_desktop.hub.proxy.forward import NowChat, NowDone, PushOut
from gambiarra_desktop.hub.proxy.reply import StreamOut
from gambiarra_desktop.hub.proxy.router import match_request
from gambiarra_desktop.hub.rooms.room import Room
from gambiarra_desktop.protocol import ParticipantInfo

BodyReader = Callable[[], Awaitable[dict[str, Any]]]


async def open_room(app: web.Application, call: ChatCall, code: str,
                    read_body: BodyReader | None = None) -> Room:
    """A room for using it (models, chat, participants, events). Extension to the seed: a
    password room needs its password here too, as ``Authorization: Bearer <password>``,
    or its join password would protect nothing. A ``gk-`` bearer is an API key instead:
    one that lists this room opens it, password or not; a hub-wide one never opens a
    password room. ``read_body``, given for a chat: admit it, counted against the key's rate
    limits (the body gives a tpm key's estimate)."""
    room = app[REGISTRY].require(code)
    accounting = app[ACCOUNTING]
    if read_body is not None:
        caller = await accounting.admit_call(call, read_body, room=room, gateway_root=False,
                                             key_required=False)
    else:
        caller = accounting.identify(call, room)
    if accounting.opens(caller, room):
        return room
    password = None if caller.key is not None else bearer_value(call.headers)
    await app[PASSWORDS].check(room, password, call.remote)
    return room


async def chat(app: web.Application, call: ChatCall, code: str, read_body: BodyReader,
               out: StreamOut, raw: bytes | None = None) -> web.Response | None:
    """Serve one room chat: the whole answer as an unsent response, or ``None`` when it was
    streamed to ``out``. ``raw``: the body's bytes, when the server already holds them."""
    try:
        room = await open_room(app, call, code, read_body)
        body = await read_body()
        match = match_request(room, validation.requested_model(body), _usable(app, room))
        return await app[PROXY].serve(call, match, body, out, raw=raw)
    finally:
        app[ACCOUNTING].settle_tokens()  # A tpm estimate no row replaced goes back.


def chat_now(app: web.Application, call: ChatCall, code: str, raw: bytes, out: StreamOut,
             done: NowDone, push: PushOut | None = None) -> NowChat | None:
    """:func:`chat` with no task, when none of its steps needs waiting: a room without a
    password, a keyless caller no rule limits, and a participant free to answer over an open
    connection (``ChatProxy.serve_now``). ``None``: nothing was done; take :func:`chat`,
    which also gives every refusal its answer."""
    room = app[REGISTRY].get(code)
    if room is None or room.stored.password_hash is not None:
        return None
    if app[ACCOUNTING].admit_now(call, room) is None:
        return None
    try:
        body = parse_json_object(raw)
        match = match_request(room, validation.requested_model(body), _usable(app, room))
        return app[PROXY].serve_now(call, match, body, raw, out, done, push)
    except (ApiError, HubError):
        return None


def _usable(app: web.Application, room: Room) -> Callable[[str, ParticipantInfo], bool]:
    tunnels = app[TUNNELS]

    def usable(room_code: str, participant: ParticipantInfo) -> bool:
        return (participant["id"] not in room.loading
                and tunnels.reachable(room_code, participant))

    return usable
