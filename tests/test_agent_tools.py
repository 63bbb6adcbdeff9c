"""The agent's tools: the workspace jail, read's limits, patch's read-before rule, and a
client that goes away taking its running command with it."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import psutil
import pytest

from gambiarra_desktop.agent.errors import ToolError
from gambiarra_desktop.agent.tools.context import ToolContext
from gambiarra_desktop.agent.tools.patch import patch
from gambiarra_desktop.agent.tools.read import MAX_READ_BYTES, read
from gambiarra_desktop.agent.workspace import Workspace
from gambiarra_desktop.devtools.scripted_model import ScriptedCall, ScriptedReply
from tests.agent_kit import AgentFactory, ask, process_gone, rest, until
from tests.conftest import eventually


@pytest.fixture
def jail(tmp_path: Path) -> ToolContext:
    root = tmp_path / "work"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    (tmp_path / "secret.txt").write_text("the neighbour's secret\n")
    (root / "out-link").symlink_to(tmp_path / "secret.txt")
    (root / "dir-link").symlink_to(tmp_path)
    (root / "in-link").symlink_to(root / "src" / "app.py")
    return ToolContext(Workspace(root), "session_t", "127.0.0.1", None, 5.0, 65536)


@pytest.mark.parametrize("path", [
    "../secret.txt", "src/../../secret.txt", "out-link", "dir-link/secret.txt", "/etc/passwd",
])
async def test_paths_that_leave_the_workspace_are_refused(jail: ToolContext, path: str) -> None:
    with pytest.raises(ToolError, match="outside the workspace"):
        await read({"filePath": path}, jail)


async def test_paths_inside_are_read_even_absolute_or_through_inner_links(
        jail: ToolContext) -> None:
    root = jail.workspace.root
    for path in ("src/app.py", str(root / "src" / "app.py"), "in-link", "./src/../src/app.py"):
        result = await read({"filePath": path}, jail)
        assert result["content"] == "print('hi')\n" and result["filePath"] == "src/app.py"


async def test_read_returns_at_most_50_kb_and_pages_by_line(jail: ToolContext) -> None:
    big = jail.workspace.root / "big.txt"
    big.write_text("".join(f"line {n:06d} " + "x" * 88 + "\n" for n in range(2000)))
    result = await read({"filePath": "big.txt"}, jail)
    assert len(result["content"].encode()) <= MAX_READ_BYTES
    assert result["truncated"] is True and result["totalLines"] == 2000
    page = await read({"filePath": "big.txt", "offset": 1500, "limit": 3}, jail)
    assert page["content"].startswith("line 001499 ") and page["endLine"] == 1502
    for bad in ({"filePath": "big.txt", "offset": 0}, {"filePath": "big.txt", "limit": "9"},
                {"filePath": ""}, {"filePath": "src"}, {"filePath": "missing.txt"}):
        with pytest.raises(ToolError):
            await read(bad, jail)


DIFF = """--- a/src/app.py
+++ b/src/app.py
@@ -1 +1,2 @@
-print('hi')
+print('hello')
+print('world')
"""


async def test_patch_needs_a_read_of_the_unchanged_file(jail: ToolContext) -> None:
    target = jail.workspace.root / "src" / "app.py"
    with pytest.raises(ToolError, match="read src/app.py before patching it"):
        await patch({"patch": DIFF}, jail)
    await read({"filePath": "src/app.py"}, jail)
    target.write_text("print('hi')\n# edited by the user\n")
    with pytest.raises(ToolError, match="changed since it was read"):
        await patch({"patch": DIFF}, jail)
    assert target.read_text() == "print('hi')\n# edited by the user\n"  # Nothing written.
    await read({"filePath": "src/app.py"}, jail)
    target.write_text("print('hi')\n")
    await read({"filePath": "src/app.py"}, jail)
    mode = target.stat().st_mode
    result = await patch({"patch": DIFF}, jail)
    assert result == {"status": "applied", "files": [
        {"path": "src/app.py", "action": "modified", "added": 2, "removed": 1}]}
    assert target.read_text() == "print('hello')\nprint('world')\n"
    assert target.stat().st_mode == mode
    # What it wrote counts as read: a follow-up patch needs no re-read.
    follow = DIFF.replace("-print('hi')\n+print('hello')\n+print('world')\n",
                          " print('hello')\n-print('world')\n+print('there')\n")
    follow = follow.replace("@@ -1 +1,2 @@", "@@ -1,2 +1,2 @@")
    await patch({"patch": follow}, jail)
    assert target.read_text() == "print('hello')\nprint('there')\n"


async def test_patch_stays_in_the_workspace_and_applies_all_or_nothing(
        jail: ToolContext) -> None:
    outside = "--- a/../secret.txt\n+++ b/../secret.txt\n@@ -1 +1 @@\n-x\n+y\n"
    with pytest.raises(ToolError, match="outside the workspace"):
        await patch({"patch": outside}, jail)
    await read({"filePath": "src/app.py"}, jail)
    both = DIFF + "--- a/src/none.py\n+++ b/src/none.py\n@@ -1 +1 @@\n-x\n+y\n"
    with pytest.raises(ToolError):
        await patch({"patch": both}, jail)
    assert (jail.workspace.root / "src" / "app.py").read_text() == "print('hi')\n"
    created = "--- /dev/null\n+++ b/src/new.py\n@@ -0,0 +1 @@\n+made\n"
    assert (await patch({"patch": created}, jail))["files"][0]["action"] == "created"
    assert (jail.workspace.root / "src" / "new.py").read_text() == "made\n"


async def test_a_client_that_goes_away_kills_its_running_command(
        make_agent: AgentFactory) -> None:
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "echo $$ > pid; exec sleep 60",
                                                   "timeout": 120}),)),
        ScriptedReply(text="never reached"),
    ])
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    head = await until(reader, "relay")
    await kit.relay(head[0][1]["sessionId"], head[-1][1]["id"], {"approved": True})
    pid_file = kit.workspace / "pid"
    await eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), within_s=10)
    pid = int(pid_file.read_text())
    assert psutil.Process(pid).name() == "sleep"
    assert kit.server.service.session_count() == 1
    reader.response.close()  # The client goes away mid-command.
    await eventually(lambda: process_gone(pid), within_s=10)
    await eventually(lambda: kit.server.service.session_count() == 0, within_s=10)
    rows = await kit.server.service.audit.rows()
    assert rows[0]["command"] == "echo $$ > pid; exec sleep 60"
    assert rows[0]["actor"] == "agent" and rows[0]["outcome"] == "cancelled"


async def test_a_client_that_goes_away_mid_relay_frees_the_session(
        make_agent: AgentFactory) -> None:
    kit = await make_agent([ScriptedReply(calls=(ScriptedCall("bash", {"command": "true"}),))])
    settled: list[str] = []
    kit.server.service.desk.subscribe(lambda _r: None, lambda relay_id, _a: settled.append(
        relay_id))
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    relay_id = (await until(reader, "relay"))[-1][1]["id"]
    reader.response.close()
    await eventually(lambda: settled == [relay_id], within_s=10)
    await eventually(lambda: kit.server.service.session_count() == 0, within_s=10)
    assert kit.server.service.desk.pending() == []


async def test_commands_run_in_the_workspace_with_a_scrubbed_environment(
        make_agent: AgentFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "pwd; env"}),)),
        ScriptedReply(text="ok"),
    ])
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    head = await until(reader, "relay")
    await kit.relay(head[0][1]["sessionId"], head[-1][1]["id"], {"approved": True})
    events = await rest(reader)
    output = next(data["output"] for name, data in events if name == "tool_result")
    assert output["stdout"].splitlines()[0] == str(kit.workspace)
    assert "sk-must-not-leak" not in output["stdout"]
    assert os.environ["OPENAI_API_KEY"] == "sk-must-not-leak"


async def test_read_splits_lines_as_diff_tools_do(jail: ToolContext) -> None:
    odd = jail.workspace.root / "odd.txt"
    odd.write_bytes(b"one\x0cstill one\rand more\ntwo\n")
    result = await read({"filePath": "odd.txt", "limit": 1}, jail)
    assert result["content"] == "one\x0cstill one\rand more\n" and result["totalLines"] == 2
    diff = "--- a/odd.txt\n+++ b/odd.txt\n@@ -2 +2 @@\n-two\n+2\n"
    await patch({"patch": diff}, jail)
    assert odd.read_bytes() == b"one\x0cstill one\rand more\n2\n"


async def test_a_fifo_is_refused_without_waiting_for_a_writer(jail: ToolContext) -> None:
    os.mkfifo(jail.workspace.root / "pipe")
    async with asyncio.timeout(5):
        with pytest.raises(ToolError, match="not a regular file"):
            await read({"filePath": "pipe"}, jail)


async def test_a_client_that_stops_reading_loses_its_session(make_agent: AgentFactory) -> None:
    kit = await make_agent([ScriptedReply(text="x" * 7_000_000)], write_timeout_s=0.5)
    kit.model.split_every = 4096
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # No autotuned megabytes.
    client.connect(("127.0.0.1", kit.server.port))
    reader, writer = await asyncio.open_connection(sock=client)
    body = b'{"model": "scripted", "messages": [{"role": "user", "content": "talk"}]}'
    writer.write(b"POST /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + kit.server.token.encode() +
                 b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    await eventually(lambda: kit.server.service.session_count() == 1, within_s=5)
    # Never read: the socket buffers fill, and the server gives up on this client.
    await eventually(lambda: kit.server.service.session_count() == 0, within_s=15)
    writer.close()


async def test_the_agents_own_data_dir_is_off_limits_inside_the_workspace(
        make_agent: AgentFactory, tmp_path: Path) -> None:
    kit = await make_agent([])
    inside = kit.workspace / ".gambiarra"
    inside.mkdir()
    (inside / "agent-rules.json").write_text("{}")
    context = ToolContext(Workspace(kit.workspace, (inside,)), "s", "127.0.0.1", None, 5, 4096)
    with pytest.raises(ToolError, match="the agent's own data"):
        await read({"filePath": ".gambiarra/agent-rules.json"}, context)
    session = kit.server.service.open_session("test")
    assert session.workspace.off_limits == ((tmp_path / "data").resolve(),)
    kit.server.service.close_session(session.id)
