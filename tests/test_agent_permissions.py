"""Permissions are the server's: "always" rules are exact and shell-aware, stored per
workspace, and the request can only narrow them. Plus the refusals of security rule 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.agent.permissions import Rule, plain_argv, rule_for
from gambiarra_desktop.agent.rule_book import RULES_FILE, RuleBook
from gambiarra_desktop.agent.workspace import Workspace
from gambiarra_desktop.devtools.scripted_model import ScriptedCall, ScriptedReply
from tests.agent_kit import AgentFactory, AgentKit, ask, rest, until


@pytest.mark.parametrize("command", [
    "git status; rm -rf x", "git status && rm -rf x", "git status || true", "git status | sh",
    "git status > out", "git status < in", "git status &", "(git status)", "git status `id`",
    "git status $(id)", "echo $HOME", "git status\nrm -rf x", "git status # hidden",
    "git 'status", "git status\\;rm", "{ git status; }",
])
def test_commands_that_are_not_one_plain_argv_never_become_rules(command: str) -> None:
    assert plain_argv(command) is None


def test_plain_commands_become_their_exact_argv() -> None:
    assert plain_argv("git status") == ("git", "status")
    assert plain_argv("  git   'status'  ") == ("git", "status")
    assert plain_argv('git commit -m "a; b | c"') == ("git", "commit", "-m", "a; b | c")
    assert plain_argv("rm -rf build") == ("rm", "-rf", "build")


def test_read_and_patch_rules_are_exact_workspace_files(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    assert rule_for("read", {"filePath": "./src/../a.txt"}, workspace) == Rule("read", ("a.txt",))
    assert rule_for("read", {"filePath": "../out.txt"}, workspace) is None
    patch = "".join(f"--- a/{name}\n+++ b/{name}\n@@ -1 +1 @@\n-x\n+y\n"
                    for name in ("b.py", "a.py"))
    assert rule_for("patch", {"patch": patch}, workspace) == Rule("patch", ("a.py", "b.py"))
    assert rule_for("bash", {"command": "ls | wc"}, workspace) is None
    assert rule_for("bash", "ls", workspace) is None


async def test_rule_book_keeps_rules_per_workspace_across_restarts(tmp_path: Path) -> None:
    book = RuleBook(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    rule = Rule("bash", ("git", "status"))
    assert await book.add(one, rule)
    assert book.allows(one, rule) and not book.allows(two, rule)
    again = RuleBook(tmp_path)
    assert [kept for kept, _ in again.rules(one)] == [rule]
    assert (tmp_path / RULES_FILE).stat().st_mode & 0o077 == 0
    assert await again.remove(one, rule)
    assert not RuleBook(tmp_path).allows(one, rule)


async def test_an_unreadable_rule_file_is_set_aside_not_trusted(tmp_path: Path) -> None:
    (tmp_path / RULES_FILE).write_text('{"version": 1, "workspaces": {"/w": [{"tool": "sudo"')
    book = RuleBook(tmp_path)
    assert book.rules(Path("/w")) == []
    assert (tmp_path / "agent-rules.bad").exists()


async def _one_call(kit: AgentKit, command: str, answer: dict[str, Any] | None,
                    **body: Any) -> tuple[list[str], Any]:
    """One chat whose model runs ``command``; ``answer`` is given to a relay if one comes."""
    kit.model.replies += [ScriptedReply(calls=(ScriptedCall("bash", {"command": command}),)),
                          ScriptedReply(text="ok")]
    reader = await kit.chat({"model": "scripted", "messages": ask(), **body})
    events = await until(reader, "tool_call")
    name, data = await reader.next_event(within_s=10)
    events.append((name, data))
    if name == "relay":
        assert answer is not None, f"{command!r} asked, but should have been allowed"
        await kit.relay(events[0][1]["sessionId"], data["id"], answer)
    events += await rest(reader)
    result = next(data for name, data in events if name == "tool_result")
    return [name for name, _ in events], result["output"]


async def test_always_allow_is_exact_and_shell_aware(make_agent: AgentFactory) -> None:
    kit = await make_agent([])
    names, output = await _one_call(kit, "git status", {"approved": True, "always": True})
    assert "relay" in names and "exitCode" in output
    names, output = await _one_call(kit, "git  'status'", None)  # Same argv: allowed.
    assert "relay" not in names and "exitCode" in output
    for command in ("git status; touch chained", "git push", "git status --porcelain",
                    "git status > redirected"):
        names, output = await _one_call(kit, command, {"approved": False})
        assert "relay" in names, command
        assert output == {"status": "denied", "reason": "denied by the user"}
    assert not (kit.workspace / "chained").exists()
    assert not (kit.workspace / "redirected").exists()
    # The request may switch stored rules off ("ask") but never on.
    names, _ = await _one_call(kit, "git status", {"approved": False},
                               permissions={"bash": "ask"})
    assert "relay" in names
    rules = kit.server.service.rules.rules(kit.workspace)
    assert [rule for rule, _ in rules] == [Rule("bash", ("git", "status"))]


async def test_always_on_a_chained_command_allows_only_once(make_agent: AgentFactory) -> None:
    kit = await make_agent([])
    names, _ = await _one_call(kit, "echo a && echo b", {"approved": True, "always": True})
    assert "relay" in names
    assert kit.server.service.rules.rules(kit.workspace) == []
    names, _ = await _one_call(kit, "echo a && echo b", {"approved": False})
    assert "relay" in names


# --- Refusals (security rule 2) -------------------------------------------------------------

async def _post(kit: AgentKit, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
    async with kit.http.post(f"{kit.server.url}{path}", **kwargs) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body, response.headers


async def test_refusals(make_agent: AgentFactory) -> None:
    kit = await make_agent([ScriptedReply(text="never")])
    good = {"model": "scripted", "messages": ask()}
    auth = kit.headers
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"json": good, "headers": {**auth, "Host": "evil.example:4000"}}, 403,
         "call the agent API as localhost or 127.0.0.1"),
        ({"json": good, "headers": {**auth, "Origin": "http://127.0.0.1:4000"}}, 403,
         "web pages may not use the agent API"),
        ({"json": good, "headers": {**auth, "Sec-Fetch-Site": "cross-site"}}, 403,
         "web pages may not use the agent API"),
        ({"json": good}, 401, ""),
        ({"json": good, "headers": {"Authorization": "Bearer wrong"}}, 401, ""),
        ({"data": {"model": "scripted"}, "headers": auth}, 415,
         "Content-Type must be application/json"),
        ({"data": b"{not json", "headers": {**auth, "Content-Type": "application/json"}}, 400,
         "Invalid JSON body"),
        ({"json": [1, 2], "headers": auth}, 400, "Invalid JSON body"),
        ({"json": {"messages": ask()}, "headers": auth}, 400, "model and messages are required"),
        ({"json": {"model": "scripted", "messages": []}, "headers": auth}, 400,
         "model and messages are required"),
        ({"json": {**good, "maxIterations": 0}, "headers": auth}, 400,
         "maxIterations must be a whole number from 1 to 50"),
        ({"json": {**good, "permissions": {"sudo": "allow"}}, "headers": auth}, 400,
         "permissions: unknown tool 'sudo' (tools: bash, read, patch, agent, or '*' for all)"),
        ({"json": {**good, "messages": [{"content": "x"}]}, "headers": auth}, 400,
         "messages[0] must be an object with a role (assistant, system, tool, user)"),
    ]
    for kwargs, status, message in cases:
        got_status, body, headers = await _post(kit, "/chat", **kwargs)
        assert got_status == status, (kwargs, body)
        if message:
            assert body == {"error": message}
        assert "Access-Control-Allow-Origin" not in headers
    assert kit.model.requests == []  # Nothing refused ever reached the model.
    relay_cases: list[tuple[dict[str, Any], int, str]] = [
        ({"sessionId": "session_nope", "response": {"approved": True}}, 404,
         "Session not found"),
        ({"response": {"approved": True}}, 400, "sessionId is required"),
        ({"sessionId": "session_nope", "response": {"approved": "yes"}}, 400,
         'response must be {"approved": true|false, "always"?: true, "reason"?: "..."}'),
    ]
    for body, status, message in relay_cases:
        got_status, reply, _ = await _post(kit, "/chat/relay/relay_x", json=body, headers=auth)
        assert (got_status, reply) == (status, {"error": message})
    async with kit.http.options(f"{kit.server.url}/chat", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}) as response:
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_an_unknown_relay_of_a_live_session_is_not_found(make_agent: AgentFactory) -> None:
    kit = await make_agent([ScriptedReply(calls=(ScriptedCall("bash", {"command": "true"}),)),
                            ScriptedReply(text="ok")])
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    head = await until(reader, "relay")
    session_id = head[0][1]["sessionId"]
    status, body = await kit.relay(session_id, "relay_unknown", {"approved": True})
    assert (status, body) == (404, {"error": "Relay not found"})
    await kit.relay(session_id, head[-1][1]["id"], {"approved": False})
    await rest(reader)


async def test_a_session_cannot_answer_another_sessions_relay(make_agent: AgentFactory) -> None:
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "touch first"}),)),
        ScriptedReply(hold_s=30),
    ])
    first = await kit.chat({"model": "scripted", "messages": ask()})
    relay_id = (await until(first, "relay"))[-1][1]["id"]
    second = await kit.chat({"model": "scripted", "messages": ask()})
    other_session = (await until(second, "connected"))[-1][1]["sessionId"]
    status, body = await kit.relay(other_session, relay_id, {"approved": True})
    assert (status, body) == (404, {"error": "Relay not found"})
    assert not (kit.workspace / "first").exists()


async def test_sessions_are_bounded(make_agent: AgentFactory) -> None:
    kit = await make_agent([ScriptedReply(hold_s=30), ScriptedReply(hold_s=30)],
                           max_sessions=2)
    for _ in range(2):
        await until(await kit.chat({"model": "scripted", "messages": ask()}), "harness_start")
    async with kit.http.post(f"{kit.server.url}/chat", headers=kit.headers,
                             json={"model": "scripted", "messages": ask()}) as response:
        assert response.status == 429
        assert await response.json() == {
            "error": "Too many agent sessions at once (limit 2); try again later"}


async def test_the_token_file_is_owner_only_and_never_served(make_agent: AgentFactory) -> None:
    kit = await make_agent([])
    token_file = kit.server.token_file
    assert token_file.read_text().strip() == kit.server.token
    assert token_file.stat().st_mode & 0o077 == 0
    async with aiohttp.ClientSession() as http, http.get(f"{kit.server.url}/models") as response:
        assert response.status == 401
        assert kit.server.token not in await response.text()
