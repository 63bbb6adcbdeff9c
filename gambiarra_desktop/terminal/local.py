"""A terminal session on the hub's own machine: an interactive shell on a real PTY, and
one-shot commands run beside it.

- ``execute`` does not go through the shell: it is :func:`run_command` in the session's
  folder (real exit code, separate stderr, timeout, capped output, the command's whole tree
  killed at its end), so a command cannot be confused with what the shell is printing.
- ``send``/``take_output`` talk to the interactive shell: bash (``sh`` when there is no
  bash) on a PTY, so programs behave as in a terminal (echo, line editing, job control,
  ``sudo``'s password prompt). The shell leads a new session with the PTY as its
  controlling terminal (``setsid`` + ``TIOCSCTTY``; without them bash warns "no job
  control"), ``TERM=dumb`` (no escape sequences to paint), the scrubbed environment, and
  ``--noprofile --norc``: the user's rc files could export the very secrets the scrub
  removed.
- Output is read by a reader on the PTY's master side (``EIO`` there is end of file on
  Linux once every copy of the terminal is closed) at most :data:`MAX_READ_BYTES_PER_S`: a
  ``yes`` in the shell then blocks on a full PTY instead of making the hub's event loop do
  nothing but read and drop. Output goes to the bounded :class:`OutputRing` and to
  ``on_output``.
- ``close`` SIGKILLs the shell's process group and every process left in its session
  (bash gives each job a group of its own), then closes the PTY.

Windows (not tested here): there is no PTY without ConPTY bindings, so a local session
there offers ``execute`` only; ``send`` says it is not supported.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import logging
import os
import shutil
import struct
import sys
from collections.abc import Callable
from pathlib import Path

from gambiarra_desktop.execution.environment import scrubbed_environment
from gambiarra_desktop.execution.result import CommandResult
from gambiarra_desktop.execution.runner import (
    DEFAULT_MAX_OUTPUT_BYTES,
    MAX_TIMEOUT_S,
    kill_group,
    run_command,
)
from gambiarra_desktop.terminal.errors import (
    InvalidSessionRequestError,
    NotSupportedHereError,
    TargetUnreachableError,
)
from gambiarra_desktop.terminal.output_ring import OutputRing
from gambiarra_desktop.terminal.session import OutputListener, SessionType

if sys.platform != "win32":
    import fcntl
    import termios

log = logging.getLogger(__name__)

MAX_SEND_BYTES = 65_536
"""One write to the shell: a paste, not a file upload."""
SEND_TIMEOUT_S = 5.0
"""A shell busy with a program that reads nothing fills the PTY's input; a write waits this
long for room, then gives up (nothing is queued in the hub)."""
READ_CHUNK_BYTES = 65_536
MAX_READ_BYTES_PER_S = 2_097_152
"""Far more than anyone reads on a terminal; the PTY holds the rest back (the program
writing it waits) instead of the hub spending a core on reading."""
READ_WINDOW_S = 0.05
CLOSE_TIMEOUT_S = 2.0
WINDOW_SIZE = (24, 80)
"""Rows and columns the PTY reports: without one, programs see 0x0 and some misformat."""


class LocalSession:
    """Implements :class:`~gambiarra_desktop.terminal.session.TerminalSession`."""

    type: SessionType = "local"

    def __init__(self, session_id: str, *, cwd: Path, on_output: OutputListener | None = None,
                 max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        self.id = session_id
        self.target = "local"
        self.cwd = cwd
        self._on_output = on_output
        self._max_output_bytes = max_output_bytes
        self._ring = OutputRing(max_bytes=max_output_bytes)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._master: int | None = None
        self._transport: asyncio.SubprocessTransport | None = None
        self._pid: int | None = None
        self._exited = asyncio.Event()
        self._eof = False
        self._closed = False
        self._started = False
        self._write_lock = asyncio.Lock()
        self._running: set[asyncio.Task[CommandResult]] = set()
        self._window_start = 0.0
        self._window_bytes = 0
        self._resume_handle: asyncio.TimerHandle | None = None

    # --- the protocol ------------------------------------------------------------------
    async def start(self) -> None:
        """Spawn the interactive shell. Raises ``TargetUnreachableError`` when it cannot
        start (no PTY left, the folder is gone)."""
        if self._started:
            return
        self._started = True
        if sys.platform == "win32":
            return
        loop = asyncio.get_running_loop()
        try:
            master, slave = os.openpty()
        except OSError as exc:
            raise TargetUnreachableError(f"no pseudo-terminal available ({exc.strerror})"
                                         ) from None
        try:
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", *WINDOW_SIZE, 0, 0))
            env = scrubbed_environment()
            env["TERM"] = "dumb"
            argv = _shell_argv(env)
            if argv[0].endswith("bash"):
                env["PS1"] = r"\w\$ "
            self._transport, _ = await loop.subprocess_exec(
                lambda: _ShellExit(self._shell_exited), *argv, stdin=slave, stdout=slave,
                stderr=slave, cwd=self.cwd, env=env, preexec_fn=lambda: _take_terminal(slave))
        except BaseException as exc:
            os.close(master)
            if isinstance(exc, OSError):
                raise TargetUnreachableError(f"cannot start a shell in {self.cwd}"
                                             f" ({exc.strerror or exc})") from None
            raise
        finally:
            os.close(slave)  # The shell has its copies; ours would keep EIO from coming.
        self._master = master
        self._pid = self._transport.get_pid()
        os.set_blocking(master, False)
        loop.add_reader(master, self._on_readable)

    @property
    def connected(self) -> bool:
        return not self._closed and not self._exited.is_set() and not self._eof

    async def execute(self, command: str, timeout_s: float) -> CommandResult:
        """The command on its own (not typed into the shell), in the session's folder."""
        if self._closed:
            raise TargetUnreachableError("the session is closed")
        task = asyncio.ensure_future(run_command(
            command, cwd=self.cwd, timeout_s=min(timeout_s, MAX_TIMEOUT_S),
            max_output_bytes=self._max_output_bytes))
        self._running.add(task)
        try:
            return await task  # Our caller cancelled: the task (and its processes) go too.
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._closed and current is not None and not current.cancelling():
                raise TargetUnreachableError("the session was closed while the command"
                                             " ran") from None
            raise
        except OSError as exc:
            raise TargetUnreachableError(f"cannot run a command in {self.cwd}"
                                         f" ({exc.strerror or exc})") from None
        finally:
            self._running.discard(task)

    async def send(self, data: str) -> None:
        """Type ``data`` into the shell (at most :data:`MAX_SEND_BYTES` bytes of UTF-8)."""
        raw = data.encode("utf-8", "replace")
        if len(raw) > MAX_SEND_BYTES:
            raise InvalidSessionRequestError(f"at most {MAX_SEND_BYTES} bytes per write"
                                             f" ({len(raw)} given)")
        if sys.platform == "win32":
            raise NotSupportedHereError("local sessions on Windows run commands only")
        if self._master is None or not self.connected:
            raise TargetUnreachableError("the shell has ended")
        async with self._write_lock:  # Two writes must not interleave their halves.
            try:
                async with asyncio.timeout(SEND_TIMEOUT_S):
                    await self._write_all(raw)
            except TimeoutError:
                raise TargetUnreachableError("the shell is not reading its input") from None

    def take_output(self) -> list[str]:
        return self._ring.take()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._running):
            task.cancel()
        if self._pid is not None:
            kill_group(self._pid)
        self._stop_reading()
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None
        if self._running:
            await asyncio.wait(list(self._running), timeout=CLOSE_TIMEOUT_S)
        if self._transport is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self._exited.wait()
            self._transport.close()

    # --- inside ------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The shell's pid, which is also its process group's and session's id."""
        return self._pid

    async def _write_all(self, raw: bytes) -> None:
        view = memoryview(raw)
        while view:
            master = self._master
            if master is None or not self.connected:
                raise TargetUnreachableError("the shell has ended")
            try:
                written = os.write(master, view)
            except BlockingIOError:
                await self._writable(master)
                continue
            except OSError as exc:
                raise TargetUnreachableError(f"the shell has ended ({exc.strerror})"
                                             ) from None
            view = view[written:]

    async def _writable(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(fd, wake)
        try:
            await ready
        finally:
            loop.remove_writer(fd)

    def _on_readable(self) -> None:
        master = self._master
        if master is None:
            return
        try:
            data = os.read(master, READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: every copy of the terminal is closed.
            if exc.errno != errno.EIO:
                log.warning("reading local shell %s failed: %s", self.id, exc)
            data = b""
        if not data:
            self._eof = True
            self._stop_reading()
            self._emit(self._decoder.decode(b"", final=True))
            return
        self._emit(self._decoder.decode(data))
        self._throttle(master, len(data))

    def _throttle(self, master: int, size: int) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._window_start >= READ_WINDOW_S:
            self._window_start, self._window_bytes = now, 0
        self._window_bytes += size
        if self._window_bytes >= MAX_READ_BYTES_PER_S * READ_WINDOW_S:
            loop.remove_reader(master)
            self._resume_handle = loop.call_at(self._window_start + READ_WINDOW_S,
                                               self._resume_reading)

    def _resume_reading(self) -> None:
        self._resume_handle = None
        if self._master is not None and not self._closed and not self._eof:
            asyncio.get_running_loop().add_reader(self._master, self._on_readable)

    def _stop_reading(self) -> None:
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None
        if self._master is not None:
            with contextlib.suppress(Exception):  # The loop may be closing.
                asyncio.get_running_loop().remove_reader(self._master)

    def _shell_exited(self) -> None:
        """The shell is gone: its jobs must not live on without anyone able to reach
        them (the session stays listed until closed, but nothing runs under it)."""
        self._exited.set()
        if self._pid is not None:
            kill_group(self._pid)

    def _emit(self, text: str) -> None:
        if not text:
            return
        self._ring.append(text)
        if self._on_output is not None:
            try:
                self._on_output(self.id, text)
            except Exception:  # A listener's bug must not end the shell's stream.
                log.exception("terminal output listener failed for %s", self.id)


class _ShellExit(asyncio.SubprocessProtocol):
    def __init__(self, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit

    def process_exited(self) -> None:
        self._on_exit()


def _shell_argv(env: dict[str, str]) -> list[str]:
    bash = shutil.which("bash", path=env.get("PATH", os.defpath))
    if bash is not None:
        return [bash, "--noprofile", "--norc", "-i"]
    return ["/bin/sh", "-i"]


def _take_terminal(tty_fd: int) -> None:
    """In the child, before exec: lead a new session and make the PTY its controlling
    terminal. (asyncio runs this after its own setup; uvloop before it, so the session is
    made here rather than with ``start_new_session``.) No imports, locks or logging here:
    the child of a threaded process must not wait for a lock another thread held."""
    if os.getsid(0) != os.getpid():
        os.setsid()
    fcntl.ioctl(tty_fd, termios.TIOCSCTTY, 0)

