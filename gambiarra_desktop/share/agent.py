"""The participant agent: keeps a model shared in a room, whatever the network does.

``start()`` joins and keeps the participant alive (health calls every 10 s, and the tunnel
when sharing through it); ``stop()`` leaves. In between the agent never gives up on a
transient error: an unreachable hub is retried with exponential backoff, and a hub that
forgot the participant (404) is simply joined again. Only answers that retrying cannot fix
(wrong password, unknown room, a model the endpoint does not serve) stop it, with the
reason in its status.

A hub address that answers 200 with something that is not a hub's JSON (a captive portal's
login page, a proxy) counts as transient: the portal usually goes away once the user logs
in, so the agent shows "reconnecting" with that reason and keeps retrying with backoff.
An error nobody foresaw ends the agent as "failed" with its text, never silently, and
``stop()`` never raises.

Before each health call the agent asks its own model server for its models (bounded by
``model_check_timeout_s``). A server that stopped answering makes the state "model-down"
and the health call says ``"serving": false``, so the hub takes the participant offline
and stops routing to it (instead of returning 502s while the room shows it "online");
the next health call after the server answers again brings it back, by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from gambiarra_desktop.backoff import Backoff
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError
from gambiarra_desktop.protocol import HEALTH_CHECK_INTERVAL_S, MAX_CONCURRENT, Transport
from gambiarra_desktop.share.local_servers import ModelServerError, list_models, server_slots
from gambiarra_desktop.share.tunnel_client import TunnelClient, TunnelRejectedError

log = logging.getLogger(__name__)

AgentState = Literal["stopped", "starting", "sharing", "reconnecting", "model-down", "failed"]
PERMANENT_JOIN_STATUSES = frozenset({400, 401, 404})
LEAVE_TIMEOUT_S = 3.0
MODEL_CHECK_TIMEOUT_S = 3.0
MODEL_DOWN_REASON = ("model server not answering: start it again; sharing resumes by"
                     " itself")
MODEL_GONE_REASON = ("the model server no longer lists {model}: load it again; sharing"
                     " resumes by itself")


@dataclass(frozen=True, slots=True)
class AgentStatus:
    state: AgentState
    reason: str = ""


@dataclass
class ShareSettings:
    room_code: str
    model: str
    endpoint: str
    nickname: str
    password: str | None = None
    participant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    transport: Transport = "tunnel"
    specs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    health_interval_s: float = HEALTH_CHECK_INTERVAL_S
    model_check_timeout_s: float = MODEL_CHECK_TIMEOUT_S
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0

    def join_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": self.participant_id, "nickname": self.nickname, "model": self.model,
            "endpoint": self.endpoint, "specs": self.specs, "config": self.config,
            "transport": self.transport,
        }
        if self.password:
            payload["password"] = self.password
        return payload


class _RejoinNeededError(Exception):
    """The hub no longer knows this participant, or refused its tunnel token."""


class ShareAgent:
    def __init__(
        self,
        hub_url: str,
        settings: ShareSettings,
        on_status: Callable[[AgentStatus], None] | None = None,
    ) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.settings = settings
        self._on_status = on_status
        self._status = AgentStatus("stopped")
        self._task: asyncio.Task[None] | None = None
        self.joins = 0
        self.tunnel_connections = 0
        self._secret: str | None = None
        """The participant secret of the last join: re-joins, health calls and the leave
        carry it, so the hub knows they come from this agent."""
        self._model_down = False
        self._sharing_reason = ""
        """What "sharing" says (direct or through the tunnel), shown again once the model
        server answers after an outage."""

    @property
    def status(self) -> AgentStatus:
        return self._status

    @property
    def secret(self) -> str | None:
        """The current join's participant secret: "served by me" proves itself with it."""
        return self._secret

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start sharing; returns at once, the status reports progress."""
        if self.running:
            return
        self._set("starting", "joining the room")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="share-agent")

    async def stop(self) -> None:
        """Stop sharing and leave the room (best effort: the hub may be gone)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # _run reports its own failures; this is a last guard.
                log.exception("the share agent ended with an error")
        if self._status.state != "failed":  # A failed agent has left already (_run).
            await self._leave()
            self._set("stopped", "sharing stopped")

    async def _leave(self) -> None:
        """Leave the room, best effort and bounded: the hub may be gone."""
        with contextlib.suppress(HubApiError, HubUnreachableError):
            async with HubClient(self.hub_url, timeout_s=LEAVE_TIMEOUT_S) as hub:
                await hub.leave(self.settings.room_code, self.settings.participant_id,
                                self._secret)

    def _set(self, state: AgentState, reason: str = "") -> None:
        status = AgentStatus(state, reason)
        if status == self._status:
            return
        self._status = status
        log.info("sharing %s: %s", state, reason)
        if self._on_status is not None:
            self._on_status(status)

    async def _run(self) -> None:
        try:
            await self._share()
        except Exception as exc:
            log.exception("sharing failed")
            self._set("failed", f"sharing failed: {exc or type(exc).__name__}")
            if self._secret is not None:  # Joined: no participant left behind to time out.
                await self._leave()

    async def _share(self) -> None:
        s = self.settings
        async with aiohttp.ClientSession() as session:
            problem = await _model_problem(session, s.endpoint, s.model)
            if problem:
                self._set("failed", problem)
                return
            await self._ask_server_slots(session)
            hub = HubClient(self.hub_url, session)
            backoff = Backoff(s.backoff_initial_s, s.backoff_max_s)
            while True:
                try:
                    joined = await hub.join(s.room_code, s.join_payload(), self._secret)
                    secret = joined.get("participantSecret")
                    self._secret = secret if isinstance(secret, str) else None
                    self.joins += 1
                    backoff.reset()
                    token = joined.get("tunnelToken")
                    if s.transport == "direct" or not token:
                        self._set_sharing(f"sharing {s.model} with room {s.room_code}")
                    else:
                        self._set("starting", "opening the tunnel to the hub")
                    await self._stay_joined(hub, session, token)
                except _RejoinNeededError as exc:
                    self._set("reconnecting", f"joining again: {exc}")
                except HubApiError as exc:
                    if exc.status in PERMANENT_JOIN_STATUSES:
                        self._set("failed", exc.message)
                        return
                    self._set("reconnecting", f"hub error: {exc.message}")
                    await asyncio.sleep(backoff.next_delay())
                except HubUnreachableError as exc:
                    self._set("reconnecting", str(exc))
                    await asyncio.sleep(backoff.next_delay())

    async def _ask_server_slots(self, session: aiohttp.ClientSession) -> None:
        """Unless the user set ``config.maxConcurrent``, send what the model server says
        it takes at once (llama.cpp's slots), so the hub need not learn it."""
        s = self.settings
        if "maxConcurrent" in s.config and s.config.get("maxConcurrentSource") != "server":
            return  # The user's own number wins.
        config = {k: v for k, v in s.config.items()
                  if k not in ("maxConcurrent", "maxConcurrentSource")}
        slots = await server_slots(session, s.endpoint)
        if slots is not None:
            config.update(maxConcurrent=min(slots, MAX_CONCURRENT),
                          maxConcurrentSource="server")
        s.config = config

    async def _stay_joined(
        self, hub: HubClient, session: aiohttp.ClientSession, token: str | None
    ) -> None:
        jobs: list[Coroutine[Any, Any, None]] = [self._heartbeats(hub)]
        if token:
            jobs.append(self._tunnel(hub, session, token))
        await _first_failure(jobs)

    def _set_sharing(self, reason: str) -> None:
        """Sharing, unless the model server is down: an open tunnel does not make it so."""
        self._sharing_reason = reason
        if not self._model_down:
            self._set("sharing", reason)

    async def _heartbeats(self, hub: HubClient) -> None:
        # The model server is asked on connections closed after each answer: an idle
        # keep-alive connection holds one of llama.cpp's few HTTP threads.
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True)) as probes:
            await self._beat(hub, probes)

    async def _beat(self, hub: HubClient, session: aiohttp.ClientSession) -> None:
        s = self.settings
        first = True
        while True:
            # A join clears the hub's "model down"; say it again at once, not a beat later.
            if not (first and self._model_down):
                await asyncio.sleep(s.health_interval_s)
            first = False
            problem = await self._model_problem_now(session)
            payload: dict[str, Any] = {"id": s.participant_id}
            if problem:
                payload["serving"] = False  # Extra to the seed: the hub stops routing here.
            try:
                await hub.request("POST", f"/rooms/{s.room_code}/health", payload,
                                  self._secret)
            except HubApiError as exc:
                if exc.status == 404:
                    raise _RejoinNeededError(exc.message) from exc
                raise
            self._on_model_check(problem)

    async def _model_problem_now(self, session: aiohttp.ClientSession) -> str:
        """Why the model server cannot serve the shared model now (``""``: it can), asked
        with a hard bound so a hung server cannot hold the health call past the hub's
        timeout."""
        s = self.settings
        try:
            async with asyncio.timeout(s.model_check_timeout_s):
                models = await list_models(session, s.endpoint, s.model_check_timeout_s / 2)
        except (ModelServerError, TimeoutError):
            return MODEL_DOWN_REASON
        return "" if s.model in models else MODEL_GONE_REASON.format(model=s.model)

    def _on_model_check(self, problem: str) -> None:
        """Said after the hub heard it, so the app never claims more than the hub does."""
        if problem:
            if not self._model_down:
                log.warning("sharing paused: %s (%s)", problem, self.settings.endpoint)
            self._model_down = True
            self._set("model-down", problem)
        elif self._model_down:
            self._model_down = False
            log.info("the model server at %s answers again", self.settings.endpoint)
            self._set("sharing", self._sharing_reason or
                      f"sharing {self.settings.model} with room {self.settings.room_code}")

    async def _tunnel(self, hub: HubClient, session: aiohttp.ClientSession, token: str) -> None:
        s = self.settings
        backoff = Backoff(s.backoff_initial_s, s.backoff_max_s)
        client = TunnelClient(session, s.endpoint)
        url = hub.tunnel_url(s.room_code).replace("http://", "ws://", 1).replace(
            "https://", "wss://", 1)

        def connected() -> None:
            self.tunnel_connections += 1
            backoff.reset()
            self._set_sharing(f"sharing {s.model} with room {s.room_code} through the tunnel")

        while True:
            try:
                await client.serve(url, s.participant_id, token, on_connected=connected)
                reason = "the hub closed the tunnel"
            except TunnelRejectedError as exc:
                raise _RejoinNeededError(str(exc)) from exc
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                reason = f"tunnel lost: {exc or type(exc).__name__}"
            self._set("reconnecting", reason)
            await asyncio.sleep(backoff.next_delay())


async def _model_problem(session: aiohttp.ClientSession, endpoint: str, model: str) -> str:
    """Why ``model`` cannot be shared from ``endpoint``, or ``""`` when it can."""
    try:
        models = await list_models(session, endpoint)
    except ModelServerError as exc:
        return str(exc)
    if model not in models:
        served = ", ".join(models[:10])
        return f"the model server at {endpoint} does not serve {model!r} (it serves: {served})"
    return ""


async def _first_failure(jobs: list[Coroutine[Any, Any, None]]) -> None:
    """Run ``jobs`` together until one ends; cancel the rest and re-raise its error."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for task in done:
        exc = task.exception()
        if exc is not None:
            raise exc
