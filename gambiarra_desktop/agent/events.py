"""The agent's SSE events, named and shaped exactly as the source system sends them.

Each builder returns the ``data`` object; its ``type`` is also the SSE ``event:`` name.
The desktop app gets the same dicts in-process, so what it shows is what a client reads.
"""

from __future__ import annotations

from typing import Any

from gambiarra_desktop.hub.api.sse import format_event

AgentEvent = dict[str, Any]


def connected(session_id: str) -> AgentEvent:
    return {"type": "connected", "sessionId": session_id}


def harness_start(run_id: str, agent_id: str, parent_id: str | None) -> AgentEvent:
    return _harness("harness_start", run_id, agent_id, parent_id)


def harness_end(run_id: str, agent_id: str, parent_id: str | None) -> AgentEvent:
    return _harness("harness_end", run_id, agent_id, parent_id)


def _harness(kind: str, run_id: str, agent_id: str, parent_id: str | None) -> AgentEvent:
    event: AgentEvent = {"type": kind, "runId": run_id, "agentId": agent_id}
    if parent_id is not None:
        event["parentId"] = parent_id
    return event


def text(message_id: str, run_id: str, agent_id: str, content: str) -> AgentEvent:
    return {"type": "text", "id": message_id, "runId": run_id, "agentId": agent_id,
            "content": content}


def reasoning(message_id: str, run_id: str, agent_id: str, content: str) -> AgentEvent:
    return {"type": "reasoning", "id": message_id, "runId": run_id, "agentId": agent_id,
            "content": content}


def tool_call(call_id: str, name: str, arguments: Any) -> AgentEvent:
    return {"type": "tool_call", "id": call_id, "name": name, "input": arguments}


def tool_result(call_id: str, name: str, output: Any) -> AgentEvent:
    return {"type": "tool_result", "id": call_id, "name": name, "output": output}


def relay(relay_id: str, tool_call_id: str, tool: str, params: Any,
          proposed_by: str | None) -> AgentEvent:
    event: AgentEvent = {"type": "relay", "kind": "permission", "id": relay_id,
                         "toolCallId": tool_call_id, "tool": tool, "params": params}
    if proposed_by:
        event["proposedBy"] = proposed_by  # Ours: whose model asked (a client may ignore it).
    return event


def usage(input_tokens: int, output_tokens: int) -> AgentEvent:
    return {"type": "usage", "inputTokens": input_tokens, "outputTokens": output_tokens}


def error(message: str) -> AgentEvent:
    return {"type": "error", "message": message}


def sse_frame(event: AgentEvent) -> bytes:
    """``event: <type>`` / ``data: <json>``: the seed's framing."""
    return format_event(str(event["type"]), event)
