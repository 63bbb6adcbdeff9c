"""HTTP handlers of the gateway (seed 002) on the hub's root. Short on purpose: check the
caller and the input, call the gateway, shape the reply in the seed's JSON."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from gambiarra_desktop.accounting.service import ACCOUNTING
from gambiarra_desktop.gateway.accounts import AdminAccounts
from gambiarra_desktop.gateway.errors import (
    AuthenticationRequiredError,
    CrossOriginLoginError,
    InvalidFieldError,
    ProviderNotFoundError,
)
from gambiarra_desktop.gateway.model_entries import ROOM_PROVIDER, ModelConfig
from gambiarra_desktop.gateway.providers import DIRECT_PROVIDERS
from gambiarra_desktop.gateway.registry import EntryCheck
from gambiarra_desktop.gateway.service import GATEWAY, Gateway
from gambiarra_desktop.gateway.tokens import TokenClaims
from gambiarra_desktop.hub.api.bearer import bearer_value
from gambiarra_desktop.hub.api.responses import json_response, read_json_object
from gambiarra_desktop.hub.keys import PASSWORDS, REGISTRY
from gambiarra_desktop.hub.rooms.identifiers import now_ms

routes = web.RouteTableDef()


def _gateway(request: web.Request) -> Gateway:
    return request.app[GATEWAY]


def _accounts(request: web.Request) -> AdminAccounts:
    accounts = _gateway(request).accounts
    if accounts is None:  # Only before the app started; aiohttp serves nothing then.
        raise AuthenticationRequiredError
    return accounts


async def require_admin(request: web.Request) -> TokenClaims:
    """The admin's claims from ``Authorization: Bearer <token>``, or a 401."""
    token = bearer_value(request.headers)
    if token is None:
        raise AuthenticationRequiredError
    return await _accounts(request).authenticate(token)


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    """The Gambiarra contract's ``status`` and ``timestamp`` (epoch ms, which wins over the
    gateway seed's ISO string), then the gateway seed's fields."""
    return json_response({"status": "ok", "timestamp": now_ms(), **_gateway(request).health()})


def _same_origin(request: web.Request) -> bool:
    """No ``Origin`` (the app, the CLI, scripts), or the hub's own page."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == request.host.lower()


@routes.post("/v1/auth/login")
async def login(request: web.Request) -> web.Response:
    if not _same_origin(request):
        raise CrossOriginLoginError
    body = await read_json_object(request)
    result = await _accounts(request).login(body.get("username"), body.get("password"),
                                            request.remote)
    return json_response({"token": result.token,
                          "user": {"id": result.username, "username": result.username,
                                   "role": result.role},
                          "expiresIn": result.expires_in_s})


@routes.get("/v1/models")
async def list_models(request: web.Request) -> web.Response:
    models = _gateway(request).models.models
    return json_response({"object": "list", "data": [m.to_json() for m in models]})


@routes.get("/v1/models/layers")
async def list_layers(request: web.Request) -> web.Response:
    return json_response({"layers": _gateway(request).models.layers()})


@routes.get("/v1/models/{id}")
async def get_model(request: web.Request) -> web.Response:
    """For the openai SDK's ``models.retrieve``."""
    return json_response(_gateway(request).models.require(request.match_info["id"]).to_json())


def _room_check(request: web.Request, room_password: object) -> EntryCheck:
    """A room entry must name a room of this hub, and a password room's password: the
    entry opens the room to everyone who can reach the hub's root, so only someone who
    could open the room may add it. The password is checked (throttled), never stored."""

    async def check(model: ModelConfig) -> None:
        if model.provider != ROOM_PROVIDER or model.room is None:
            return
        room = request.app[REGISTRY].get(model.room)
        if room is None:
            raise InvalidFieldError("room", f"no room {model.room} on this hub")
        if room.stored.password_hash is None:
            return
        if not isinstance(room_password, str) or not room_password:
            raise InvalidFieldError("roomPassword", f"room {model.room} has a password: send"
                                    " it as roomPassword (checked, not stored)")
        await request.app[PASSWORDS].check(room, room_password, request.remote)

    return check


@routes.post("/v1/models")
async def add_model(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await read_json_object(request)
    room_password = body.pop("roomPassword", None)
    model = await _gateway(request).models.add(body, _room_check(request, room_password))
    return json_response(model.to_json(), 201)


@routes.put("/v1/models/{id}")
async def update_model(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await read_json_object(request)
    room_password = body.pop("roomPassword", None)
    check = _room_check(request, room_password) if "room" in body else None
    model = await _gateway(request).models.update(request.match_info["id"], body, check)
    return json_response(model.to_json())


@routes.delete("/v1/models/{id}")
async def delete_model(request: web.Request) -> web.Response:
    await require_admin(request)
    model_id = request.match_info["id"]
    await _gateway(request).models.delete(model_id)
    return json_response({"success": True, "id": model_id})


@routes.get("/v1/config")
async def get_config(request: web.Request) -> web.Response:
    await require_admin(request)
    return json_response({"configuration": _gateway(request).settings.to_json()})


@routes.put("/v1/config")
async def put_config(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await read_json_object(request)
    changes = body.get("configuration", body)  # The GET shape is accepted back as well.
    if not isinstance(changes, dict):
        raise InvalidFieldError("configuration", "must be an object")
    settings = await _gateway(request).update_settings(changes)
    return json_response({"configuration": settings.to_json()})


@routes.get("/v1/providers")
async def list_providers(request: web.Request) -> web.Response:
    await require_admin(request)
    providers = _gateway(request).providers
    return json_response({"providers": [providers.describe(p) for p in DIRECT_PROVIDERS]})


@routes.put("/v1/providers/{id}")
async def put_provider(request: web.Request) -> web.Response:
    await require_admin(request)
    provider = request.match_info["id"]
    if provider == ROOM_PROVIDER:
        raise InvalidFieldError("id", "rooms on this hub need no base URL or key")
    if provider not in DIRECT_PROVIDERS:
        raise ProviderNotFoundError(provider)
    body = await read_json_object(request)
    gateway = _gateway(request)
    described = await gateway.providers.configure(provider, body)
    await gateway.providers.probe(provider)  # Health now, not in half a minute.
    return json_response(gateway.providers.describe(provider) | {"id": described["id"]})


def _priced_model_enabled(gateway: Gateway) -> bool:
    """A key is required at the root while any enabled entry costs money per token."""
    return any(m.enabled and m.priced for m in gateway.models.models)


@routes.post("/v1/chat/completions")
async def chat_completions(request: web.Request) -> web.StreamResponse:
    accounting = request.app[ACCOUNTING]
    try:
        await accounting.admit(request, room=None, gateway_root=True,
                               key_required=_priced_model_enabled(_gateway(request)))
        body = await read_json_object(request)
        return await _gateway(request).chat.complete(request, body)
    finally:
        accounting.settle_tokens()  # A tpm estimate no upstream call replaced goes back.
