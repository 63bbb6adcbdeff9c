"""A hub's terminal sessions: the one home of a session's life (open, use, idle, close)
and of the audit of each step.

- At most ``max_sessions`` (8) at once. The count and the place being opened are checked
  and taken with no ``await`` in between, so a burst cannot open a ninth.
- A session unused for ``idle_timeout_s`` (15 min) is closed by a sweeper; every session is
  closed when the hub stops.
- While the desktop app hosts, each new session first asks the host (``approvals``); no
  answer in time is a no. ``gambiarra serve`` has nobody to ask: its admin token and the
  loopback-only routes are the gate.
- Every open, refusal, command, write and close is written to the audit before the caller
  is answered; a write's data is never kept, only its size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from gambiarra_desktop.execution.audit import AuditEntry, AuditLog
from gambiarra_desktop.execution.result import CommandResult
from gambiarra_desktop.execution.runner import DEFAULT_TIMEOUT_S
from gambiarra_desktop.hub.rooms.store import Store
from gambiarra_desktop.terminal.approvals import ApprovalDesk, ApprovalRequest
from gambiarra_desktop.terminal.errors import (
    ApprovalDeniedError,
    HostKeyUnknownError,
    InvalidSessionRequestError,
    SessionEndedError,
    SessionNotFoundError,
    TerminalDisabledError,
    TerminalError,
    TooManyCommandsError,
    TooManySessionsError,
)
from gambiarra_desktop.terminal.session import OutputListener, SessionType, TerminalSession
from gambiarra_desktop.terminal.specs import SessionSpec, session_spec

log = logging.getLogger(__name__)

MAX_SESSIONS = 8
IDLE_TIMEOUT_S = 15 * 60.0
MAX_RUNNING_PER_SESSION = 4
"""Commands one session runs at once: each may hold up to 1 MB of output until it ends."""
KNOWN_HOSTS_FILE = "terminal_known_hosts"


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    type: SessionType
    target: str
    created_at_ms: int
    connected: bool

    def to_json(self) -> dict[str, Any]:
        created = datetime.fromtimestamp(self.created_at_ms / 1000, UTC)
        return {"id": self.id, "type": self.type,
                "createdAt": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "connected": self.connected, "target": self.target}


@dataclass(slots=True)
class _Open:
    session: TerminalSession
    created_at_ms: int
    last_used: float = field(default_factory=time.monotonic)
    busy: int = 0
    """Commands running now: a session in the middle of a 5-minute command is not idle."""

    def info(self) -> SessionInfo:
        s = self.session
        return SessionInfo(s.id, s.type, s.target, self.created_at_ms, s.connected)


SessionsChanged = Callable[[], None]
MAX_UNKNOWN_KEYS = 16
"""Unknown SSH host keys remembered for the host to trust in the app (newest kept)."""


@dataclass(frozen=True, slots=True)
class UnknownHostKey:
    """An SSH host that offered a key nobody trusted yet: shown in the app, where the host
    may trust it after comparing the fingerprint (the program then simply resends)."""

    host: str
    port: int
    address: str
    fingerprint: str
    key: object
    seen_at_ms: int


class TerminalManager:
    def __init__(self, store: Store, data_dir: Path | None, *, enabled: bool = False,
                 workdir: Path | None = None, max_sessions: int = MAX_SESSIONS,
                 idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.enabled = enabled
        """Settable while the hub runs (the app's settings toggle); checked on every call."""
        self.ask_for_local = True
        """False when the host ticked "don't ask before local sessions"."""
        self.approvals: ApprovalDesk | None = None
        """Set by the desktop app when it hosts; ``None``: nobody to ask (headless)."""
        self.workdir = workdir or Path.home()
        self.audit = AuditLog(store)
        self._data_dir = data_dir
        self._max = max_sessions
        self._idle_timeout_s = idle_timeout_s
        self._sessions: dict[str, _Open] = {}
        self._opening = 0
        self._listeners: list[tuple[OutputListener, SessionsChanged]] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self._unknown_keys: dict[str, UnknownHostKey] = {}

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        await self.audit.open()
        self._sweeper = asyncio.create_task(self._close_idle_forever(),
                                            name="gambiarra-terminal-idle")

    async def stop(self) -> None:
        """The hub stops: every session ends (shells killed, connections closed), and one
        still opening is closed as it arrives."""
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.close_all("hub", "the hub stopped")

    async def close_all(self, actor: str, why: str) -> None:
        """Every session ends, audited with ``why`` (the hub stops; the host turns terminal
        sessions off in the app, which sets ``enabled`` first so none opens meanwhile)."""
        for session_id in list(self._sessions):
            await self._end(session_id, actor, "", why)

    # --- listeners (the app's Terminal page) -------------------------------------------
    def subscribe(self, on_output: OutputListener,
                  on_sessions: SessionsChanged) -> Callable[[], None]:
        pair = (on_output, on_sessions)
        self._listeners.append(pair)
        return lambda: self._listeners.remove(pair) if pair in self._listeners else None

    def _output(self, session_id: str, chunk: str) -> None:
        for on_output, _ in list(self._listeners):
            try:
                on_output(session_id, chunk)
            except Exception:
                log.exception("terminal output listener failed")

    def _changed(self) -> None:
        for _, on_sessions in list(self._listeners):
            try:
                on_sessions()
            except Exception:
                log.exception("terminal sessions listener failed")

    # --- the API -------------------------------------------------------------------------
    def require_enabled(self) -> None:
        if not self.enabled:
            raise TerminalDisabledError

    def sessions(self) -> list[SessionInfo]:
        return [entry.info() for entry in self._sessions.values()]

    async def create(self, body: dict[str, Any], actor: str, *, peer: str = "",
                     approved: bool = False) -> SessionInfo:
        self.require_enabled()
        spec = session_spec(body)
        if len(self._sessions) + self._opening >= self._max:
            await self._audit(actor, peer, "refused", spec=spec, outcome="too many sessions")
            raise TooManySessionsError(self._max)
        self._opening += 1  # Counted with the check above: no await between them.
        session_id = f"term-{int(time.time() * 1000)}-{secrets.token_hex(3)}"
        try:
            if not approved and not await self._approved(spec, peer):
                raise ApprovalDeniedError("the host said no, or did not answer in time")
            session = await self._start(session_id, spec)
            if not self.enabled or self._stopping:  # Switched off while it was opening.
                await session.close()
                raise TerminalDisabledError
        except TerminalError as exc:
            if isinstance(exc, HostKeyUnknownError):
                self._remember_unknown(exc)
            await self._audit(actor, peer, "refused", spec=spec, outcome=exc.message)
            raise
        finally:
            self._opening -= 1
        entry = _Open(session, int(time.time() * 1000))
        self._sessions[session_id] = entry
        await self._audit(actor, peer, "open", session, outcome="ok")
        self._changed()
        return entry.info()

    async def execute(self, session_id: str, command: str, actor: str, *, peer: str = "",
                      timeout_s: float | None = None) -> CommandResult:
        entry = self._use(session_id, live=True)
        if entry.busy >= MAX_RUNNING_PER_SESSION:  # Checked and counted with no await.
            raise TooManyCommandsError(MAX_RUNNING_PER_SESSION)
        entry.busy += 1
        try:  # Audited before it runs: a command the audit cannot record does not run.
            row = await self._audit(actor, peer, "execute", entry.session, command=command,
                                    outcome="started")
            try:
                result = await entry.session.execute(command, timeout_s or DEFAULT_TIMEOUT_S)
            except TerminalError as exc:
                await self.audit.finish(row, None, exc.message)
                raise
            except BaseException:
                await asyncio.shield(self.audit.finish(row, None, "cancelled"))
                raise
        finally:
            entry.busy -= 1
            entry.last_used = time.monotonic()
        outcome = ("timed out" if result.timed_out else "truncated" if result.truncated
                   else "ok")
        await self.audit.finish(row, result.exit_code, outcome)
        return result

    async def send(self, session_id: str, data: str, actor: str, *, peer: str = "") -> None:
        entry = self._use(session_id, live=True)
        await entry.session.send(data)
        await self._audit(actor, peer, "send", entry.session, size=len(data.encode()),
                          outcome="ok")

    def output(self, session_id: str) -> list[str]:
        return self._use(session_id).session.take_output()

    async def close(self, session_id: str, actor: str, *, peer: str = "") -> None:
        self.require_enabled()
        if session_id not in self._sessions:
            raise SessionNotFoundError(session_id)
        await self._end(session_id, actor, peer, "closed")

    def unknown_host_keys(self) -> list[UnknownHostKey]:
        return list(self._unknown_keys.values())

    async def trust_host_key(self, fingerprint: str, actor: str) -> UnknownHostKey:
        """The host trusts a key an SSH request was refused for (in the app, after comparing
        the fingerprint); the program's next request for that host then logs in."""
        self.require_enabled()
        unknown = self._unknown_keys.pop(fingerprint, None)
        if unknown is None:
            raise InvalidSessionRequestError(f"no waiting SSH host key {fingerprint}")
        from gambiarra_desktop.terminal.known_hosts import KnownHosts

        known = KnownHosts(self._known_hosts_path())
        if known.keys_for(unknown.address, unknown.port):  # Trusted meanwhile: never a second.
            raise InvalidSessionRequestError(
                f"{unknown.host}:{unknown.port} already has a trusted key")
        known.trust(unknown.address, unknown.port, unknown.key)  # type: ignore[arg-type]
        await self._audit(actor, "", "trust", None, outcome=fingerprint,
                          spec=SessionSpec("ssh", unknown.host, unknown.port))
        self._changed()
        return unknown

    def _remember_unknown(self, error: HostKeyUnknownError) -> None:
        if error.key is None or not error.address:
            return
        self._unknown_keys.pop(error.fingerprint, None)
        while len(self._unknown_keys) >= MAX_UNKNOWN_KEYS:
            del self._unknown_keys[next(iter(self._unknown_keys))]
        self._unknown_keys[error.fingerprint] = UnknownHostKey(
            error.host, error.port, error.address, error.fingerprint, error.key,
            int(time.time() * 1000))
        self._changed()

    # --- inside ------------------------------------------------------------------------
    def _use(self, session_id: str, *, live: bool = False) -> _Open:
        """The session, or 404; ``live``: it must still be connected (409 when its shell
        exited or its connection closed; its output can still be read)."""
        self.require_enabled()
        entry = self._sessions.get(session_id)
        if entry is None:
            raise SessionNotFoundError(session_id)
        if live and not entry.session.connected:
            raise SessionEndedError(session_id)
        entry.last_used = time.monotonic()
        return entry

    async def _approved(self, spec: SessionSpec, peer: str) -> bool:
        desk = self.approvals
        if desk is None or (spec.type == "local" and not self.ask_for_local):
            return True
        return await desk.ask(ApprovalRequest(desk.new_id(), spec.type, spec.target, peer))

    async def _start(self, session_id: str, spec: SessionSpec) -> TerminalSession:
        """The one place a session of each kind is made (imports kept here: SSH and Telnet
        libraries load only when someone opens such a session)."""
        if spec.type == "local":
            from gambiarra_desktop.terminal.local import LocalSession

            local = LocalSession(session_id, cwd=self.workdir, on_output=self._output)
            await local.start()
            return local
        if spec.type == "ssh":
            from gambiarra_desktop.terminal.known_hosts import KnownHosts
            from gambiarra_desktop.terminal.ssh import open_ssh

            return await open_ssh(session_id, spec, KnownHosts(self._known_hosts_path()),
                                  on_output=self._output)
        from gambiarra_desktop.terminal.telnet import open_telnet

        return await open_telnet(session_id, spec.host, spec.port, on_output=self._output)

    def _known_hosts_path(self) -> Path:
        if self._data_dir is None:  # A hub with no data dir (tests) keeps them beside home.
            return self.workdir / ".gambiarra_known_hosts"
        return self._data_dir / KNOWN_HOSTS_FILE

    async def _end(self, session_id: str, actor: str, peer: str, why: str) -> None:
        entry = self._sessions.pop(session_id, None)
        if entry is None:
            return
        try:
            await entry.session.close()
        except Exception:  # Ending must not fail: the session is gone from the list anyway.
            log.exception("closing terminal session %s failed", session_id)
        await self._audit(actor, peer, "close", entry.session, outcome=why)
        self._changed()

    async def _close_idle_forever(self) -> None:
        interval = max(0.05, min(30.0, self._idle_timeout_s / 10))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for session_id, entry in list(self._sessions.items()):
                if entry.busy == 0 and now - entry.last_used >= self._idle_timeout_s:
                    await self._end(session_id, "hub", "", "idle timeout")

    async def _audit(self, actor: str, peer: str, action: Any,
                     session: TerminalSession | None = None, *, spec: SessionSpec | None = None,
                     command: str | None = None, size: int | None = None,
                     exit_code: int | None = None, outcome: str | None = None) -> int:
        try:
            return await self.audit.record(AuditEntry(
                actor, peer, action, session.id if session else None,
                session.type if session else spec.type if spec else None,
                session.target if session else spec.target if spec else None,
                command, size, exit_code, outcome))
        except Exception:
            log.exception("could not write a terminal audit row")
            raise


TERMINAL = web.AppKey("terminal", TerminalManager)
