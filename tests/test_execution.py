"""run_command and the scrubbed environment, on real processes (every wait bounded)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import tracemalloc
from pathlib import Path

import psutil
import pytest

from gambiarra_desktop.execution.environment import scrubbed_environment
from gambiarra_desktop.execution.runner import MAX_TIMEOUT_S, kill_session, run_command

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")


def alive(pid: int) -> bool:
    """A zombie nobody reaped yet (PID 1 in a container may never) counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def gone(*pids: int, within_s: float = 3.0) -> bool:
    deadline = time.monotonic() + within_s
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def words(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def read_pids(path: Path, count: int, within_s: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while True:
        lines = words(path)
        if len(lines) >= count:
            return [int(line) for line in lines[:count]]
        assert time.monotonic() < deadline, f"{path} never got {count} pids"
        await asyncio.sleep(0.02)


async def test_echo(tmp_path: Path) -> None:
    result = await run_command("echo hello", cwd=tmp_path, timeout_s=10)
    assert (result.stdout, result.stderr, result.exit_code) == ("hello\n", "", 0)
    assert not result.timed_out and not result.truncated
    assert 0 < result.duration_ms < 10_000


async def test_failing_command_gives_its_exit_code_and_stderr(tmp_path: Path) -> None:
    result = await run_command("echo oops >&2; exit 3", cwd=tmp_path, timeout_s=10)
    assert (result.stdout, result.stderr, result.exit_code) == ("", "oops\n", 3)


async def test_stdin_is_empty(tmp_path: Path) -> None:
    """A command that reads input ends at once instead of waiting for the timeout."""
    result = await run_command("cat; echo read-done", cwd=tmp_path, timeout_s=5)
    assert result.stdout == "read-done\n" and not result.timed_out


async def test_timeout_kills_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    started = time.monotonic()
    result = await run_command("trap '' TERM; sleep 60 & echo $!; sleep 60",
                               cwd=tmp_path, timeout_s=0.5)
    elapsed = time.monotonic() - started
    assert result.timed_out
    assert result.exit_code == 128 + 9  # TERM ignored, so SIGKILL after the grace second.
    assert 1.4 < elapsed < 5, elapsed
    grandchild = int(result.stdout.split()[0])
    assert await gone(grandchild), "the background sleep survived the timeout"


async def test_timeout_sigterm_is_enough_for_a_polite_command(tmp_path: Path) -> None:
    started = time.monotonic()
    result = await run_command("sleep 60", cwd=tmp_path, timeout_s=0.3)
    assert result.timed_out and result.exit_code == 128 + 15
    assert time.monotonic() - started < 1.2  # No need to wait for the SIGKILL grace.


async def test_background_job_holding_the_pipes_does_not_hang(tmp_path: Path) -> None:
    started = time.monotonic()
    result = await run_command("sleep 30 & echo $!", cwd=tmp_path, timeout_s=20)
    assert time.monotonic() - started < 3
    assert result.exit_code == 0 and not result.timed_out
    assert await gone(int(result.stdout)), "a background job outlived its command"


async def test_a_process_that_left_the_group_is_killed_with_the_session(
        tmp_path: Path) -> None:
    """Job control (``set -m``, bash's jobs) moves children to groups of their own; the
    session they stay in is swept too."""
    marker = tmp_path / "moved"
    escape = ("import os, time; os.setpgid(0, 0); open('moved', 'w').write('1');"
              " time.sleep(60)")
    result = await run_command(
        f"'{sys.executable}' -c \"{escape}\" & "
        f"i=0; while [ ! -s {marker} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done;"
        " echo $!", cwd=tmp_path, timeout_s=20)
    assert marker.exists()
    pid = int(result.stdout)
    assert await gone(pid), "a process in its own group outlived its command"


async def test_cancelling_kills_the_whole_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    task = asyncio.create_task(run_command(
        f"echo $$ > {pids}; sleep 60 & echo $! >> {pids}; wait", cwd=tmp_path, timeout_s=60))
    shell, grandchild = await read_pids(pids, 2)
    assert alive(shell) and alive(grandchild)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(shell, grandchild), "cancelling left processes running"


async def test_output_cap_drains_and_drops_without_buffering(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        result = await run_command("yes | head -c 5000000; echo tail >&2", cwd=tmp_path,
                                   timeout_s=30, max_output_bytes=65_536)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0 and not result.timed_out  # Drained: head ran to its end.
    assert result.truncated
    assert len(result.stdout.encode()) + len(result.stderr.encode()) == 65_536
    assert result.stdout.startswith("y\ny\n")
    assert peak < 2_000_000, f"{peak} bytes allocated for 64 KiB of kept output"


async def test_cap_cuts_at_a_whole_character_and_bad_bytes_are_replaced(
        tmp_path: Path) -> None:
    cut = await run_command("printf 'a\\303\\251b'", cwd=tmp_path, timeout_s=10,
                            max_output_bytes=2)  # "a" and half of "é".
    assert cut.stdout == "a" and cut.truncated
    bad = await run_command("printf '\\377ok'", cwd=tmp_path, timeout_s=10)
    assert bad.stdout == "\ufffdok" and not bad.truncated


async def test_secrets_in_the_hubs_environment_are_not_visible(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"FOO_API_KEY": "sk-foo-123", "GAMBIARRA_X": "hub-setting-456",
               "DB_PASSWORD": "hunter2-789", "GITHUB_TOKEN": "ghp_abc",
               "AWS_SECRET_ACCESS_KEY": "aws-xyz", "GAMBIARRA_REDIS_URL": "redis://h:6379",
               "CACHE_URL": "redis://:pw-in-url@cache:6379/0"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEEP_ME", "visible-1")
    monkeypatch.delenv("TERM", raising=False)
    result = await run_command("env", cwd=tmp_path, timeout_s=10)
    assert result.exit_code == 0
    for name, value in secrets.items():
        assert name not in result.stdout and value not in result.stdout
    lines = result.stdout.splitlines()
    assert "KEEP_ME=visible-1" in lines and "TERM=dumb" in lines
    assert any(line.startswith("PATH=") for line in lines)


def test_scrubbed_environment_names() -> None:
    base = {name: "x" for name in (
        "PATH", "HOME", "LANG", "USER", "SHELL", "PWD", "OLDPWD", "LC_ALL", "VIRTUAL_ENV",
        "HTTP_PROXY", "KEYMAP", "SSH_ASKPASS",
        "OPENAI_API_KEY", "apikey", "my_token", "CLIENT_SECRET", "MYSQL_PWD_PASSWORD",
        "SSH_AUTH_SOCK", "GAMBIARRA_ADMIN_PASSWORD", "gambiarra_room_secret", "REDIS_URL",
        "SENTRY_DSN", "GOOGLE_APPLICATION_CREDENTIALS", "SMTP_PASS", "KEY", "MYSQL_PWD")}
    base["ALL_PROXY"] = "http://user:pw@proxy:3128"
    kept = scrubbed_environment(base)
    assert set(kept) == {"PATH", "HOME", "LANG", "USER", "SHELL", "PWD", "OLDPWD", "LC_ALL",
                         "VIRTUAL_ENV", "HTTP_PROXY", "KEYMAP", "SSH_ASKPASS", "TERM"}
    assert kept["TERM"] == "dumb"
    assert scrubbed_environment({"TERM": "xterm"})["TERM"] == "xterm"


async def test_explicit_env_is_used_as_given(tmp_path: Path) -> None:
    result = await run_command("echo \"$ONLY\"", cwd=tmp_path, timeout_s=10,
                               env={"ONLY": "this", "PATH": os.defpath})
    assert result.stdout == "this\n"


async def test_cwd_is_honoured(tmp_path: Path) -> None:
    folder = tmp_path / "work dir"
    folder.mkdir()
    result = await run_command("pwd; ls", cwd=folder, timeout_s=10)
    assert result.stdout.splitlines()[0] == str(folder.resolve())  # noqa: ASYNC240
    missing = tmp_path / "missing"
    with pytest.raises(OSError):
        await run_command("pwd", cwd=missing, timeout_s=10)


async def test_timeout_is_clamped(tmp_path: Path) -> None:
    assert MAX_TIMEOUT_S == 300.0
    result = await run_command("echo ok", cwd=tmp_path, timeout_s=10_000)
    assert result.stdout == "ok\n"
    result = await run_command("sleep 5", cwd=tmp_path, timeout_s=-1)
    assert result.timed_out


def test_kill_session_never_signals_our_own_session() -> None:
    assert kill_session(os.getsid(0)) == 0
