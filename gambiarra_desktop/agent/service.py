"""The agent as a library: live sessions, the relay desk, the rules, the model client.

The HTTP routes and the desktop app both drive this object, so an approval card in the app
and a ``POST /chat/relay`` answer the same relay, and a chat started from the app runs the
same orchestrator a client's ``/chat`` does. Sessions are bounded (each may hold running
commands); a slot is taken with no ``await`` between the check and the take, and freed
when its run ends however it ends.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from gambiarra_desktop.agent import events
from gambiarra_desktop.agent.config import AgentConfig
from gambiarra_desktop.agent.errors import SessionNotFoundError, TooManySessionsError
from gambiarra_desktop.agent.model_client import ModelClient
from gambiarra_desktop.agent.orchestrator import Emit, Orchestrator
from gambiarra_desktop.agent.relays import RelayAnswer, RelayDesk
from gambiarra_desktop.agent.requests import ChatPlan
from gambiarra_desktop.agent.rule_book import RuleBook
from gambiarra_desktop.agent.tools.context import ToolContext
from gambiarra_desktop.agent.workspace import Workspace
from gambiarra_desktop.execution.audit import AuditLog
from gambiarra_desktop.hub.config import DATABASE_FILE_NAME
from gambiarra_desktop.hub.rooms.store import SqliteStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AgentSession:
    id: str
    peer: str
    workspace: Workspace


class AgentService:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.desk = RelayDesk(config.relay_timeout_s)
        self.rules = RuleBook(config.data_dir)
        self._store = SqliteStore(config.data_dir / DATABASE_FILE_NAME)
        self.audit = AuditLog(self._store)
        self._http: aiohttp.ClientSession | None = None
        self._client: ModelClient | None = None
        self._sessions: dict[str, AgentSession] = {}

    async def start(self) -> None:
        Workspace(self.config.workspace)  # A missing workspace fails now, not mid-chat.
        await self._store.open()
        await self.audit.open()
        self._http = aiohttp.ClientSession(auto_decompress=True)
        self._client = ModelClient(self._http, self.config.base_url, self.config.api_key,
                                   self.config.model_timeout_s)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self._store.close()

    @property
    def client(self) -> ModelClient:
        if self._client is None:
            raise RuntimeError("AgentService.start() was not awaited")
        return self._client

    def session_count(self) -> int:
        return len(self._sessions)

    def open_session(self, peer: str, workspace: Path | None = None) -> AgentSession:
        """Take a session slot (:class:`TooManySessionsError` when none is free)."""
        chosen = Workspace(workspace or self.config.workspace, (self.config.data_dir,))
        if len(self._sessions) >= self.config.max_sessions:
            raise TooManySessionsError(self.config.max_sessions)
        session = AgentSession("session_" + secrets.token_hex(8), peer, chosen)
        self._sessions[session.id] = session
        return session

    async def run(self, session: AgentSession, plan: ChatPlan, emit: Emit) -> None:
        """The session's whole conversation, then its slot is freed (also when cancelled)."""
        context = ToolContext(session.workspace, session.id, session.peer, self.audit,
                              self.config.bash_timeout_cap_s, self.config.bash_max_output_bytes)
        orchestrator = Orchestrator(session.id, self.client, self.desk, self.rules, context, emit)
        try:
            await emit(events.connected(session.id))
            await orchestrator.run(plan.messages, plan.settings)
        finally:
            self.close_session(session.id)

    def close_session(self, session_id: str) -> None:
        """Free the slot (idempotent): also for a run cancelled before its first step."""
        self._sessions.pop(session_id, None)

    def answer_relay(self, session_id: str, relay_id: str, answer: RelayAnswer) -> None:
        if session_id not in self._sessions:
            raise SessionNotFoundError
        self.desk.answer(relay_id, answer, session_id)

