"""Seed 004's agent API end to end: a real agent server, a scripted fake model server (real
aiohttp, streamed and not), real commands. The event sequences of approve, deny and timeout
are checked field by field."""

from __future__ import annotations

import json
from typing import Any

from gambiarra_desktop.devtools.scripted_model import ScriptedCall, ScriptedReply
from tests.agent_kit import AgentFactory, ask, joined, rest, until


def names(events: list[tuple[str, Any]]) -> list[str]:
    """The sequence of event names with runs of text/reasoning deltas collapsed."""
    found: list[str] = []
    for name, _ in events:
        if not (found and found[-1] == name and name in ("text", "reasoning")):
            found.append(name)
    return found


async def test_approved_call_streamed_event_by_event(make_agent: AgentFactory) -> None:
    kit = await make_agent([
        ScriptedReply(reasoning="I should list the folder.", text="Let me look.",
                      calls=(ScriptedCall("bash", {"command": "echo hello agent"}, "call_a"),)),
        ScriptedReply(text="The folder says hello."),
    ])
    reader = await kit.chat({"model": "scripted", "messages": ask("what is here?")})
    head = await until(reader, "relay")
    assert names(head) == ["connected", "harness_start", "reasoning", "text", "usage",
                           "tool_call", "relay"]
    connected = head[0][1]
    assert connected == {"type": "connected", "sessionId": connected["sessionId"]}
    assert connected["sessionId"].startswith("session_")
    start = head[1][1]
    assert start["type"] == "harness_start" and "parentId" not in start
    assert set(start) == {"type", "runId", "agentId"}
    deltas = [data for name, data in head if name in ("text", "reasoning")]
    assert len(deltas) > 2  # Streamed in pieces...
    assert {data["id"] for data in deltas} == {deltas[0]["id"]}  # ...of one message.
    assert all(data["runId"] == start["runId"] and data["agentId"] == start["agentId"]
               for data in deltas)
    assert joined(head, "reasoning") == "I should list the folder."
    assert joined(head, "text") == "Let me look."
    assert [data for name, data in head if name == "usage"] == [
        {"type": "usage", "inputTokens": 11, "outputTokens": 5}]
    assert head[-2][1] == {"type": "tool_call", "id": "call_a", "name": "bash",
                           "input": {"command": "echo hello agent"}}
    relay = head[-1][1]
    assert relay == {"type": "relay", "kind": "permission", "id": relay["id"],
                     "toolCallId": "call_a", "tool": "bash",
                     "params": {"command": "echo hello agent"}, "proposedBy": "alice"}

    status, body = await kit.relay(connected["sessionId"], relay["id"], {"approved": True})
    assert (status, body) == (200, {"success": True})
    tail = await rest(reader)
    assert names(tail) == ["tool_result", "text", "usage", "harness_end"]
    result = tail[0][1]
    assert result["type"] == "tool_result" and result["id"] == "call_a"
    assert result["name"] == "bash"
    assert result["output"]["stdout"] == "hello agent\n"
    assert result["output"]["exitCode"] == 0 and result["output"]["timedOut"] is False
    assert joined(tail, "text") == "The folder says hello."
    assert tail[-1][1] == {"type": "harness_end", "runId": start["runId"],
                           "agentId": start["agentId"]}
    # The model got the result back, tied to its call.
    fed = kit.model.requests[1]["messages"]
    assert fed[-2]["tool_calls"][0]["id"] == "call_a"
    assert fed[-1]["role"] == "tool" and fed[-1]["tool_call_id"] == "call_a"
    assert json.loads(fed[-1]["content"])["stdout"] == "hello agent\n"
    assert kit.server.service.session_count() == 0
    # A settled relay cannot be answered twice, and its session is gone.
    status, body = await kit.relay(connected["sessionId"], relay["id"], {"approved": True})
    assert (status, body) == (404, {"error": "Session not found"})


async def test_denied_call_not_streamed(make_agent: AgentFactory) -> None:
    kit = await make_agent([
        ScriptedReply(stream=False, text="I will make a file.",
                      calls=(ScriptedCall("bash", {"command": "touch made-by-agent"}, "c1"),)),
        ScriptedReply(stream=False, text="Understood."),
    ])
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    head = await until(reader, "relay")
    assert names(head) == ["connected", "harness_start", "text", "usage", "tool_call", "relay"]
    session_id, relay = head[0][1]["sessionId"], head[-1][1]
    assert head[-2][1]["input"] == {"command": "touch made-by-agent"}
    status, _ = await kit.relay(session_id, relay["id"],
                                {"approved": False, "reason": "not in my repo"})
    assert status == 200
    tail = await rest(reader)
    assert names(tail) == ["tool_result", "text", "usage", "harness_end"]
    assert tail[0][1] == {"type": "tool_result", "id": "c1", "name": "bash",
                          "output": {"status": "denied", "reason": "not in my repo"}}
    assert not (kit.workspace / "made-by-agent").exists()
    assert json.loads(kit.model.requests[1]["messages"][-1]["content"]) == {
        "status": "denied", "reason": "not in my repo"}


async def test_unanswered_relay_times_out_as_denied_with_heartbeats(
        make_agent: AgentFactory) -> None:
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "touch late"}, "c1"),)),
        ScriptedReply(text="ok", hold_s=1.5),  # The session lives on after the timeout.
    ], relay_timeout_s=0.6, heartbeat_s=0.1)
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    head = await until(reader, "relay")
    session_id, relay_id = head[0][1]["sessionId"], head[-1][1]["id"]
    result = (await until(reader, "tool_result"))[-1][1]
    assert result["output"] == {"status": "denied", "reason": "timed out"}
    assert reader.comments.count(": heartbeat") >= 3  # Said while the relay waited.
    assert not (kit.workspace / "late").exists()
    status, body = await kit.relay(session_id, relay_id, {"approved": True})
    assert (status, body) == (404, {"error": "Relay not found"})  # Too late: settled.
    await rest(reader)


async def test_request_permissions_only_narrow(make_agent: AgentFactory) -> None:
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "touch denied"}, "c1"),)),
        ScriptedReply(text="fine"),
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "touch asked"}, "c2"),)),
        ScriptedReply(text="fine"),
    ])
    reader = await kit.chat({"model": "scripted", "messages": ask(),
                             "permissions": {"bash": "deny"}})
    events = await rest(reader)
    assert "relay" not in names(events)
    result = next(data for name, data in events if name == "tool_result")
    assert result["output"] == {"status": "denied",
                                "reason": "denied by this request's permissions"}
    # "allow" from the request grants nothing: the call still asks.
    reader = await kit.chat({"model": "scripted", "messages": ask(),
                             "permissions": {"*": "allow", "bash": "allow"}})
    head = await until(reader, "relay")
    await kit.relay(head[0][1]["sessionId"], head[-1][1]["id"], {"approved": False})
    await rest(reader)
    assert not (kit.workspace / "denied").exists() and not (kit.workspace / "asked").exists()


async def test_max_iterations_ends_with_a_summary_call_without_tools(
        make_agent: AgentFactory) -> None:
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("read", {"filePath": "nothing.txt"}, "c1"),)),
        ScriptedReply(text="I read nothing; that is all."),
    ])
    reader = await kit.chat({"model": "scripted", "messages": ask(), "maxIterations": 1,
                             "permissions": {"read": "deny"}})
    events = await rest(reader)
    assert names(events)[-3:] == ["text", "usage", "harness_end"]
    last = kit.model.requests[-1]
    assert "tools" not in last and "tools" in kit.model.requests[0]
    assert last["messages"][-1]["role"] == "user"
    assert "summarise" in last["messages"][-1]["content"]


async def test_sub_agent_events_name_their_parent_and_depth_is_capped(
        make_agent: AgentFactory) -> None:
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("agent", {"task": "look deeper"}, "top"),)),
        ScriptedReply(calls=(ScriptedCall("agent", {"task": "deeper still"}, "mid"),)),
        ScriptedReply(calls=(ScriptedCall("agent", {"task": "too deep"}, "low"),)),
        ScriptedReply(text="bottom answer"),
        ScriptedReply(text="middle answer"),
        ScriptedReply(text="top answer"),
    ])
    reader = await kit.chat({"model": "scripted", "messages": ask(),
                             "permissions": {"*": "allow"}})
    events: list[tuple[str, Any]] = []
    for _ in range(2):  # The top agent and its sub-agent each ask to start one.
        chunk = await until(reader, "relay")
        events += chunk
        await kit.relay(events[0][1]["sessionId"], chunk[-1][1]["id"], {"approved": True})
    events += await rest(reader)
    starts = [data for name, data in events if name == "harness_start"]
    assert len(starts) == 3
    assert "parentId" not in starts[0]
    assert starts[1]["parentId"] == starts[0]["agentId"]
    assert starts[2]["parentId"] == starts[1]["agentId"]
    ends = [data for name, data in events if name == "harness_end"]
    assert [end["agentId"] for end in ends] == [s["agentId"] for s in reversed(starts)]
    # The deepest agent is not offered the agent tool, and its call to it is refused.
    offered = [[tool["function"]["name"] for tool in request["tools"]]
               for request in kit.model.requests[:3]]
    assert offered == [["bash", "read", "patch", "agent"]] * 2 + [["bash", "read", "patch"]]
    results = {data["id"]: data["output"] for name, data in events if name == "tool_result"}
    assert "no tool called 'agent'" in results["low"]["error"]
    assert results["mid"] == {"result": "bottom answer"}
    assert results["top"] == {"result": "middle answer"}
    assert joined(events, "text").endswith("top answer")


async def test_model_failure_is_an_error_event(make_agent: AgentFactory) -> None:
    kit = await make_agent([ScriptedReply(status=503)])
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    events = await rest(reader)
    assert names(events) == ["connected", "harness_start", "harness_end", "error"]
    assert "503" in events[-1][1]["message"] and "scripted failure" in events[-1][1]["message"]


async def test_models_lists_the_base_urls_models(make_agent: AgentFactory) -> None:
    kit = await make_agent([], default_model="scripted")
    async with kit.http.get(f"{kit.server.url}/models", headers=kit.headers) as response:
        assert response.status == 200
        assert await response.json() == {"models": ["scripted"], "defaultModel": "scripted"}


async def test_default_model_is_used_when_the_request_names_none(
        make_agent: AgentFactory) -> None:
    kit = await make_agent([ScriptedReply(text="hi")], default_model="scripted")
    events = await rest(await kit.chat({"messages": ask()}))
    assert joined(events, "text") == "hi"
    assert kit.model.requests[0]["model"] == "scripted"


async def test_the_app_can_answer_a_relay_and_the_client_then_cannot(
        make_agent: AgentFactory) -> None:
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "echo from-app"}, "c1"),)),
        ScriptedReply(text="ok"),
    ])
    desk = kit.server.service.desk
    asked: list[Any] = []
    settled: list[str] = []
    unsubscribe = desk.subscribe(asked.append, lambda relay_id, _answer: settled.append(relay_id))
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    head = await until(reader, "relay")
    relay_id = head[-1][1]["id"]
    assert [request.relay_id for request in asked] == [relay_id]
    assert asked[0].proposed_by == "alice" and asked[0].rule is not None
    from gambiarra_desktop.agent.relays import RelayAnswer

    desk.answer(relay_id, RelayAnswer(True))
    assert settled == [relay_id]
    status, body = await kit.relay(head[0][1]["sessionId"], relay_id, {"approved": False})
    assert (status, body) == (404, {"error": "Relay not found"})
    result = (await until(reader, "tool_result"))[-1][1]
    assert result["output"]["stdout"] == "from-app\n"
    unsubscribe()
    await rest(reader)
