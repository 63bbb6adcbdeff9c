"""Local terminal sessions on a real PTY, and the bounded output ring (every wait bounded)."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from gambiarra_desktop.terminal.errors import InvalidSessionRequestError, TargetUnreachableError
from gambiarra_desktop.terminal.local import MAX_SEND_BYTES, LocalSession
from gambiarra_desktop.terminal.output_ring import OutputRing
from tests.conftest import eventually
from tests.test_execution import alive, gone

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX PTYs")


# --- the ring ---------------------------------------------------------------------------
def test_ring_keeps_order_and_take_forgets() -> None:
    ring = OutputRing()
    ring.append("a")
    ring.append("")
    ring.append("bc")
    assert ring.take() == ["a", "bc"]
    assert ring.take() == []


def test_ring_drops_oldest_by_bytes_and_says_so() -> None:
    ring = OutputRing(max_bytes=10)
    for text in ("1111", "2222", "3333", "é4"):  # "é" is 2 bytes of UTF-8.
        ring.append(text)
    assert ring.size <= 10
    assert ring.take() == ["[... 8 bytes dropped ...]\n", "3333", "é4"]
    ring.append("x")
    assert ring.take() == ["x"]  # The count was reset by the take.


def test_ring_drops_oldest_by_chunk_count() -> None:
    ring = OutputRing(max_chunks=3)
    for i in range(5):
        ring.append(str(i))
    assert ring.take() == ["[... 2 bytes dropped ...]\n", "2", "3", "4"]


def test_ring_keeps_the_tail_of_a_chunk_larger_than_itself() -> None:
    ring = OutputRing(max_bytes=4)
    ring.append("old")
    ring.append("abéfgh")  # 7 bytes: the last 4 would hold half of "é", so it goes whole.
    assert ring.take() == ["[... 7 bytes dropped ...]\n", "fgh"]
    ring.append("0123456789")
    assert ring.take() == ["[... 6 bytes dropped ...]\n", "6789"]


# --- the PTY shell ----------------------------------------------------------------------
class Collected:
    def __init__(self) -> None:
        self.chunks: list[str] = []

    def __call__(self, session_id: str, text: str) -> None:
        assert session_id == "term-test"
        self.chunks.append(text)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@pytest.fixture
def collected() -> Collected:
    return Collected()


@pytest.fixture
async def shell(tmp_path: Path, collected: Collected) -> AsyncIterator[LocalSession]:
    session = LocalSession("term-test", cwd=tmp_path, on_output=collected)
    await session.start()
    try:
        yield session
    finally:
        await session.close()


async def wait_for(collected: Collected, pattern: str, within_s: float = 10.0) -> re.Match[str]:
    await eventually(lambda: re.search(pattern, collected.text), within_s)
    found = re.search(pattern, collected.text)
    assert found is not None
    return found


@posix_only
async def test_pty_echoes_typed_input_and_runs_it(shell: LocalSession,
                                                  collected: Collected) -> None:
    assert shell.connected and shell.type == "local" and shell.target == "local"
    await shell.send("echo hi-$((40+2))\n")
    await wait_for(collected, r"hi-42")
    assert "echo hi-$((40+2))" in collected.text  # The terminal echoed what was typed.
    taken = "".join(shell.take_output())
    assert "hi-42" in taken and shell.take_output() == []


@posix_only
async def test_the_pty_is_the_shells_controlling_terminal(shell: LocalSession,
                                                          collected: Collected) -> None:
    await shell.send("[ -t 0 ] && [ \"$TERM\" = dumb ] && echo ctty-$(( 6*7 ))\n")
    await wait_for(collected, r"ctty-42")
    assert shell.pid is not None
    process = psutil.Process(shell.pid)
    assert process.terminal() is not None
    assert "no job control" not in collected.text
    assert "cannot set terminal process group" not in collected.text


@posix_only
async def test_sh_when_there_is_no_bash(tmp_path: Path, collected: Collected,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # An empty folder: no bash to be found.
    session = LocalSession("term-test", cwd=tmp_path, on_output=collected)
    await session.start()
    try:
        assert session.pid is not None
        process = psutil.Process(session.pid)
        assert "bash" not in process.exe()
        assert process.terminal() is not None  # sh, unlike bash, does not take one itself.
        await session.send("echo sh-$((40+2))\n")
        await wait_for(collected, r"sh-42")
    finally:
        await session.close()


@posix_only
async def test_close_leaves_no_process_of_the_shell_behind(shell: LocalSession,
                                                           collected: Collected) -> None:
    """bash puts each job in a group of its own: killing the shell's group is not enough."""
    await shell.send("sleep 300 & echo bg=$!\n")
    await shell.send("(trap '' HUP TERM; sleep 301) & echo bg2=$!\n")
    first = int((await wait_for(collected, r"bg=(\d+)")).group(1))
    second = int((await wait_for(collected, r"bg2=(\d+)")).group(1))
    shell_pid = shell.pid
    assert shell_pid is not None and alive(first) and alive(second)
    await shell.close()
    assert not shell.connected
    assert await gone(shell_pid, first, second), "close() left processes running"
    await shell.close()  # Twice is harmless.


@posix_only
async def test_shell_exit_ends_the_session_and_its_jobs(shell: LocalSession,
                                                        collected: Collected) -> None:
    await shell.send("sleep 302 & echo job=$!\n")
    job = int((await wait_for(collected, r"job=(\d+)")).group(1))
    await shell.send("exit\n")
    await eventually(lambda: not shell.connected, 10)
    assert await gone(job), "the shell's job outlived the shell"
    with pytest.raises(TargetUnreachableError):
        await shell.send("echo late\n")


@posix_only
async def test_the_shell_gets_the_scrubbed_environment_and_the_folder(
        tmp_path: Path, collected: Collected, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOO_API_KEY", "sk-shell-secret")
    monkeypatch.setenv("GAMBIARRA_X", "hub-only")
    monkeypatch.setenv("DB_PASSWORD", "hunter2")
    session = LocalSession("term-test", cwd=tmp_path, on_output=collected)
    await session.start()
    try:
        await session.send("echo \"[$FOO_API_KEY|$GAMBIARRA_X|$DB_PASSWORD]\" \"$(pwd)\"\n")
        found = await wait_for(collected, r"\[(.*)\] (\S+)\r?\n")
        assert found.group(1) == "||"
        assert found.group(2) == str(tmp_path.resolve())  # noqa: ASYNC240
        assert "sk-shell-secret" not in collected.text and "hunter2" not in collected.text
    finally:
        await session.close()


@posix_only
async def test_execute_runs_beside_the_shell_in_its_folder(shell: LocalSession,
                                                           tmp_path: Path) -> None:
    result = await shell.execute("pwd; echo to-stderr >&2; exit 5", timeout_s=10)
    assert result.stdout == f"{tmp_path.resolve()}\n"  # noqa: ASYNC240
    assert (result.stderr, result.exit_code) == ("to-stderr\n", 5)
    assert "to-stderr" not in "".join(shell.take_output())  # Not typed into the PTY.
    timed = await shell.execute("sleep 30", timeout_s=0.2)
    assert timed.timed_out


@posix_only
async def test_closing_the_session_stops_a_running_command(shell: LocalSession,
                                                           tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    running = asyncio.create_task(shell.execute(f"sleep 120 & echo $! > {pidfile}; wait",
                                                timeout_s=120))
    await eventually(lambda: pidfile.exists() and pidfile.read_text().strip(), 5)
    child = int(pidfile.read_text())  # noqa: ASYNC240
    await shell.close()
    with pytest.raises(TargetUnreachableError):
        await asyncio.wait_for(running, 5)
    assert await gone(child)
    with pytest.raises(TargetUnreachableError):
        await shell.execute("echo no", timeout_s=5)


@posix_only
async def test_send_is_bounded(shell: LocalSession) -> None:
    with pytest.raises(InvalidSessionRequestError):
        await shell.send("x" * (MAX_SEND_BYTES + 1))
    with pytest.raises(InvalidSessionRequestError):
        await shell.send("é" * (MAX_SEND_BYTES // 2 + 1))  # Bytes count, not characters.


@posix_only
async def test_a_flood_is_throttled_and_the_ring_stays_bounded(tmp_path: Path,
                                                               collected: Collected) -> None:
    session = LocalSession("term-test", cwd=tmp_path, on_output=collected,
                           max_output_bytes=65_536)
    await session.start()
    try:
        await session.send("yes flood\n")
        await wait_for(collected, r"flood")
        started, before = time.monotonic(), len(collected.text)
        await asyncio.sleep(1.0)
        rate = (len(collected.text) - before) / (time.monotonic() - started)
        assert rate < 4_000_000, f"read {rate:.0f} B/s: the flood is not throttled"
        assert session.connected
        chunks = session.take_output()
        assert re.fullmatch(r"\[\.\.\. \d+ bytes dropped \.\.\.\]\n", chunks[0])
        assert sum(len(chunk.encode()) for chunk in chunks[1:]) <= 65_536
        pid = session.pid
    finally:
        await session.close()
    assert pid is not None and await gone(pid)


@posix_only
def test_works_on_uvloop(tmp_path: Path) -> None:
    """``gambiarra serve`` runs on uvloop, whose spawn calls ``preexec_fn`` at another
    moment than asyncio's."""
    uvloop = pytest.importorskip("uvloop")
    collected = Collected()

    async def main() -> tuple[bool, bool]:
        async with asyncio.timeout(20):
            session = LocalSession("term-test", cwd=tmp_path, on_output=collected)
            await session.start()
            try:
                await session.send("[ -t 0 ] && echo uv-$((40+2))\n")
                await wait_for(collected, r"uv-42")
                result = await session.execute("echo exec-ok", timeout_s=5)
                pid = session.pid
            finally:
                await session.close()
            assert pid is not None
            return result.stdout == "exec-ok\n", await gone(pid)

    assert uvloop.run(main()) == (True, True)
