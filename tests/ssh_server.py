"""A real SSH server for tests: asyncssh's, in-process, on 127.0.0.1.

Commands run for real (``/bin/sh -c``), so exit codes, stderr, signals and large outputs
are what a shell produces; the interactive shell echoes each input back as ``echo:<data>``.
It counts login attempts so a test can show that an unknown host never saw a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import signal
from dataclasses import dataclass, field

import asyncssh

USER = "tester"
PASSWORD = "correct horse battery staple 7f3a"
COMMAND_LIMIT_S = 60.0
"""No test command runs longer; the server kills it then even if nobody hung up."""


@dataclass
class AuthLog:
    passwords_tried: int = 0
    keys_tried: int = 0


@dataclass
class SshServer:
    host_key: asyncssh.SSHKey
    port: int
    acceptor: asyncssh.SSHAcceptor
    auth: AuthLog = field(default_factory=AuthLog)
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def fingerprint(self) -> str:
        return self.host_key.get_fingerprint("sha256")

    async def stop(self) -> None:
        """Stop listening and end every command still running (closing the listener
        leaves open connections' handlers to the event loop's teardown otherwise)."""
        self.acceptor.close()
        await self.acceptor.wait_closed()
        for task in list(self.handlers):
            task.cancel()
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=5)


class _Server(asyncssh.SSHServer):
    def __init__(self, auth: AuthLog, client_key: asyncssh.SSHKey | None) -> None:
        self._auth = auth
        self._client_key = client_key

    def begin_auth(self, username: str) -> bool:
        return True  # Auth is always required.

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self._auth.passwords_tried += 1
        return username == USER and hmac.compare_digest(password.encode(), PASSWORD.encode())

    def public_key_auth_supported(self) -> bool:
        return self._client_key is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        self._auth.keys_tried += 1
        return username == USER and key == self._client_key


async def _handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
    if process.command is None:
        await _echo_shell(process)
    else:
        await _run(process, process.command)


async def _echo_shell(process: asyncssh.SSHServerProcess[bytes]) -> None:
    try:
        while True:  # Ends when the client closes the channel (EOF or a broken channel).
            data = await process.stdin.read(4096)
            if not data:
                break
            process.stdout.write(b"echo:" + data)
    except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, asyncssh.Error, OSError):
        pass
    process.exit(0)


async def _run(process: asyncssh.SSHServerProcess[bytes], command: str) -> None:
    local = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", command, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)
    assert local.stdout is not None and local.stderr is not None
    finished = asyncio.ensure_future(asyncio.gather(
        _pump(local.stdout, process.stdout), _pump(local.stderr, process.stderr),
        local.wait()))
    hung_up = asyncio.ensure_future(process.wait_closed())
    try:
        await asyncio.wait({finished, hung_up}, timeout=COMMAND_LIMIT_S,
                           return_when=asyncio.FIRST_COMPLETED)
        if finished.done() and not finished.exception():
            code = local.returncode
            assert code is not None
            if code < 0:
                process.exit_with_signal(signal.Signals(-code).name.removeprefix("SIG"))
            else:
                process.exit(code)
    finally:
        hung_up.cancel()
        # The client went away (or the limit): end the command's whole group, whose
        # children (``sleep``) would otherwise hold the output pipes open.
        if not finished.done():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(local.pid, signal.SIGKILL)
        finished.cancel()
        with contextlib.suppress(BaseException):
            await finished
        await local.wait()


async def _pump(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
    while True:  # Ends at the command's end of output.
        chunk = await source.read(65536)
        if not chunk:
            return
        sink.write(chunk)
        await sink.drain()


async def start_ssh_server(*, port: int = 0, host_key: asyncssh.SSHKey | None = None,
                           client_key: asyncssh.SSHKey | None = None) -> SshServer:
    """Listen on 127.0.0.1 (``port`` 0: a free one). ``client_key``: the one public key
    allowed to log in as :data:`USER` (besides :data:`PASSWORD`)."""
    key = host_key or asyncssh.generate_private_key("ssh-ed25519")
    auth = AuthLog()
    handlers: set[asyncio.Task[None]] = set()

    async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await _handle(process)
        finally:
            handlers.discard(task)

    acceptor = await asyncssh.create_server(
        lambda: _Server(auth, client_key), "127.0.0.1", port, server_host_keys=[key],
        process_factory=handle, encoding=None, reuse_address=True)
    return SshServer(key, acceptor.get_port(), acceptor, auth, handlers)
