"""The Agent page's own chat: one conversation at a time, run by the agent core in-process.

A chat is a tracked task: Stop cancels it, and the core then kills a running command and
settles its relay. Events are drawn as a client would read them, as they come; the top
agent's text becomes the assistant's turn in the history the next prompt is sent with.
The sessions started here are remembered, so an approval card can say whether this page
or a program using the API asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gambiarra_desktop.agent.errors import TooManySessionsError
from gambiarra_desktop.agent.events import AgentEvent
from gambiarra_desktop.agent.orchestrator import RunSettings
from gambiarra_desktop.agent.permissions import NO_NARROWING
from gambiarra_desktop.agent.requests import ChatPlan
from gambiarra_desktop.agent.server import AgentServer
from gambiarra_desktop.agent.service import AgentSession
from gambiarra_desktop.gui import agent_text
from gambiarra_desktop.gui.agent_view import AgentPage
from gambiarra_desktop.gui.tasks import TaskTracker

log = logging.getLogger(__name__)

PEER = "desktop app"
"""Who the audit names for the page's own chats."""
STOP_WAIT_S = 10.0
"""The core ends a chat (kills its command) well within this."""
NEEDS_SWITCH = "Turn on the agent above first: the page's chat runs in it."
NEEDS_WORKSPACE = "Choose the folder the agent works in (Workspace) first."


class AgentChat:
    def __init__(self, view: AgentPage, tasks: TaskTracker,
                 on_finished: Callable[[], None]) -> None:
        self.view = view
        self.tasks = tasks
        self._on_finished = on_finished
        self.task: asyncio.Task[None] | None = None
        self.session_ids: set[str] = set()
        """The page's own sessions: their cards say so, the others came from a program."""
        self.history: list[dict[str, Any]] = []
        self._top_agent = ""
        self._reply: list[str] = []

    def send(self, server: AgentServer | None, prompt: str) -> None:
        self.view.error.setText("")
        if server is None:
            self.view.error.setText(NEEDS_SWITCH)
            return
        if self.task is not None:
            return
        folder = self.view.workspace.text().strip()
        if not folder:
            self.view.error.setText(NEEDS_WORKSPACE)
            return
        try:
            session = server.service.open_session(PEER, workspace=folder_path(folder))
        except TooManySessionsError as exc:
            self.view.error.setText(exc.message)
            return
        except OSError as exc:
            self.view.error.setText(f"Cannot use the workspace: {folder_problem(exc, folder)}")
            return
        model = self.view.model.currentText().strip() or "auto"
        messages = [*self.history, {"role": "user", "content": prompt}]
        plan = ChatPlan(messages, RunSettings(model, server.service.config.default_max_iterations,
                                              NO_NARROWING))
        self.session_ids.add(session.id)
        self.view.transcript.add_prompt(prompt)
        self.view.prompt.clear()
        self.view.set_running(True)
        self.task = self.tasks.spawn(self._run(server, session, plan))

    async def _run(self, server: AgentServer, session: AgentSession, plan: ChatPlan) -> None:
        self._top_agent, self._reply = "", []
        try:
            await server.service.run(session, plan, self.on_event)
        except asyncio.CancelledError:
            self.view.transcript.add_note("Stopped.")
            raise
        except Exception as exc:
            log.exception("the agent's chat failed")
            self.view.transcript.add_error(f"The agent stopped: {exc}")
        finally:
            self.session_ids.discard(session.id)
            reply = "".join(self._reply)
            self.history = [*plan.messages] + (
                [{"role": "assistant", "content": reply}] if reply else [])
            self.task = None
            self.view.set_running(False)
            self._on_finished()

    async def on_event(self, event: AgentEvent) -> None:
        """Each event as a client would read it, shown as it comes."""
        kind = event.get("type")
        transcript = self.view.transcript
        if kind == "harness_start":
            if "parentId" not in event:
                self._top_agent = str(event.get("agentId", ""))
            else:
                transcript.add_note("A sub-agent started.")
        elif kind == "harness_end" and "parentId" in event:
            transcript.add_note("The sub-agent finished.")
        elif kind in ("text", "reasoning"):
            content = str(event.get("content", ""))
            transcript.append_text(str(event.get("id", "")), content,
                                   reasoning=kind == "reasoning")
            if kind == "text" and event.get("agentId") == self._top_agent:
                self._reply.append(content)
        elif kind == "tool_call":
            name = str(event.get("name", ""))
            transcript.add_tool(str(event.get("id", "")), agent_text.tool_heading(name),
                                agent_text.call_text(name, event.get("input")))
        elif kind == "relay":
            block = transcript.tool(str(event.get("toolCallId", "")))
            if block is not None:
                block.set_waiting()
        elif kind == "tool_result":
            block = transcript.tool(str(event.get("id", "")))
            if block is not None:
                block.set_result(*agent_text.result_text(event.get("output")))
        elif kind == "usage":
            self.view.status.setText(f"Working… ({event.get('inputTokens', 0)} tokens in,"
                                     f" {event.get('outputTokens', 0)} out)")
        elif kind == "error":
            transcript.add_error(f"Error: {event.get('message', '')}")

    def stop(self) -> None:
        """The core kills a running command and settles a waiting relay."""
        if self.task is not None:
            self.task.cancel()

    async def cancel(self) -> None:
        task = self.task
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_WAIT_S)

    def new(self) -> None:
        if self.task is None:
            self.history = []
            self.view.transcript.clear()


def folder_path(folder: str) -> Path:
    """What the user typed, ``~`` included, as a path (the core resolves it)."""
    return Path(folder).expanduser()


def folder_problem(exc: OSError, folder: str) -> str:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return f"{folder} is not a folder on this computer"
    return exc.strerror or str(exc)
