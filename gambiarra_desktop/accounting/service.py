"""One hub's accounting: its API keys, rate limiter and usage ledger, built once per app
(no globals), opened and closed with the hub, and the admission step every chat takes.

Admission, in order (each step's refusal is a domain error mapped in ``responses.py``):

1. The bearer: only a ``gk-`` value is a key; it must be live (else 401 "Invalid API
   key"). Any other value is left alone: a room password, or the openai SDK's placeholder.
2. Scope: a key that lists rooms is good only on those rooms' routes (else 403).
3. Key required: the gateway root asks for one while a priced model is enabled (401).
4. Rate limits: keyless callers of the gateway root per address and minute; keyed callers
   per key and hour on every route, plus the key's own rpm and tpm. Keyless room routes
   are never limited (the Gambiarra contract), only fair-shared by address. The verdict's
   ``X-RateLimit-*`` headers are left on the request for the response hook.

Steps 1 to 3 run with no await, so a revocation that landed is seen by the next request.

tpm: a rule that only read the tokens already recorded let 20 concurrent calls of a
500-tpm key all in (their tokens land after they answer). So admission counts an estimate
(the prompt estimate plus ``max_tokens`` or 1024) under the tpm rule in the same step as
the check, and the request's first ledger row replaces it with the real count (the
difference, often negative, is added; later rows of the request, failovers and reviews, add
their own). A request that ends with no row gives its estimate back (:meth:`settle_tokens`).
Reconciling only touches the window the estimate went to; past it, the real count is added.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gambiarra_desktop.accounting.api_keys import ApiKey, looks_like_key
from gambiarra_desktop.accounting.caller import Caller, ChatCall, keyless_caller
from gambiarra_desktop.accounting.errors import (
    ApiKeyRequiredError,
    KeyNotValidHereError,
    RateLimitedError,
)
from gambiarra_desktop.accounting.key_store import KeyStore
from gambiarra_desktop.accounting.keys import MAX_LIVE_KEYS, KeyBook
from gambiarra_desktop.accounting.ledger import (
    Ledger,
    LedgerSettings,
    UsageRow,
    estimated_tokens,
)
from gambiarra_desktop.accounting.rate_limits import (
    LimitRule,
    RateLimiter,
    make_rate_limiter,
)
from gambiarra_desktop.events import EventBus
from gambiarra_desktop.hub.api.bearer import bearer_value
from gambiarra_desktop.hub.api.responses import read_json_object
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.rooms.store import Store

if TYPE_CHECKING:
    from gambiarra_desktop.hub.rooms.room import Room

MINUTE_S = 60
HOUR_S = 3600
TPM_RULE = "key-tpm"
Rules = tuple[tuple[LimitRule, ...], tuple[LimitRule, ...]]
NO_RULES: Rules = ((), ())
BodyReader = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(slots=True)
class TokenHold:
    """The tpm estimate one admitted request counted, until its first row replaces it."""

    subject: str
    rule: LimitRule
    estimate: int
    window_start: int
    settled: bool = False


_TOKEN_HOLD: contextvars.ContextVar[TokenHold | None] = contextvars.ContextVar(
    "gambiarra_token_hold", default=None)
"""The request's hold: ``Ledger.record`` runs synchronously in the request's own task (or
one it started), so its rows find it here without the row having to carry it."""
KEY_REQUIRED_DETAILS = ("a priced model is enabled on this gateway: send"
                        " Authorization: Bearer gk-... (the hub's admin makes keys)")


class Accounting:
    def __init__(self, config: HubConfig, store: Store, bus: EventBus,
                 settings: Callable[[], LedgerSettings]) -> None:
        self._config = config
        self.keys = KeyBook(KeyStore(store))
        self.limiter: RateLimiter = make_rate_limiter(config.redis_url)
        self.ledger = Ledger(store, bus, settings)
        self.ledger.on_record = self._count_tokens
        per_minute = config.rate_limit_per_address_per_minute
        self._keyless_root: Rules = (
            ((LimitRule("address-minute", per_minute, MINUTE_S),), ()) if per_minute > 0
            else NO_RULES)
        self._rules_of: dict[str, tuple[ApiKey, Rules]] = {}

    async def open(self) -> None:
        await self.keys.open()
        await self.ledger.open()

    async def close(self) -> None:
        try:
            await self.ledger.close()
        finally:
            await self.limiter.close()

    def identify(self, call: ChatCall | web.Request, room: Room | None) -> Caller:
        """Who calls (steps 1 and 2 above), with no await and no counting."""
        bearer = bearer_value(call.headers)
        key = (self.keys.authenticate(bearer)
               if bearer is not None and looks_like_key(bearer) else None)
        if key is not None and key.rooms:
            if room is None:
                raise KeyNotValidHereError(
                    f"key {key.name} is limited to rooms {', '.join(key.rooms)}; call"
                    " /rooms/<code>/v1 instead of the hub's root")
            if room.code not in key.rooms:
                raise KeyNotValidHereError(f"key {key.name} is not valid in room {room.code}")
        return Caller(call.remote or "", key)

    async def admit(self, request: web.Request, *, room: Room | None, gateway_root: bool,
                    key_required: bool) -> Caller:
        """:meth:`admit_call` for a request aiohttp read (its :class:`ChatCall`, kept on
        it, carries the caller and rate headers to the handler and the response hook)."""
        return await self.admit_call(ChatCall.of(request), lambda: read_json_object(request),
                                     room=room, gateway_root=gateway_root,
                                     key_required=key_required)

    def admit_now(self, call: ChatCall, room: Room) -> Caller | None:
        """Admission when it needs no await and counts nothing: a keyless caller of a
        room's route, which no rule limits (step 4). ``None``: take :meth:`admit_call`."""
        bearer = bearer_value(call.headers)
        if bearer is not None and looks_like_key(bearer):
            return None
        requests, tokens = self.rules(None, gateway_root=False)
        if requests or tokens:
            return None
        call.caller = keyless_caller(call.remote)
        return call.caller

    async def admit_call(self, call: ChatCall, read_body: BodyReader, *, room: Room | None,
                         gateway_root: bool, key_required: bool) -> Caller:
        """Admit a chat request (every step above) and remember its caller on ``call``.
        ``read_body``: the request's JSON object, read only for a tpm key's estimate."""
        _TOKEN_HOLD.set(None)  # A keep-alive connection's task may have held one before.
        caller = self.identify(call, room)
        if caller.key is None and key_required:
            raise ApiKeyRequiredError(KEY_REQUIRED_DETAILS)
        requests, tokens = self.rules(caller.key, gateway_root)
        estimate = 0
        if tokens:  # Only a tpm key pays for reading the body here (read() caches it).
            estimate = sum(estimated_tokens(await read_body()))
        if requests or tokens:
            window = {rule.name: rule.window_start(time.time()) for rule in tokens}
            verdict = await self.limiter.hit(caller.person, requests, tokens, estimate)
            if caller.key is not None:  # Redis awaited: a revocation may have landed.
                self.keys.require_live(caller.key.id)
            headers = verdict.headers()
            if not verdict.allowed:
                raise RateLimitedError(verdict.details, verdict.retry_after_s, headers)
            if headers:
                call.rate_headers = headers
            for rule in tokens:
                _TOKEN_HOLD.set(TokenHold(caller.person, rule, estimate, window[rule.name]))
        call.caller = caller
        return caller

    def rules(self, key: ApiKey | None, gateway_root: bool) -> Rules:
        """(request rules, token rules) for a caller; a limit of 0 is a rule switched off.
        Built once per key (a key's limits change only by replacing its ``ApiKey``, which
        the identity check below notices) rather than on every request."""
        if key is None:
            return self._keyless_root if gateway_root else NO_RULES
        cached = self._rules_of.get(key.id)
        if cached is not None and cached[0] is key:
            return cached[1]
        if len(self._rules_of) >= 2 * MAX_LIVE_KEYS:  # Revoked keys' entries, now and then.
            self._rules_of.clear()
        rules = self._key_rules(key)
        self._rules_of[key.id] = (key, rules)
        return rules

    def _key_rules(self, key: ApiKey) -> Rules:
        config = self._config
        requests: list[LimitRule] = []
        if config.rate_limit_per_key_per_hour > 0:
            requests.append(LimitRule("key-hour", config.rate_limit_per_key_per_hour, HOUR_S))
        if key.rpm is not None:
            requests.append(LimitRule("key-rpm", key.rpm, MINUTE_S))
        tokens = (LimitRule(TPM_RULE, key.tpm, MINUTE_S),) if key.tpm is not None else ()
        return tuple(requests), tokens

    def _count_tokens(self, row: UsageRow) -> None:
        """A keyed call's tokens go to its key's tpm window (under the rule admission
        checks), so the next request sees them; the request's first row takes back the
        estimate admission counted. Never awaits, as ``record`` may not."""
        key = self.keys.get(row.key_id) if row.key_id is not None else None
        if key is not None and key.tpm is not None:
            rule = self.rules(key, False)[1][0]
            used = row.prompt_tokens + row.completion_tokens
            # row.person is the caller's person ("key:<id>"), the subject admission counted.
            self.limiter.count_tokens(row.person, rule, used - self._take_hold(rule))

    def settle_tokens(self) -> None:
        """At the end of a chat request: an estimate no row replaced (the request failed
        before any upstream call) is given back, so a refused call costs no tpm."""
        hold = _TOKEN_HOLD.get()
        if hold is not None and not hold.settled:
            self.limiter.count_tokens(hold.subject, hold.rule, -self._take_hold(hold.rule))

    @staticmethod
    def _take_hold(rule: LimitRule) -> int:
        """The estimate to take back (once per request): only within the window it was
        counted in; past it, that window is gone and the real count is simply added."""
        hold = _TOKEN_HOLD.get()
        if hold is None or hold.settled or hold.rule.name != rule.name:
            return 0
        hold.settled = True
        return hold.estimate if rule.window_start(time.time()) == hold.window_start else 0

    @staticmethod
    def opens(caller: Caller, room: Room) -> bool:
        """A key that lists this room opens it even when it has a password; a hub-wide
        key never does (it was made for the hub, not given by the room's owner)."""
        return caller.key is not None and room.code in caller.key.rooms


ACCOUNTING = web.AppKey("accounting", Accounting)
