"""``/v1/keys``: the admin makes, lists and revokes API keys. The key text is in the
``POST`` reply only; lists show the id and a prefix, never the text or its hash."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gambiarra_desktop.accounting.api_keys import ApiKey
from gambiarra_desktop.accounting.service import ACCOUNTING, Accounting
from gambiarra_desktop.gateway.routes import require_admin
from gambiarra_desktop.hub.api.responses import json_response, read_json_object
from gambiarra_desktop.hub.keys import REGISTRY

routes = web.RouteTableDef()


def _accounting(request: web.Request) -> Accounting:
    return request.app[ACCOUNTING]


def key_json(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "prefix": key.prefix, "rpm": key.rpm,
            "tpm": key.tpm, "budget": key.budget, "budgetPeriod": key.budget_period,
            "rooms": list(key.rooms), "priority": key.priority, "createdAt": key.created_at_ms}


def listed_key_json(accounting: Accounting, key: ApiKey) -> dict[str, Any]:
    totals = accounting.ledger.key_totals(key.id)
    used = [t for t in (totals.last_used_ms, accounting.keys.last_used_ms(key.id))
            if t is not None]
    return {**key_json(key), "revoked": key.revoked, "lastUsedAt": max(used, default=None),
            "usage": {"requests": totals.requests, "promptTokens": totals.prompt_tokens,
                      "completionTokens": totals.completion_tokens, "cost": totals.cost,
                      "periodCost": accounting.ledger.spent(key.id, key.budget_period)}}


@routes.post("/v1/keys")
async def create_key(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await read_json_object(request)
    registry = request.app[REGISTRY]
    made = await _accounting(request).keys.create(body, lambda c: registry.get(c) is not None)
    shown = key_json(made.key)
    return json_response({"id": shown.pop("id"), "name": shown.pop("name"), "key": made.text,
                          **shown}, 201)


@routes.get("/v1/keys")
async def list_keys(request: web.Request) -> web.Response:
    await require_admin(request)
    accounting = _accounting(request)
    return json_response({"data": [listed_key_json(accounting, key)
                                   for key in accounting.keys.list()]})


@routes.delete("/v1/keys/{id}")
async def revoke_key(request: web.Request) -> web.Response:
    await require_admin(request)
    key = await _accounting(request).keys.revoke(request.match_info["id"])
    return json_response({"success": True, "id": key.id})
