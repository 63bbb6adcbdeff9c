"""Run one shell command for someone else, and always get the machine back afterwards.

Security rule 6 of the brief: every command runs with a timeout, a kill of everything it
started, capped output, a scrubbed environment and a chosen working folder. How:

- ``/bin/sh -c command`` as the leader of a **new session** (so of a new process group):
  the whole tree it starts can be signalled at once, and nothing it does can signal the hub.
- stdin is ``/dev/null``: a command that reads input sees end of file instead of waiting.
- Output is taken by a :class:`asyncio.SubprocessProtocol` rather than the stream readers
  of ``asyncio.create_subprocess_exec`` (the same machinery underneath). The cap is then
  applied in the synchronous callback that receives each chunk (checked and applied with no
  ``await`` in between), and ``Process.wait()`` is avoided: it only returns once the pipes
  are closed too, so a background grandchild holding them would hang it.
- At the deadline: SIGTERM to the group, :data:`TERM_GRACE_S` to exit, then SIGKILL.
- When the shell has exited (in time or not), SIGKILL to its group and to every process
  still in its session: anything left is a background job nobody will ever read from (a
  command that wants a daemon should not get one through a terminal API). Then the pipes
  are drained for at most :data:`DRAIN_TIMEOUT_S`; a process that left the session
  (``setsid`` on purpose) and still holds them cannot delay the answer past that.
- When the caller is cancelled (the client went away, the session closed) the same kill
  happens before the cancellation goes on: no orphan is left running.

Windows (not tested here): ``cmd /c command`` with ``CREATE_NEW_PROCESS_GROUP``; there is no
group SIGTERM there, so the deadline and the end both kill the process tree (what
``taskkill /T /F /PID`` does, done with psutil so no other program has to be started).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from gambiarra_desktop.execution.environment import scrubbed_environment
from gambiarra_desktop.execution.result import CommandResult

MAX_TIMEOUT_S = 300.0
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_OUTPUT_BYTES = 1_048_576
TERM_GRACE_S = 1.0
"""Between SIGTERM and SIGKILL at the deadline: enough for a program to clean up."""
DRAIN_TIMEOUT_S = 1.0
"""How long output is still read once the shell is gone (its pipes normally close at once)."""
REAP_TIMEOUT_S = 2.0
"""How long to wait for the exit status after SIGKILL (the kernel takes microseconds)."""
SWEEP_ROUNDS = 3
"""A process may fork while the session is being swept; a few rounds catch those children."""


class _Capture(asyncio.SubprocessProtocol):
    """stdout and stderr up to a cap they SHARE (``max_output_bytes`` bounds the memory one
    command costs, whichever stream it floods); past it, chunks are read and dropped."""

    def __init__(self, max_output_bytes: int) -> None:
        self.room = max(0, max_output_bytes)
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.truncated = False
        self.exited = asyncio.Event()
        self.pipes_closed = asyncio.Event()
        self._open_pipes = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if len(data) > self.room:
            self.truncated = True
            data = data[:self.room]
        self.room -= len(data)
        (self.stderr if fd == 2 else self.stdout).extend(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open_pipes.discard(fd)
        if not self._open_pipes:
            self.pipes_closed.set()

    def process_exited(self) -> None:
        self.exited.set()


async def run_command(command: str, *, cwd: Path, timeout_s: float,
                      max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
                      env: Mapping[str, str] | None = None) -> CommandResult:
    """Run ``command`` in ``cwd`` and return what it printed and how it ended.

    ``timeout_s`` is clamped to (0, :data:`MAX_TIMEOUT_S`]; ``env`` defaults to
    :func:`scrubbed_environment` (a caller's own ``env`` is used as given). Output is UTF-8
    with undecodable bytes replaced. Raises ``OSError`` when the shell cannot be started
    (e.g. ``cwd`` does not exist)."""
    if not math.isfinite(timeout_s):  # NaN passes every comparison; infinity is no limit.
        timeout_s = MAX_TIMEOUT_S
    timeout_s = min(max(timeout_s, 0.001), MAX_TIMEOUT_S)
    loop = asyncio.get_running_loop()
    capture = _Capture(max_output_bytes)
    started = time.monotonic()
    transport, _ = await loop.subprocess_exec(
        lambda: capture, *_shell_argv(command), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
        env=dict(env) if env is not None else scrubbed_environment(), **_new_group())
    pid = transport.get_pid()
    timed_out = False
    try:
        try:
            async with asyncio.timeout(timeout_s):
                await capture.exited.wait()
        except TimeoutError:
            timed_out = True
            _terminate_group(pid)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TERM_GRACE_S):
                    await capture.exited.wait()
        kill_group(pid)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await capture.pipes_closed.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REAP_TIMEOUT_S):
                await capture.exited.wait()
    except BaseException:  # Cancelled: nobody waits for the answer, so nothing may live on.
        kill_group(pid)
        raise
    finally:
        transport.close()
    code = transport.get_returncode()
    return CommandResult(
        stdout=_decode(capture.stdout, capture.truncated),
        stderr=_decode(capture.stderr, capture.truncated),
        exit_code=-1 if code is None else (128 - code if code < 0 else code),
        timed_out=timed_out, truncated=capture.truncated,
        duration_ms=(time.monotonic() - started) * 1000)


def _decode(data: bytearray, truncated: bool) -> str:
    """UTF-8 with replacement; a character the cap cut in half is left out rather than
    shown as a replacement character that was never in the output."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(bytes(data), final=not truncated)


def _shell_argv(command: str) -> list[str]:
    if sys.platform == "win32":
        return ["cmd", "/c", command]
    return ["/bin/sh", "-c", command]


def _new_group() -> dict[str, Any]:
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _terminate_group(pid: int) -> None:
    """Ask the command's whole group to stop (Windows has no such thing: kill the tree)."""
    if sys.platform == "win32":
        _kill_tree(pid)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)


def kill_group(pid: int) -> None:
    """SIGKILL the group ``pid`` leads and everything still in its session (a command's,
    or a terminal session's shell)."""
    if sys.platform == "win32":
        _kill_tree(pid)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    kill_session(pid)


def kill_session(sid: int) -> int:
    """SIGKILL every process whose session id is ``sid`` (a job-control shell puts each job
    in a group of its own, so killing the leader's group is not enough). Returns how many
    were signalled. The kernel keeps ``sid`` from being reused as a pid while any member
    lives, so this cannot hit a stranger. Unix only."""
    if sys.platform == "win32" or sid == os.getsid(0):
        return 0
    signalled = 0
    for _ in range(SWEEP_ROUNDS):
        found = 0
        for pid in psutil.pids():
            try:
                if os.getsid(pid) == sid:
                    os.kill(pid, signal.SIGKILL)
                    found += 1
            except (ProcessLookupError, PermissionError):
                continue
        signalled += found
        if not found:
            break
    return signalled


def _kill_tree(pid: int) -> None:
    """Windows: the process and all its descendants, children first."""
    try:
        parent = psutil.Process(pid)
        victims = [*parent.children(recursive=True), parent]
    except psutil.Error:
        return
    for victim in victims:
        with contextlib.suppress(psutil.Error):
            victim.kill()
