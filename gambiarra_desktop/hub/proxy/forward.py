"""Forwarding chat completions to a participant's model, chunk by chunk, with failover.

Why it is built this way:
- The scheduler picks the least loaded matching participant, or queues the request.
- Nothing is sent to the client before the model's first body byte. Until then any
  failure (refused, timed out, a 5xx, a dropped tunnel, a stale pooled connection) is
  invisible to the client: the request moves to another matching participant, up to
  ``failover_retries`` times. After that, a broken stream ends with an OpenAI-style error
  chunk instead of a silently cut connection.
- Every chunk is written as it arrives, with ``X-Accel-Buffering: no``.
- A client that disconnects cancels the handler (handler cancellation), which closes the
  upstream connection or cancels the tunnelled request, so the model stops generating.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from aiohttp import web

from gambiarra_desktop.accounting.caller import Caller, ChatCall
from gambiarra_desktop.accounting.errors import InvalidApiKeyError
from gambiarra_desktop.accounting.ledger import ROOM_PROVIDER, Ledger, UsageLabel, row_of_call
from gambiarra_desktop.endpoints import chat_completions_url
from gambiarra_desktop.events import EventType
from gambiarra_desktop.hub.api.responses import dump_json
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.errors import ProxyFailedError
from gambiarra_desktop.hub.proxy.endpoint_policy import EndpointPolicy
from gambiarra_desktop.hub.proxy.hops import HopHeader
from gambiarra_desktop.hub.proxy.metrics import CompletionMeter, error_chunk
from gambiarra_desktop.hub.proxy.reply import AiohttpStreamOut, StreamOut
from gambiarra_desktop.hub.proxy.router import Match
from gambiarra_desktop.hub.proxy.scheduler import Lease, NoCandidatesError, Scheduler
from gambiarra_desktop.hub.proxy.stream_relay import EVENT_STREAM, STREAM_HEADERS, relay_to
from gambiarra_desktop.hub.proxy.tunnel import TunnelHub
from gambiarra_desktop.hub.proxy.upstream_client import (
    ModelResponse,
    StaleConnectionError,
    Target,
    UpstreamConnection,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
)
from gambiarra_desktop.hub.rooms.lifecycle import Room, RoomRegistry
from gambiarra_desktop.protocol import (
    PARTICIPANT_HEADER,
    QUEUE_MS_HEADER,
    REQUEST_ID_HEADER,
    ErrorText,
    LlmMetrics,
    ParticipantInfo,
)

if TYPE_CHECKING:
    from gambiarra_desktop.accounting.keys import KeyBook

log = logging.getLogger(__name__)

MAX_CACHED_TARGETS = 1024
HEADER_SAFE = "-._~:@!$&'()*+,;=/ "
"""Printable id characters stay readable in the header; anything else is %-encoded."""
REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


@lru_cache(maxsize=1024)
def room_label(model: str) -> UsageLabel:
    """A room route's ledger label (free): labels are immutable, one per model will do."""
    return UsageLabel(ROOM_PROVIDER, model)


@lru_cache(maxsize=4096)
def participant_header(participant_id: str) -> str:
    """The ``X-Gambiarra-Participant`` value: quoted once per participant, not per answer."""
    return quote(participant_id, safe=HEADER_SAFE)


def streams(body: Mapping[str, Any], status: int, content_type: str) -> bool:
    """Whether a model's answer is relayed as a stream: it says it is an event stream, or
    a stream was asked for and it succeeded with anything but JSON (some servers stream
    under another label). A whole JSON answer to a request for a stream stays whole, with
    its own type: relabelled as an event stream, no client could read it."""
    if content_type.startswith(EVENT_STREAM):
        return True
    if body.get("stream") is not True or status >= 300:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return not (media_type == "application/json" or media_type.endswith("+json"))


def request_id_of(headers: Mapping[str, str]) -> str:
    """The client's name for its request, echoed in the room's queue events so it can find
    its own place in line; "" when absent or not a short ``[A-Za-z0-9-]`` id (ignored, not
    refused: a client that sends some other id format must still be served)."""
    value = headers.get(REQUEST_ID_HEADER, "")
    return value if REQUEST_ID.fullmatch(value) else ""


class _TryAnotherError(Exception):
    """This participant failed before the client saw a byte: fail over."""

    def __init__(self, reason: str, fallback: web.Response | None = None) -> None:
        super().__init__(reason)
        self.fallback = fallback
        """The participant's own error answer, returned if no other participant is left."""


@dataclass(slots=True)
class _Attempt:
    room: Room
    lease: Lease
    body: dict[str, Any]
    meter: CompletionMeter
    raw: bytes | None = None
    """The client's own bytes of ``body``, sent as they are when the model name needs no
    change (re-encoding a 4 MB body with an image blocked the loop for milliseconds)."""
    hop_header: str = ""
    """The ``Via`` line sent upstream (direct participants)."""
    extra_headers: Mapping[str, str] | None = None
    """Headers for the client's reply (the gateway names the entry and layer that answer)."""
    whole: bool = False
    """Read every answer whole, even a stream: the gateway reads it before replying."""
    require_content: bool = False
    """A stream that ends before any content fails over (the gateway's empty answers)."""
    label: UsageLabel | None = None
    """The gateway entry this call serves (its prices); ``None``: a room route, free."""
    caller: Caller | None = None
    recorded: bool = False
    """Its ledger row is written: one row per attempt, whichever way it ends."""

    @property
    def participant(self) -> ParticipantInfo:
        return self.lease.participant

    def headers(self) -> dict[str, str]:
        headers = {PARTICIPANT_HEADER: participant_header(self.participant["id"]),
                   QUEUE_MS_HEADER: f"{self.lease.queued_ms:.0f}"}
        if self.extra_headers:
            headers.update(self.extra_headers)
        return headers


@dataclass(slots=True)
class _Plan:
    """One request's serving, across its tries: what every try shares."""

    match: Match
    body: dict[str, Any]
    raw: bytes | None
    caller: Caller
    hop_header: str
    request_id: str
    extra_headers: Mapping[str, str] | None
    whole: bool
    require_content: bool
    label: UsageLabel | None
    tried: list[str] = field(default_factory=list)
    """Participants tried so far (a list: one or two ids, and an empty set alone is 216
    bytes of every open stream)."""


class NowDone(Protocol):
    """Where :meth:`ChatProxy.serve_now`'s answer goes."""

    def reply(self, response: web.Response | None) -> None:
        """The whole answer, served with no task; ``None``: it was streamed (pushed)."""

    def write_whole(self, status: int, headers: Mapping[str, str], content_type: str,
                    data: bytes) -> None:
        """Write a whole answer from its parts (no response object built), before its
        bookkeeping: the client reads it while the hub records it. :meth:`reply` with
        ``None`` follows once that is done."""

    def resume(self, rest: Coroutine[Any, Any, web.Response | None]) -> None:
        """The answer needs waiting for after all (a failure to fail over from, a stream, a
        large body): ``rest`` finishes it, as :meth:`ChatProxy.serve` would."""


class PushOut(Protocol):
    """A stream written from callbacks, with no task (the hub's chat front end's)."""

    def start_now(self, status: int, headers: Mapping[str, str]) -> None: ...
    def write_now(self, chunk: bytes) -> bool:
        """Write a chunk; ``False`` when the client is behind (see :meth:`when_drained`)."""
    def finish_now(self) -> None: ...
    def when_drained(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` once the client has caught up (``None``: forget it)."""


class NowChat:
    """A chat begun by :meth:`ChatProxy.serve_now`, its answer still on the way: a whole
    answer taken when its head arrives, or a stream relayed chunk by chunk from the model's
    socket callbacks to the client's (:class:`PushOut`), as ``relay_to`` would in a task:
    nothing sent before the first chunk, an error event if it breaks after, the model held
    back while the client is slow, and silence past the idle timeout ends it."""

    __slots__ = ("_dialing", "_done", "_held_back", "_last", "_out", "_plan", "_proxy",
                 "_push", "_sent", "_timer", "attempt", "finished", "upstream")

    def __init__(self, proxy: ChatProxy, plan: _Plan, attempt: _Attempt, out: StreamOut,
                 done: NowDone, push: PushOut | None = None) -> None:
        self._proxy = proxy
        self._plan = plan
        self.attempt = attempt
        self._out = out
        self._done = done
        self._push = push
        self.upstream: UpstreamResponse | None = None
        self.finished = False
        self._sent = False
        self._held_back = False
        """The model connection is not read while the client is behind."""
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._dialing: asyncio.Task[UpstreamConnection] | None = None

    def send(self) -> bool:
        """Send on an idle pooled connection, or dial one (in a task that ends once it is
        connected) and send from its callback: either way no task waits while the model
        answers. ``False``: not sent, nothing begun (an unusable URL)."""
        proxy, attempt = self._proxy, self.attempt
        try:
            target, payload, on_hub_machine = proxy._direct(attempt)
            self.upstream = self._send_on(target, payload, on_hub_machine, None)
        except UpstreamError:
            return False  # The task path says why.
        if self.upstream is None:
            self._dialing = asyncio.get_running_loop().create_task(
                proxy.pool.dial(target, on_hub_machine))
            self._dialing.add_done_callback(
                lambda task: self._dialed(task, target, payload, on_hub_machine))
        return True

    def _send_on(self, target: Target, payload: bytes, on_hub_machine: bool,
                 connection: UpstreamConnection | None) -> UpstreamResponse | None:
        proxy = self._proxy
        return proxy.pool.send_now(
            target, payload, proxy._config.upstream_first_byte_timeout_s, self._head_arrived,
            on_hub_machine=on_hub_machine, extra_headers=self.attempt.hop_header,
            connection=connection)

    def _dialed(self, task: asyncio.Task[UpstreamConnection], target: Target, payload: bytes,
                on_hub_machine: bool) -> None:
        self._dialing = None
        if task.cancelled():
            return  # By cancel(), which counted the try.
        error = task.exception()
        if self.finished:  # The client left as it connected.
            if error is None:
                task.result().close()
            return
        if error is None:
            connection = task.result()
            try:
                self.upstream = self._send_on(target, payload, on_hub_machine, connection)
            except UpstreamError as exc:
                error = exc
            else:
                if self.upstream is not None:
                    return
                error = UpstreamError("the request could not be sent")
            connection.close()
        # The task path's own steps fail over from a failed dial, with its reason.
        self.finished = True
        self._done.resume(self._proxy._serve_plan(self._plan, self._out, (self.attempt, error)))

    def _head_arrived(self, upstream: UpstreamResponse) -> None:
        if self.finished:
            return
        self.finished = True
        proxy, attempt = self._proxy, self.attempt
        if upstream.error is None and upstream.status < 500:
            content_type = upstream.content_type
            if streams(attempt.body, upstream.status, content_type):
                if self._push is not None:
                    self.finished = False  # Its end is the stream's end.
                    self._last = asyncio.get_running_loop().time()
                    self._arm_idle_timer()
                    upstream.push(self)
                    return
                data = None
            else:
                data = upstream.take_whole(proxy._config.max_upstream_body_bytes)
            if data is not None:
                attempt.meter.on_body(data)
                self._done.write_whole(upstream.status, attempt.headers(), content_type, data)
                try:
                    proxy._report_outcome(attempt, upstream.status, data)
                except Exception:  # The answer is out; a fault of ours must not hang it.
                    log.exception("recording an answer failed")
                finally:
                    upstream.release()
                    attempt.lease.release()
                self._done.reply(None)  # Only now the next pipelined request may start.
                return
        # A reused connection the server had closed: the try opens another, unseen.
        stale = isinstance(upstream.error, StaleConnectionError)
        if stale:
            proxy.pool.stale_retries += 1
        opened = None if stale else upstream
        self._done.resume(proxy._serve_plan(self._plan, self._out, (attempt, opened)))

    # -- a pushed stream (Pusher) ----------------------------------------------------

    def chunk(self, data: bytes) -> None:
        push, upstream = self._push, self.upstream
        if self.finished or not data or push is None or upstream is None:
            return
        self._last = asyncio.get_running_loop().time()
        attempt = self.attempt
        if not self._sent:
            self._start(push, upstream)
        attempt.meter.on_chunk(data)
        if not push.write_now(data) and not self._held_back:
            self._held_back = True
            upstream.pause()  # Hold the model back until the client catches up.
            push.when_drained(self._drained)

    def _start(self, push: PushOut, upstream: UpstreamResponse) -> None:
        self._sent = True
        push.start_now(upstream.status, {**STREAM_HEADERS, **self.attempt.headers()})

    def _drained(self) -> None:
        if not self.finished and self.upstream is not None and self._held_back:
            self._held_back = False
            # The model's silence counts from here: waiting on the client is not it.
            self._last = asyncio.get_running_loop().time()
            self.upstream.resume()

    def end(self, error: BaseException | None) -> None:
        push, upstream = self._push, self.upstream
        if self.finished or push is None or upstream is None:
            return
        self.finished = True
        upstream.unpush()
        push.when_drained(None)
        self._stop_idle_timer()
        if self._held_back:  # Never pooled unread: the next chat on it would hang.
            self._held_back = False
            upstream.resume()
        proxy, attempt = self._proxy, self.attempt
        if error is None:
            if not self._sent:  # An empty stream is still an answer, as relay_to sends it.
                self._start(push, upstream)
            push.finish_now()
            try:
                proxy._report_outcome(attempt, upstream.status, b"")
            finally:
                upstream.release()
                attempt.lease.release()
            # Next turn: this runs inside the model connection's parser callback, and the
            # next request may take that very connection from the pool.
            asyncio.get_running_loop().call_soon(self._done.reply, None)
            return
        if not self._sent:  # Nothing sent yet: another participant may answer it.
            self._done.resume(proxy._serve_plan(self._plan, self._out, (attempt, upstream)))
            return
        # Bytes are out, so the status can no longer change: end with an error event.
        upstream.close()
        message = ErrorText.PROXY_FAILED_PREFIX + str(error)
        push.write_now(error_chunk(message))
        push.finish_now()
        try:
            proxy._record_usage(attempt, 0)
            proxy._record_failure(attempt, message)
        finally:
            attempt.lease.release()
        asyncio.get_running_loop().call_soon(self._done.reply, None)

    def _arm_idle_timer(self) -> None:
        timeout_s = self._proxy._config.upstream_idle_timeout_s
        self._timer = asyncio.get_running_loop().call_at(self._last + timeout_s,
                                                        self._idle_check)

    def _idle_check(self) -> None:
        """One timer per stream, re-armed from the last chunk only when it fires."""
        self._timer = None
        if self.finished:
            return
        timeout_s = self._proxy._config.upstream_idle_timeout_s
        if self._held_back or asyncio.get_running_loop().time() < self._last + timeout_s:
            self._arm_idle_timer()  # Held back for the client, or not silent long enough.
            return
        error = UpstreamError(f"upstream sent nothing for {timeout_s:g} s")
        if self.upstream is not None:
            if self._sent:
                self.upstream.close()
            else:  # The task path fails over from here, with this very reason.
                self.upstream.fail(error)
        self.end(error)

    def _stop_idle_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def cancel(self) -> None:
        """The client left before the answer was out: the model stops, the try is
        counted."""
        if self.finished:
            return
        self.finished = True
        self._stop_idle_timer()
        if self._dialing is not None:
            self._dialing.cancel()
        if self.upstream is not None:
            self.upstream.unpush()
            self.upstream.close()
        self._proxy._record_usage(self.attempt, 0)
        self.attempt.lease.release()


class ChatProxy:
    def __init__(
        self,
        config: HubConfig,
        registry: RoomRegistry,
        tunnels: TunnelHub,
        scheduler: Scheduler,
    ) -> None:
        self._config = config
        self._registry = registry
        self._tunnels = tunnels
        self._scheduler = scheduler
        self.policy = EndpointPolicy()
        """Where participants' chats may go; the server tells it the hub's own sockets."""
        self.hops = HopHeader(uuid.uuid4().hex)
        """Replaced by the hub's stored id when a :class:`HubServer` runs the app."""
        self._pool = UpstreamPool(config.upstream_connect_timeout_s, self.policy)
        self._targets: dict[str, Target] = {}
        self.ledger: Ledger | None = None
        """Set by the app: every upstream attempt adds one usage row to it."""
        self.key_book: KeyBook | None = None
        """Set by the app: a key revoked while its request queued is refused before it
        is forwarded."""

    @property
    def pool(self) -> UpstreamPool:
        return self._pool

    async def close(self) -> None:
        """Close idle upstream connections (the hub is stopping)."""
        self._pool.close()

    def _target(self, endpoint: str) -> Target:
        """Parsed upstream URLs, cached: parsing costs more than the rest of routing."""
        target = self._targets.get(endpoint)
        if target is None:
            if len(self._targets) >= MAX_CACHED_TARGETS:
                self._targets.clear()
            try:
                target = Target.parse(chat_completions_url(endpoint))
            except ValueError as exc:  # Stored by an older hub that checked less.
                raise UpstreamError(f"the endpoint URL is malformed: {exc}") from exc
            self._targets[endpoint] = target
        return target

    async def forward(
        self, request: web.Request, match: Match, body: dict[str, Any], *,
        extra_headers: Mapping[str, str] | None = None, whole: bool = False,
        require_content: bool = False, label: UsageLabel | None = None,
    ) -> web.StreamResponse:
        """:meth:`serve` a request aiohttp read: the whole answer as an unsent response,
        or the stream already sent."""
        out = AiohttpStreamOut(request)
        answer = await self.serve(ChatCall.of(request), match, body, out,
                                  extra_headers=extra_headers, whole=whole,
                                  require_content=require_content, label=label)
        return answer if answer is not None else out.response

    async def serve(
        self, call: ChatCall, match: Match, body: dict[str, Any], out: StreamOut, *,
        raw: bytes | None = None, extra_headers: Mapping[str, str] | None = None,
        whole: bool = False, require_content: bool = False, label: UsageLabel | None = None,
    ) -> web.Response | None:
        """Serve ``body`` from one of the match's participants: the whole answer as an
        unsent response, or ``None`` when it was streamed to ``out``. ``raw``: the body's
        bytes as the client sent them. ``whole``: never stream to the client.
        ``require_content``: a stream that ends before any content counts as a failure
        before the first byte. ``label``: the gateway entry served, for the ledger."""
        plan = self._plan(call, match, body, raw, extra_headers, whole, require_content, label)
        return await self._serve_plan(plan, out)

    def serve_now(
        self, call: ChatCall, match: Match, body: dict[str, Any], raw: bytes, out: StreamOut,
        done: NowDone, push: PushOut | None = None,
    ) -> NowChat | None:
        """Start serving a chat with no task, when nothing needs waiting for: a participant
        has a free slot (no queue) and is dialed directly (over an idle pooled connection,
        or a new one dialed in a task that ends once it is connected). The answer then
        comes back in callbacks: a whole one goes to ``done``, a stream is pushed to
        ``push`` (without ``push`` a stream is not started here). Anything else (a failure
        to fail over from, a large body, a participant behind a tunnel) continues in
        :meth:`serve`'s own steps, handed to ``done.resume``. ``None``:
        nothing was started; take :meth:`serve`. The participant is chosen, the attempt
        built and reported, exactly as :meth:`serve` does."""
        if body.get("stream") is True and push is None:
            return None
        plan = self._plan(call, match, body, raw, None, False, False, None)
        try:
            lease = self._scheduler.acquire_now(
                match.room.code, match.candidates, person=plan.caller.person)
        except NoCandidatesError:
            return None
        if lease is None:
            return None
        participant = lease.participant
        attempt = self._attempt(plan, lease)
        now = NowChat(self, plan, attempt, out, done, push)
        tunnel = participant["transport"] == "tunnel"
        if not tunnel and not now.send():
            lease.release()
            return None
        plan.tried.append(participant["id"])
        self._announce(plan, attempt)
        if tunnel:
            # The answer comes through the participant's tunnel, read in a task; what was
            # decided here (admission, match, choice) stands, and is not done again.
            now.finished = True
            done.resume(self._serve_plan(plan, out, (attempt, None)))
        return now

    def _plan(
        self, call: ChatCall, match: Match, body: dict[str, Any], raw: bytes | None,
        extra_headers: Mapping[str, str] | None, whole: bool, require_content: bool,
        label: UsageLabel | None,
    ) -> _Plan:
        return _Plan(match, body, raw, call.caller or Caller(call.remote),
                     self.hops.outgoing(call.headers.getall("Via", [])),
                     request_id_of(call.headers), extra_headers, whole, require_content,
                     label)

    def _attempt(self, plan: _Plan, lease: Lease) -> _Attempt:
        """One participant's try at the request: the body as it will be sent."""
        participant = lease.participant
        body = plan.body
        same = body.get("model") == participant["model"]
        sent = body if same else {**body, "model": participant["model"]}
        return _Attempt(plan.match.room, lease, sent, CompletionMeter(),
                        plan.raw if same else None, plan.hop_header, plan.extra_headers,
                        plan.whole, plan.require_content, plan.label, plan.caller)

    def _announce(self, plan: _Plan, attempt: _Attempt) -> None:
        if self._registry.listens(EventType.LLM_REQUEST):
            lease = attempt.lease
            data = {"participantId": lease.participant["id"], "model": plan.body.get("model"),
                    "queueMs": round(lease.queued_ms), "inFlight": lease.stats.in_flight}
            if plan.request_id:  # Additive fields: how busy it is, and whose request.
                data["requestId"] = plan.request_id
            self._registry.publish(EventType.LLM_REQUEST, attempt.room, data)

    async def _serve_plan(
        self, plan: _Plan, out: StreamOut,
        started: tuple[_Attempt, UpstreamResponse | BaseException | None] | None = None,
    ) -> web.Response | None:
        """Each participant's try in turn, until one answers or none is left.
        ``started``: the first try, already under way (begun by :meth:`serve_now`)."""
        room = plan.match.room
        caller = plan.caller
        last_problem = ErrorText.NO_PARTICIPANT
        fallback: web.Response | None = None
        for _attempt in range(1 + self._config.failover_retries):
            upstream: UpstreamResponse | BaseException | None = None
            if started is not None:
                (attempt, upstream), started = started, None
            else:
                try:
                    lease = await self._scheduler.acquire(
                        room.code, plan.match.candidates, frozenset(plan.tried),
                        person=caller.person, priority=caller.priority,
                        request_id=plan.request_id)
                except NoCandidatesError:
                    break
                if caller.key is not None and self.key_book is not None:
                    try:  # It may have queued for seconds: was the key revoked meanwhile?
                        self.key_book.require_live(caller.key.id)
                    except InvalidApiKeyError:
                        lease.release()
                        raise
                plan.tried.append(lease.participant["id"])
                attempt = self._attempt(plan, lease)
                self._announce(plan, attempt)
            try:
                return await self._serve(out, attempt, upstream)
            except _TryAnotherError as exc:
                last_problem = str(exc)
                fallback = exc.fallback or fallback
                self._record_usage(attempt, exc.fallback.status if exc.fallback else 0)
                self._record_failure(attempt, last_problem)
            except BaseException:
                self._record_usage(attempt, 0)  # Client gone or hub stopping mid-answer.
                raise
            finally:
                attempt.lease.release()
        if fallback is not None:
            return fallback
        raise ProxyFailedError(last_problem)

    async def _serve(self, out: StreamOut, attempt: _Attempt,
                     opened: UpstreamResponse | BaseException | None = None
                     ) -> web.Response | None:
        """One try: open (unless ``opened`` already was, or failed to), then read or stream
        the answer."""
        upstream: ModelResponse
        if isinstance(opened, UpstreamError):
            raise _TryAnotherError(str(opened)) from opened
        if isinstance(opened, BaseException):
            raise opened
        if opened is not None and opened.error is not None:
            opened.close()
            raise _TryAnotherError(str(opened.error))
        try:
            upstream = opened if opened is not None else await self._open(attempt)
        except UpstreamError as exc:
            raise _TryAnotherError(str(exc)) from exc
        try:
            content_type = upstream.header("Content-Type") or ""
            if upstream.status >= 500:
                raise _TryAnotherError(
                    f"upstream answered {upstream.status}",
                    await self._whole(attempt, upstream, content_type, failed=True))
            if not attempt.whole and streams(attempt.body, upstream.status, content_type):
                await self._stream(out, attempt, upstream)
                return None
            return await self._whole(attempt, upstream, content_type)
        except BaseException:
            upstream.close()  # Client gone, hub stopping, or failing over: stop generating.
            raise
        finally:
            upstream.release()

    async def _open(self, attempt: _Attempt) -> ModelResponse:
        timeout_s = self._config.upstream_first_byte_timeout_s
        participant = attempt.participant
        if participant["transport"] == "tunnel":
            session = self._tunnels.get(attempt.room.code, participant["id"])
            if session is None:
                raise UpstreamError(ErrorText.TUNNEL_NOT_CONNECTED)
            return await session.open(attempt.body, timeout_s)
        target, payload, on_hub_machine = self._direct(attempt)
        return await self._pool.post(target, payload, timeout_s,
                                     on_hub_machine=on_hub_machine,
                                     extra_headers=attempt.hop_header)

    def _direct(self, attempt: _Attempt) -> tuple[Target, bytes, bool]:
        """What dialing a participant directly needs: its URL, the body to send, and
        whether it joined from the hub's machine (its loopback is its own then)."""
        participant = attempt.participant
        target = self._target(participant["endpoint"])
        on_hub_machine = self.policy.on_hub_machine(
            attempt.room.joined_from.get(participant["id"]))
        payload = attempt.raw if attempt.raw is not None else dump_json(attempt.body)
        return target, payload, on_hub_machine

    async def _whole(
        self, attempt: _Attempt, upstream: ModelResponse, content_type: str,
        failed: bool = False,
    ) -> web.Response:
        try:
            data = await upstream.read(self._config.upstream_idle_timeout_s,
                                       self._config.max_upstream_body_bytes)
        except UpstreamError as exc:
            raise _TryAnotherError(str(exc)) from exc
        return self._whole_answer(attempt, upstream.status, data, content_type, failed)

    def _whole_answer(self, attempt: _Attempt, status: int, data: bytes, content_type: str,
                      failed: bool = False) -> web.Response:
        """A whole answer, read: metered, and (unless it is a failure) reported."""
        attempt.meter.on_body(data)
        response = web.Response(body=data, status=status, headers=attempt.headers())
        if content_type:
            response.headers["Content-Type"] = content_type
        if not failed:
            self._report_outcome(attempt, status, data)
        return response

    async def _stream(
        self, out: StreamOut, attempt: _Attempt, upstream: ModelResponse
    ) -> None:
        try:
            broken = await relay_to(
                out, upstream, attempt.headers(), self._config.upstream_idle_timeout_s,
                attempt.meter.on_chunk, attempt.require_content)
        except UpstreamError as exc:
            raise _TryAnotherError(str(exc)) from exc  # Nothing sent yet: fail over.
        if broken is not None:
            self._record_usage(attempt, 0)
            self._record_failure(attempt, broken)
        else:
            self._report_outcome(attempt, upstream.status, b"")

    def _record_usage(self, attempt: _Attempt, status: int,
                      read: tuple[LlmMetrics, int | None] | None = None) -> None:
        """The attempt's ledger row: tokens as the server reported them, else counted.
        ``read``: the meter's result and reported prompt tokens, when already read."""
        if self.ledger is None or attempt.recorded:
            return
        attempt.recorded = True
        participant = attempt.participant
        label = attempt.label or room_label(participant["model"])
        metrics, prompt = read or attempt.meter.usage()
        self.ledger.record(row_of_call(
            label, attempt.caller or Caller(""), attempt.meter, status, attempt.body,
            prompt, room=attempt.room.code, participant=participant["id"], metrics=metrics))

    def _report_outcome(self, attempt: _Attempt, status: int, body: bytes) -> None:
        participant = attempt.participant
        metrics, prompt = attempt.meter.usage()
        self._record_usage(attempt, status, (metrics, prompt))
        if status >= 400:
            text = body[:500].decode(errors="replace")
            self._record_failure(attempt, f"upstream answered {status}: {text}",
                                 count_against=False)
            if status == 429:  # The model server says it is overloaded: take fewer at once.
                attempt.lease.stats.capacity.on_overload()
            return
        # The capacity sample counts this request as in flight; then the slot is freed
        # before the event, whose "inFlight" must not count a finished request.
        attempt.lease.stats.record_success(metrics, prompt or 0,
                                           streamed=attempt.meter.streamed)
        attempt.lease.release()
        if self._registry.listens(EventType.LLM_COMPLETE):
            self._registry.publish(
                EventType.LLM_COMPLETE, attempt.room,
                {"participantId": participant["id"], "model": participant["model"],
                 "metrics": {**metrics, "queueMs": round(attempt.lease.queued_ms)},
                 "participant": attempt.lease.stats.snapshot()})

    def _record_failure(self, attempt: _Attempt, message: str,
                        count_against: bool = True) -> None:
        """An error event, and (for the participant's own failures) a step towards being
        degraded. A 4xx is the client's request at fault, not the participant."""
        participant = attempt.participant
        stats = attempt.lease.stats
        if stats.record_failure(self._config.degrade_after_failures,
                                self._config.degraded_cooldown_s, own_fault=count_against):
            log.warning("%s is degraded for %g s after %d failures", participant["nickname"],
                        self._config.degraded_cooldown_s, stats.consecutive_failures)
        log.warning("proxy to %s failed: %s", participant["nickname"], message)
        # "inFlight" (additive) as it will be once this attempt's slot is freed.
        in_flight = stats.in_flight - (0 if attempt.lease.released else 1)
        self._registry.publish(
            EventType.LLM_ERROR, attempt.room,
            {"participantId": participant["id"], "error": message,
             "inFlight": max(0, in_flight)})
