"""``POST /v1/chat/completions`` at the hub root: one request's life, top to bottom.

Decide the plan (``auto``: :func:`routing.plan_auto`; a named entry: that entry), then
try its entries in order until one answers. Nothing reaches the client before an
answer's first byte, so until then any failure (refused, timed out, a 5xx, the
provider's key refused, an empty answer) moves on to the next entry: the next of the
layer, then the next layer up (escalation). Once bytes went out the answer is final; a
stream that breaks ends with an OpenAI-style error chunk (see ``stream_relay.py``).

Room entries go through the room's own proxy, so its scheduler, queue, failover between
participants and metrics apply; other providers are dialed by :class:`ProviderRelay`.

A cross-checked request is answered whole, reviewed by a second model, perhaps answered
again one layer up, and only then sent, as JSON or replayed as a stream.

Budgets: a key at or over its budget is not given priced entries (reviewers included);
when nothing free is left in the plan, the answer is 429 ``Budget exceeded``. Each priced
call first holds its estimated cost on the key's budget (:meth:`Ledger.reserve`, no await
between check and hold) until it is over, so concurrent calls cannot all pass the same
check: an entry whose estimate does not fit is skipped like an over-budget one.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from gambiarra_desktop.accounting.budgets import budget_exceeded, budget_held, over_budget
from gambiarra_desktop.accounting.caller import caller_of
from gambiarra_desktop.accounting.errors import BudgetExceededError, InvalidApiKeyError
from gambiarra_desktop.accounting.ledger import Reservation, estimated_tokens
from gambiarra_desktop.gateway.cross_check import (
    CrossCheck,
    parse_verdict,
    review_request,
    reviewer_order,
)
from gambiarra_desktop.gateway.errors import (
    AllModelsFailedError,
    InvalidFieldError,
    NoModelAvailableError,
)
from gambiarra_desktop.gateway.layers import LAYER_INDEX, LAYERS, Layer, is_layer
from gambiarra_desktop.gateway.model_entries import AUTO_MODEL, ROOM_PROVIDER, ModelConfig
from gambiarra_desktop.gateway.provider_relay import (
    PROVIDER_FAULT_STATUSES,
    ProviderRelay,
    label_of,
)
from gambiarra_desktop.gateway.registry import ModelRegistry
from gambiarra_desktop.gateway.routing import Needs, needs_of, plan_auto
from gambiarra_desktop.gateway.settings import GatewaySettings
from gambiarra_desktop.gateway.stream_replay import replay_as_stream
from gambiarra_desktop.hub.api.responses import dump_json
from gambiarra_desktop.hub.errors import HubError, RoomNotFoundError
from gambiarra_desktop.hub.proxy.forward import ChatProxy
from gambiarra_desktop.hub.proxy.router import match_request
from gambiarra_desktop.hub.proxy.stats import StatsBook
from gambiarra_desktop.hub.proxy.tunnel import TunnelHub
from gambiarra_desktop.hub.rooms.lifecycle import RoomRegistry
from gambiarra_desktop.protocol import (
    MODEL_HEADER,
    MODEL_PREFIX,
    PARTICIPANT_HEADER,
    ParticipantInfo,
)

LAYER_HEADER = "X-Gambiarra-Layer"
CROSS_CHECK_HEADER = "X-Gambiarra-Cross-Check"
MAX_REVIEWERS_TRIED = 3
MAX_ENTRIES_TRIED = 10
"""Entries one request may try: a hub with hundreds of dead entries must not turn one
request into hundreds of upstream attempts."""
MAX_PROBLEMS_SHOWN = 8
MAX_PARSED_ANSWER_BYTES = 4 * 1024 * 1024
MAX_PARSED_CONTAINERS = 100_000
"""A whole answer is parsed (to see it is not empty, name its model, have it reviewed)
only within these. A JSON object or array costs ~60 bytes of memory for 2 bytes of input:
30 MB of ``{}`` from a hostile model server became 720 MB and stalled the hub's loop for
1.5 s. A bigger answer is passed on as it came, as the room proxy does."""


class GatewayChat:
    def __init__(self, models: ModelRegistry, relay: ProviderRelay, proxy: ChatProxy,
                 rooms: RoomRegistry, tunnels: TunnelHub, stats: StatsBook,
                 settings: Callable[[], GatewaySettings],
                 provider_usable: Callable[[str], bool]) -> None:
        self._models = models
        self._relay = relay
        self._proxy = proxy
        self._rooms = rooms
        self._tunnels = tunnels
        self._stats = stats
        self._settings = settings
        self._provider_usable = provider_usable

    # --- the decision's inputs -------------------------------------------------------
    def load(self, model: ModelConfig) -> float | None:
        """0 for an idle entry, more when busy; ``None`` when it cannot serve now."""
        if model.provider != ROOM_PROVIDER:
            return 0.0 if self._provider_usable(model.provider) else None
        room = self._rooms.get(model.room or "")
        if room is None:
            return None
        busy = slots = 0
        for participant in room.online_participants():
            if participant["model"] != model.apiModelName or participant["id"] in room.loading:
                continue
            if not self._tunnels.reachable(room.code, participant):
                continue
            stats = self._stats.get(room.code, participant["id"])
            busy += stats.in_flight
            slots += stats.max_concurrent
        return None if slots == 0 else busy / slots

    def plan(self, body: dict[str, Any], requested: str, layer: Layer | None) -> list[ModelConfig]:
        settings = self._settings()
        if requested == AUTO_MODEL:
            return plan_auto(needs_of(body), self._models.models, self.load,
                             layer or settings.defaultLayer, settings.maxEscalationLayer,
                             settings.enableAutoEscalate)
        model = self._models.require(requested)
        if not model.enabled:
            raise NoModelAvailableError(f"{model.id} is disabled")
        return [model]

    def affordable(self, request: web.Request, plan: list[ModelConfig]) -> list[ModelConfig]:
        """``plan`` without its priced entries when the caller's key is over its budget."""
        caller = caller_of(request)
        key = caller.key if caller is not None else None
        ledger = self._proxy.ledger
        if ledger is None or key is None or not over_budget(ledger, key):
            return plan
        return [m for m in plan if not m.priced]

    def hold(self, request: web.Request, model: ModelConfig, body: Mapping[str, Any]
             ) -> Reservation | contextlib.nullcontext[None] | BudgetExceededError:
        """What to hold on the caller's budget while ``model`` answers ``body``: nothing for
        a free entry or a key without budget, the call's estimated cost otherwise (its
        prompt estimate and ``max_tokens`` or a default, at the entry's prices), or the
        refusal when that estimate does not fit beside what is spent and held."""
        caller = caller_of(request)
        key = caller.key if caller is not None else None
        ledger = self._proxy.ledger
        label = label_of(model)
        if ledger is None or key is None or key.budget is None or not label.priced:
            return contextlib.nullcontext()
        estimate = label.cost(*estimated_tokens(body))
        held = ledger.reserve(key.id, key.budget_period, key.budget, estimate)
        return held if held is not None else budget_held(ledger, key, estimate)

    # --- one request -----------------------------------------------------------------
    async def complete(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        requested = body.get("model")
        if not isinstance(requested, str) or not requested:
            raise InvalidFieldError("model", "a model entry's id, or \"auto\"")
        layer = body.pop("layer", None)
        if layer is not None and not is_layer(layer):
            raise InvalidFieldError("layer", f"must be one of {', '.join(LAYERS)}")
        cross_check = body.pop("crossCheck", None)
        if cross_check is not None and not isinstance(cross_check, bool):
            raise InvalidFieldError("crossCheck", "must be true or false")
        plan = self.plan(body, requested, layer)
        if cross_check and self._settings().enableCrossCheck:
            return await self._cross_checked(request, body, plan)
        _model, response = await self._first_answer(request, body, plan, whole=False)
        return response

    async def _first_answer(
        self, request: web.Request, body: dict[str, Any], plan: list[ModelConfig],
        whole: bool, exclude: str | None = None,
    ) -> tuple[ModelConfig, web.StreamResponse]:
        problems: list[str] = []
        fallback: tuple[ModelConfig, web.StreamResponse] | None = None
        last_error: HubError | None = None
        free = self.affordable(request, plan)
        if plan and not free:
            caller = caller_of(request)
            ledger = self._proxy.ledger
            if caller is not None and caller.key is not None and ledger is not None:
                raise budget_exceeded(ledger, caller.key)
        plan = free
        refused: BudgetExceededError | None = None
        tried = 0
        for model in plan[:MAX_ENTRIES_TRIED]:
            headers = {MODEL_HEADER: model.id, LAYER_HEADER: model.layer}
            hold = self.hold(request, model, body)
            if isinstance(hold, BudgetExceededError):
                refused = hold
                problems.append(f"{model.id}: {hold.details}")
                continue
            tried += 1
            try:
                with hold:
                    response = await self._send(request, model, body, headers, whole, exclude)
            except InvalidApiKeyError:
                raise  # Revoked meanwhile: no other model either.
            except HubError as exc:
                last_error = exc
                problems.append(f"{model.id}: {exc.message}")
                continue
            if response.prepared:  # Streaming: bytes are out, this is the answer.
                return model, response
            status = response.status
            if status >= 500 or status in PROVIDER_FAULT_STATUSES:
                fallback = fallback or (model, response)
                problems.append(f"{model.id}: answered {status}")
                continue
            if status >= 300:  # The request itself is wrong: another model would agree.
                return model, response
            finished = _finished(model, response)
            if finished is None:
                problems.append(f"{model.id}: empty answer")
                continue
            return model, finished
        if fallback is not None:
            return fallback
        if tried == 0 and refused is not None:
            raise refused  # Every entry left was priced beyond what the budget holds.
        if len(plan) == 1 and last_error is not None:
            raise last_error  # One entry asked for: its own error (404, 429...) says most.
        shown = problems[:MAX_PROBLEMS_SHOWN]
        raise AllModelsFailedError("; ".join(shown) or "no model was tried")

    async def _send(
        self, request: web.Request, model: ModelConfig, body: dict[str, Any],
        headers: Mapping[str, str], whole: bool, exclude: str | None = None,
    ) -> web.StreamResponse:
        """One gateway attempt (an answer, an escalation, a review), each after the key
        was checked again: a request can run long, and a revocation ends it at the next
        attempt (a room's queue checks again after the wait)."""
        caller, keys = caller_of(request), self._proxy.key_book
        if caller is not None and caller.key is not None and keys is not None:
            keys.require_live(caller.key.id)
        if model.provider != ROOM_PROVIDER:
            return await self._relay.send(request, model, body, headers, whole)
        room = self._rooms.get(model.room or "")
        if room is None:
            raise RoomNotFoundError
        tunnels = self._tunnels

        def usable(room_code: str, participant: ParticipantInfo) -> bool:
            return (participant["id"] != exclude and participant["id"] not in room.loading
                    and tunnels.reachable(room_code, participant))

        match = match_request(room, MODEL_PREFIX + model.apiModelName, usable)
        return await self._proxy.forward(request, match, body, extra_headers=headers,
                                         whole=whole, require_content=True,
                                         label=label_of(model))

    # --- cross-check -----------------------------------------------------------------
    async def _cross_checked(self, request: web.Request, body: dict[str, Any],
                             plan: list[ModelConfig]) -> web.StreamResponse:
        settings = self._settings()
        wants_stream = body.get("stream") is True
        whole_body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        model, response = await self._first_answer(request, whole_body, plan, whole=True)
        data = _json_of(response)
        if response.status >= 300 or data is None:
            if response.status < 300:  # Too big to parse (or not JSON): not reviewed.
                response.headers[CROSS_CHECK_HEADER] = "unavailable"
            return response
        check = await self._review(request, model, response, body.get("messages"), data)
        higher = LAYER_INDEX[model.layer] + 1
        if (check.verdict == "disagree" and settings.enableAutoEscalate
                and higher <= LAYER_INDEX[settings.maxEscalationLayer]):
            try:
                again = plan_auto(needs_of(body), self._models.models, self.load,
                                  LAYERS[higher], settings.maxEscalationLayer, True)
                model2, response2 = await self._first_answer(request, whole_body, again,
                                                             whole=True)
                data2 = _json_of(response2)
                if response2.status < 300 and data2 is not None:
                    model, response, data = model2, response2, data2
                    check = dataclasses.replace(check, answered_again_by=model2.id)
            except InvalidApiKeyError:
                raise
            except HubError as exc:
                check = dataclasses.replace(
                    check, reason=f"{check.reason} (not answered again: {exc.message})")
        data["crossCheck"] = check.to_json()
        headers = _gateway_headers(response)
        headers[CROSS_CHECK_HEADER] = check.verdict
        if wants_stream:
            return await replay_as_stream(request, data, headers)
        reply = web.Response(body=dump_json(data), status=response.status, headers=headers,
                             content_type="application/json")
        return reply

    async def _review(self, request: web.Request, answerer: ModelConfig,
                      response: web.StreamResponse, messages: object,
                      data: dict[str, Any]) -> CrossCheck:
        answering = response.headers.get(PARTICIPANT_HEADER)
        exclude = unquote(answering) if answering else None
        candidates = self.affordable(request, [
            m for m in self._models.models if self.load(m) is not None
            and (m.id != answerer.id or answerer.provider == ROOM_PROVIDER)])
        review = review_request(messages if isinstance(messages, list) else [],
                                _answer_text(data))
        problems: list[str] = []
        for reviewer in reviewer_order(answerer, candidates)[:MAX_REVIEWERS_TRIED]:
            hold = self.hold(request, reviewer, review)
            if isinstance(hold, BudgetExceededError):
                problems.append(f"{reviewer.id}: {hold.details}")
                continue
            try:
                with hold:
                    answer = await self._send(request, reviewer, review, {}, True, exclude)
            except InvalidApiKeyError:
                raise
            except HubError as exc:
                problems.append(f"{reviewer.id}: {exc.message}")
                continue
            verdict_data = _json_of(answer)
            if answer.status >= 300 or verdict_data is None:
                problems.append(f"{reviewer.id}: answered {answer.status}")
                continue
            verdict, reason = parse_verdict(_answer_text(verdict_data))
            return CrossCheck(reviewer.id, verdict, reason)
        reason = "no other model could review the answer"
        if problems:
            reason += f" ({'; '.join(problems)})"
        return CrossCheck(None, "unavailable", reason)


def _json_of(response: web.StreamResponse) -> dict[str, Any] | None:
    body = getattr(response, "body", None)
    if not isinstance(body, bytes) or _too_big_to_parse(body):
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _too_big_to_parse(body: bytes) -> bool:
    if len(body) > MAX_PARSED_ANSWER_BYTES:
        return True
    # Counted only where it could matter; braces inside strings make it an overestimate.
    return len(body) > MAX_PARSED_CONTAINERS and (
        body.count(b"{") + body.count(b"[") > MAX_PARSED_CONTAINERS)


def _answer_text(data: dict[str, Any]) -> str:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def _is_empty(data: dict[str, Any]) -> bool:
    """No text and no tool call: an answer worth nothing, worth another model's try."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return True
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return True
    if message.get("tool_calls") or message.get("function_call"):
        return False
    return not _answer_text(data).strip()


def _finished(model: ModelConfig, response: web.StreamResponse) -> web.StreamResponse | None:
    """A whole 2xx answer ready for the client, its ``model`` the entry that answered; or
    ``None`` when it is empty or not JSON. One too big to parse goes on as it came."""
    body = getattr(response, "body", None)
    if isinstance(body, bytes) and _too_big_to_parse(body):
        return response
    data = _json_of(response)
    if data is None or _is_empty(data):
        return None
    if data.get("model") == model.apiModelName:
        return response  # Already says who answered (the usual case): no re-encoding.
    data["model"] = model.apiModelName
    return web.Response(body=dump_json(data), status=response.status,
                        headers=_gateway_headers(response), content_type="application/json")


def _gateway_headers(response: web.StreamResponse) -> dict[str, str]:
    return {name: value for name, value in response.headers.items()
            if name.lower().startswith("x-gambiarra-")}


__all__ = ["CROSS_CHECK_HEADER", "LAYER_HEADER", "MODEL_HEADER", "GatewayChat", "Needs"]
