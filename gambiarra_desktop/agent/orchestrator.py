"""One ``/chat``: call the model, ask permission for each tool call, run the approved ones,
feed the results back, repeat; after ``maxIterations`` one last call without tools asks for
a summary. A sub-agent (the ``agent`` tool) is the same loop one level down.

The life of a tool call reads top to bottom in :meth:`Orchestrator._tool_call`:
``tool_call`` event, then the permission (the request's narrowing, a stored rule, or a
relay the user answers), then the tool, then ``tool_result``. Nothing here knows HTTP:
events go to ``emit``, which the SSE route and the desktop app both provide. Cancelling
:meth:`run` (the client went away, the user pressed Stop) cancels the model call, kills a
running command's process group and settles a waiting relay: nothing is left behind.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gambiarra_desktop.agent import events
from gambiarra_desktop.agent.config import MAX_DEPTH
from gambiarra_desktop.agent.errors import ModelCallError, ToolError
from gambiarra_desktop.agent.events import AgentEvent
from gambiarra_desktop.agent.model_client import ModelClient, ModelTurn, ToolCall
from gambiarra_desktop.agent.permissions import RequestPermissions, rule_for
from gambiarra_desktop.agent.relays import PermissionRequest, RelayDesk
from gambiarra_desktop.agent.rule_book import RuleBook
from gambiarra_desktop.agent.tools.bash import bash
from gambiarra_desktop.agent.tools.context import ToolContext
from gambiarra_desktop.agent.tools.patch import patch
from gambiarra_desktop.agent.tools.read import read
from gambiarra_desktop.agent.tools.specs import tool_specs

Emit = Callable[[AgentEvent], Awaitable[None]]
Tool = Callable[[Any, ToolContext], Awaitable[dict[str, Any]]]
TOOLS: dict[str, Tool] = {"bash": bash, "read": read, "patch": patch}
MAX_TOOL_OUTPUT_CHARS = 64 * 1024
"""What one tool result may add to the conversation (the runner caps bytes already)."""
DENIED_BY_REQUEST = "denied by this request's permissions"
DENIED_BY_USER = "denied by the user"
SUMMARY_PROMPT = ("You have used all the steps allowed for this task. Without calling any"
                  " tool, summarise what you did, what you found and what is left to do.")


def system_prompt(workspace: str) -> str:
    return (f"You are a careful coding agent working in the folder {workspace}. Tools: bash"
            " runs a shell command there; read reads a file; patch applies a unified diff to"
            " files you have read; agent hands a self-contained task to a sub-agent. The user"
            " approves each tool call; a denied call returns status \"denied\": do not retry"
            " it, carry on without it or explain what you needed.")


@dataclass(slots=True)
class RunSettings:
    model: str
    max_iterations: int
    permissions: RequestPermissions


class Orchestrator:
    def __init__(self, session_id: str, client: ModelClient, desk: RelayDesk, rules: RuleBook,
                 context: ToolContext, emit: Emit) -> None:
        self.session_id = session_id
        self._client = client
        self._desk = desk
        self._rules = rules
        self._context = context
        self._emit = emit

    async def run(self, messages: list[dict[str, Any]], settings: RunSettings) -> None:
        """The whole conversation; a model failure ends it with an ``error`` event."""
        try:
            await self._agent(messages, settings, depth=0, parent_id=None)
        except ModelCallError as exc:
            await self._emit(events.error(exc.message))

    async def _agent(self, messages: list[dict[str, Any]], settings: RunSettings, depth: int,
                     parent_id: str | None) -> str:
        run_id = "run_" + secrets.token_hex(6)
        agent_id = "agent_" + secrets.token_hex(6)
        history = list(messages)
        if not history or history[0].get("role") != "system":
            history.insert(0, {"role": "system",
                               "content": system_prompt(str(self._context.workspace.root))})
        await self._emit(events.harness_start(run_id, agent_id, parent_id))
        try:
            tools = tool_specs(may_delegate=depth < MAX_DEPTH)
            for _ in range(settings.max_iterations):
                turn = await self._model(settings.model, history, tools, run_id, agent_id)
                history.append(_assistant_message(turn))
                if not turn.tool_calls:
                    return turn.text
                for call in turn.tool_calls:
                    output = await self._tool_call(call, turn, settings, depth, agent_id)
                    history.append({"role": "tool", "tool_call_id": call.id,
                                    "content": _as_text(output)})
            history.append({"role": "user", "content": SUMMARY_PROMPT})
            turn = await self._model(settings.model, history, None, run_id, agent_id)
            return turn.text
        finally:
            await self._emit(events.harness_end(run_id, agent_id, parent_id))

    async def _model(self, model: str, history: list[dict[str, Any]],
                     tools: list[dict[str, Any]] | None, run_id: str, agent_id: str) -> ModelTurn:
        turn = ModelTurn()
        message_id = "msg_" + secrets.token_hex(6)
        async for delta in self._client.chat(model, history, tools, turn):
            build = events.text if delta.kind == "text" else events.reasoning
            await self._emit(build(message_id, run_id, agent_id, delta.content))
        await self._emit(events.usage(turn.input_tokens, turn.output_tokens))
        return turn

    async def _tool_call(self, call: ToolCall, turn: ModelTurn, settings: RunSettings,
                         depth: int, agent_id: str) -> Any:
        params = call.parsed()
        await self._emit(events.tool_call(call.id, call.name, params))
        output = await self._permitted_output(call, params, turn, settings, depth, agent_id)
        await self._emit(events.tool_result(call.id, call.name, output))
        return output

    async def _permitted_output(self, call: ToolCall, params: Any, turn: ModelTurn,
                                settings: RunSettings, depth: int, agent_id: str) -> Any:
        known = call.name in TOOLS or (call.name == "agent" and depth < MAX_DEPTH)
        if not known:
            return {"error": f"there is no tool called {call.name[:60]!r} here"}
        if not isinstance(params, dict):
            return {"error": "the tool's arguments are not a JSON object; call it again"}
        if settings.permissions.denies(call.name):
            return {"status": "denied", "reason": DENIED_BY_REQUEST}
        workspace = self._context.workspace
        rule = rule_for(call.name, params, workspace)
        allowed = (not settings.permissions.ignores_rules(call.name)
                   and self._rules.allows(workspace.root, rule))
        if not allowed:
            request = PermissionRequest(
                self._desk.new_id(), self.session_id, call.id, call.name, params, rule,
                turn.served_by, agent_id, str(workspace.root))
            await self._emit(events.relay(request.relay_id, call.id, call.name, params,
                                          turn.served_by))
            answer = await self._desk.ask(request)
            if not answer.approved:
                return {"status": "denied", "reason": answer.reason or DENIED_BY_USER}
            if answer.always and rule is not None:
                await self._rules.add(workspace.root, rule)
        return await self._run_tool(call.name, params, settings, depth, agent_id)

    async def _run_tool(self, name: str, params: dict[str, Any], settings: RunSettings,
                        depth: int, agent_id: str) -> Any:
        try:
            if name == "agent":
                return await self._sub_agent(params, settings, depth, agent_id)
            return await TOOLS[name](params, self._context)
        except ToolError as exc:
            return {"error": exc.message}

    async def _sub_agent(self, params: dict[str, Any], settings: RunSettings, depth: int,
                         agent_id: str) -> dict[str, Any]:
        task = params.get("task")
        if not isinstance(task, str) or not task.strip():
            raise ToolError("task must be a non-empty string")
        try:
            answer = await self._agent([{"role": "user", "content": task}], settings,
                                       depth + 1, agent_id)
        except ModelCallError as exc:
            raise ToolError(f"the sub-agent stopped: {exc.message}") from exc
        return {"result": answer}


def _assistant_message(turn: ModelTurn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
    if turn.tool_calls:
        message["tool_calls"] = [call.to_message() for call in turn.tool_calls]
    elif not turn.text:
        message["content"] = ""
    return message


def _as_text(output: Any) -> str:
    text = json.dumps(output, ensure_ascii=False)
    if len(text) > MAX_TOOL_OUTPUT_CHARS:
        text = text[:MAX_TOOL_OUTPUT_CHARS] + " …[cut: the result was too long]"
    return text
