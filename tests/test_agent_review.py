"""Security review of the agent API (issue 13): the running server attacked for real, on
127.0.0.1 only.

Each numbered section is a problem the review found and that is now fixed (its test
failed before the fix): rules that shared a key across shell quoting, a NaN timeout past
the cap, a patch written through a planted temporary name, the site without the hub's
connection guard, a FIFO read that hung, a client leaving with a full event queue. The
rest pin refusals the other agent tests do not cover (raw HTTP the aiohttp client cannot
send).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from gambiarra_desktop.agent.permissions import rule_for
from gambiarra_desktop.agent.workspace import Workspace
from gambiarra_desktop.devtools.scripted_model import ScriptedCall, ScriptedReply
from tests.agent_kit import AgentFactory, AgentKit, Event, ask, rest, until
from tests.conftest import eventually
from tests.sse_client import SseReader


async def approve_everything(kit: AgentKit, reader: SseReader, within_s: float = 10.0,
                             always: bool = False, limit: int = 400) -> list[Event]:
    """Every event until the stream ends, approving each relay (bounded in count and time)."""
    seen: list[Event] = []
    session_id = ""
    for _ in range(limit):
        try:
            name, data = await reader.next_event(within_s=within_s)
        except EOFError:
            return seen
        seen.append((name, data))
        if name == "connected":
            session_id = data["sessionId"]
        elif name == "relay":
            answer: dict[str, Any] = {"approved": True, **({"always": True} if always else {})}
            assert (await kit.relay(session_id, data["id"], answer))[0] == 200
    raise AssertionError(f"the stream did not end within {limit} events")


def results(events: list[Event]) -> list[Any]:
    return [data["output"] for name, data in events if name == "tool_result"]


async def raw_exchange(port: int, request: bytes, within_s: float = 5.0) -> bytes:
    """Send bytes the aiohttp client would never send; return the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(within_s):
            return await reader.read(65536)
    finally:
        writer.close()


# --- 1. "Always" rules: quoting confusions -----------------------------------------------

QUOTED_VERSUS_EXPANDED = [
    ("rm -f '*'", "rm -f *"),  # Delete the file named "*" vs delete every file.
    ("ls 'a?'", "ls a?"),
    ("cat '[ab]'", "cat [ab]"),
    ("cat '~/.ssh/id_rsa'", "cat ~/.ssh/id_rsa"),  # Tilde: outside the workspace.
    ("'GIT_DIR=/tmp/x' git status", "GIT_DIR=/tmp/x git status"),  # An env-var prefix.
]


@pytest.mark.parametrize(("approved", "later"), QUOTED_VERSUS_EXPANDED)
def test_a_quoted_word_and_its_expansion_never_share_a_rule(
        tmp_path: Path, approved: str, later: str) -> None:
    workspace = Workspace(tmp_path)
    rule = rule_for("bash", {"command": approved}, workspace)
    assert rule is None or rule != rule_for("bash", {"command": later}, workspace)


async def test_always_allowing_rm_of_a_file_named_star_does_not_allow_rm_star(
        make_agent: AgentFactory) -> None:
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "rm -f '*'"}, "c1"),)),
        ScriptedReply(text="removed the stray file"),
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "rm -f *"}, "c2"),)),
        ScriptedReply(text="done"),
    ])
    (kit.workspace / "*").write_text("created by a typo\n")
    (kit.workspace / "precious.txt").write_text("keep me\n")
    await approve_everything(kit, await kit.chat({"model": "scripted", "messages": ask()}),
                             always=True)
    assert not (kit.workspace / "*").exists() and (kit.workspace / "precious.txt").exists()
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    head = await until(reader, "tool_call")
    name, data = await reader.next_event(within_s=10)
    if name == "relay":  # What the fixed server does: ask; the user says no.
        await kit.relay(head[0][1]["sessionId"], data["id"], {"approved": False})
    await rest(reader)
    assert (kit.workspace / "precious.txt").exists(), "rm -f * ran without being asked"
    assert name == "relay"


# --- 2. The command time cap ---------------------------------------------------------------

async def test_a_nan_timeout_cannot_lift_the_command_time_cap(
        make_agent: AgentFactory) -> None:
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "sleep 8",
                                                   "timeout": float("nan")}, "c1"),)),
        ScriptedReply(text="ok"),
    ], bash_timeout_cap_s=0.5)
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    head = await until(reader, "relay")
    await kit.relay(head[0][1]["sessionId"], head[-1][1]["id"], {"approved": True})
    try:
        name, data = await reader.next_event(within_s=4)
    except TimeoutError:
        pytest.fail("a 0.5 s cap, yet sleep 8 was still running after 4 s")
    assert name == "tool_result"
    assert data["output"].get("timedOut") is True or "timeout" in str(data["output"])


# --- 3. Workspace files that are not regular files ------------------------------------------

async def test_reading_a_fifo_is_refused_without_hanging(make_agent: AgentFactory) -> None:
    """Through the server: the read is refused at once, no worker thread is left blocked
    in open() (found by this review; fixed in ad59773)."""
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("read", {"filePath": "notes.txt"}, "c1"),)),
        ScriptedReply(text="ok"),
    ])
    fifo = kit.workspace / "notes.txt"
    os.mkfifo(fifo)
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    head = await until(reader, "relay")
    await kit.relay(head[0][1]["sessionId"], head[-1][1]["id"], {"approved": True})
    try:
        name, data = await reader.next_event(within_s=5)
    except TimeoutError:
        name, data = "hung", None
    finally:  # Free a thread stuck in open(): a writer lets the open return (then EOF).
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert name == "tool_result", "read of a FIFO hung its worker thread"
    assert "not a regular file" in data["output"]["error"]


# --- 4. Patch writes through a planted symlink ---------------------------------------------

async def test_a_patch_never_writes_through_a_planted_symlink(
        make_agent: AgentFactory, tmp_path: Path) -> None:
    diff = "--- a/app.txt\n+++ b/app.txt\n@@ -1 +1 @@\n-one\n+two\n"
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("read", {"filePath": "app.txt"}, "c1"),)),
        ScriptedReply(calls=(ScriptedCall("patch", {"patch": diff}, "c2"),)),
        ScriptedReply(text="patched"),
    ])
    outside = tmp_path / "outside-bashrc"
    outside.write_text("precious\n")
    (kit.workspace / "app.txt").write_text("one\n")
    # The server runs in this process, so its pid is ours.
    (kit.workspace / f".app.txt.agent-{os.getpid()}.tmp").symlink_to(outside)
    events = await approve_everything(kit, await kit.chat({"model": "scripted",
                                                           "messages": ask()}))
    assert len(results(events)) == 2
    assert outside.read_text() == "precious\n", "the patch wrote outside the workspace"
    assert not (kit.workspace / "app.txt").is_symlink()


# --- 5. Connection-level limits the hub has and the agent site lacks ----------------------



async def test_a_connection_that_dribbles_its_request_head_is_closed(
        make_agent: AgentFactory) -> None:
    kit = await make_agent([])
    reader, writer = await asyncio.open_connection("127.0.0.1", kit.server.port)
    try:
        writer.write(b"GET /models HTTP/1.1\r\nHost: localhost\r\n")  # ...and no more.
        await writer.drain()
        try:
            async with asyncio.timeout(15):  # The hub's head deadline is 10 s.
                await reader.read()
        except TimeoutError:
            pytest.fail("an unauthenticated half-sent request held its socket for 15 s")
    finally:
        writer.close()


async def test_a_compressed_body_is_refused_not_inflated(make_agent: AgentFactory) -> None:
    kit = await make_agent([ScriptedReply(text="never")])
    body = gzip.compress(b'{"model": "scripted", "messages": [{"role": "user",'
                         b' "content": "hi"}]}')
    async with kit.http.post(f"{kit.server.url}/chat", data=body, headers={
            **kit.headers, "Content-Type": "application/json",
            "Content-Encoding": "gzip"}) as response:
        status = response.status
    assert status == 415
    assert kit.model.requests == []


# --- 6. A client that leaves while its events pile up -------------------------------------

async def stalled_chat(kit: AgentKit) -> socket.socket:
    """A /chat whose client reads nothing (a tiny receive window): once the socket buffers
    and the 256-event queue are full, the server's writes and then the run block. Closing
    the returned socket sends a reset."""
    body = b'{"model": "scripted", "messages": [{"role": "user", "content": "talk"}]}'
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(client, ("127.0.0.1", kit.server.port))
        await loop.sock_sendall(client, (
            f"POST /chat HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer"
            f" {kit.server.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        await eventually(lambda: kit.model.requests, within_s=10)
        await asyncio.sleep(2)  # The model's ~1,700 deltas outrun the buffers and the queue.
    except BaseException:
        client.close()
        raise
    return client


async def flooding_agent(make_agent: AgentFactory) -> AgentKit:
    kit = await make_agent([ScriptedReply(text="x" * 7_000_000)])  # Under 8 MB.
    kit.model.split_every = 4096
    return kit


async def test_a_client_that_leaves_with_a_full_queue_frees_its_session(
        make_agent: AgentFactory) -> None:
    """Found by this review: the run's ``finally: await queue.put(None)`` waited for ever on
    a full queue once the client was gone, leaking the session slot and both tasks."""
    kit = await flooding_agent(make_agent)
    client = await stalled_chat(kit)
    assert kit.server.service.session_count() == 1
    client.close()  # Gone, with hundreds of events still queued for it.
    await eventually(lambda: kit.server.service.session_count() == 0, within_s=10)


# --- Refusals that hold (raw HTTP the existing tests cannot send) ---------------------------

@pytest.mark.parametrize(("request_head", "status"), [
    # HTTP/1.0 lets a client leave Host out: still refused, never "no Host, no check".
    (b"GET /models HTTP/1.0\r\n", b" 403 "),
    # An absolute-form target naming a foreign host (a proxy-style request).
    (b"GET http://evil.example/models HTTP/1.1\r\nHost: evil.example\r\n", b" 403 "),
    # Two Host headers: refused by the parser before anyone picks one.
    (b"GET /models HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n", b" 400 "),
    (b"GET /models HTTP/1.1\r\nHost: evil.example\r\nHost: localhost\r\n", b" 400 "),
    # A CORS-simple text/plain POST, even with the token.
    (b"POST /chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n", b" 415 "),
    # Two Content-Types (json second): refused, not the last one believed.
    (b"POST /chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
     b"Content-Type: application/json\r\n", b" 400 "),
])
async def test_raw_requests_that_dodge_the_guard_are_refused(
        make_agent: AgentFactory, request_head: bytes, status: bytes) -> None:
    kit = await make_agent([ScriptedReply(text="never")])
    body = b'{"model": "scripted", "messages": [{"role": "user", "content": "hi"}]}'
    answer = await raw_exchange(kit.server.port, request_head + (
        f"Authorization: Bearer {kit.server.token}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n").encode() + body)
    assert status in answer.split(b"\r\n", 1)[0], answer[:200]
    assert b"Access-Control-Allow" not in answer
    assert kit.server.token.encode() not in answer
    assert kit.model.requests == []


async def test_a_read_rule_follows_the_file_not_the_name(make_agent: AgentFactory) -> None:
    """"Always read a.txt" is stored as the resolved file: when a.txt later becomes a link
    to another workspace file, reading it asks again."""
    kit = await make_agent([
        ScriptedReply(calls=(ScriptedCall("read", {"filePath": "a.txt"}, "c1"),)),
        ScriptedReply(text="read"),
        ScriptedReply(calls=(ScriptedCall("read", {"filePath": "a.txt"}, "c2"),)),
        ScriptedReply(text="read again"),
    ])
    (kit.workspace / "a.txt").write_text("public\n")
    (kit.workspace / ".env").write_text("API_KEY=sk-workspace-secret\n")
    events = await approve_everything(kit, await kit.chat({"model": "scripted",
                                                           "messages": ask()}), always=True)
    assert results(events)[0]["content"] == "public\n"
    (kit.workspace / "a.txt").unlink()
    (kit.workspace / "a.txt").symlink_to(kit.workspace / ".env")
    reader = await kit.chat({"model": "scripted", "messages": ask()})
    head = await until(reader, "tool_call")
    name, data = await reader.next_event(within_s=10)
    assert name == "relay", "the stored read rule was applied to another file"
    await kit.relay(head[0][1]["sessionId"], data["id"], {"approved": False})
    tail = await rest(reader)
    assert "sk-workspace-secret" not in str(tail)
