"""SSH sessions: one asyncssh connection, an interactive shell channel and exec channels.

Trust: the server's host key must be one the hub's ``known_hosts`` holds for the address
connected to. An unknown host is never logged in to: its key is fetched on its own (no
authentication happens on that connection, so no password reaches a machine nobody
vouched for) and handed back as :class:`HostKeyUnknownError`; the admin resends with that
fingerprint to accept it. A key that differs from the trusted one is a
:class:`HostKeyMismatchError` and is never overridden through the API (replacing a key
means editing the file on purpose). The login connection trusts exactly the keys decided on
here, so a server that swaps keys between the fetch and the login still fails.

Nothing of the user's own SSH setup is used (``~/.ssh/config``, its keys, agent or
known_hosts): the hub acts on a remote request, and the person's identity must not be lent
to it. The password or key lives only in the caller's spec for the length of the login and
is never stored on the session, logged or put in an error text.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from typing import Any, cast

import asyncssh

from gambiarra_desktop.execution.result import CommandResult
from gambiarra_desktop.execution.runner import MAX_TIMEOUT_S
from gambiarra_desktop.terminal.errors import (
    HostKeyMismatchError,
    HostKeyUnknownError,
    InvalidSessionRequestError,
    SshAuthError,
    TargetUnreachableError,
)
from gambiarra_desktop.terminal.known_hosts import KnownHosts
from gambiarra_desktop.terminal.output_ring import OutputRing
from gambiarra_desktop.terminal.session import OutputListener, SessionType
from gambiarra_desktop.terminal.specs import SessionSpec
from gambiarra_desktop.terminal.targets import resolve_target

log = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 1_048_576
"""What one ``execute`` keeps of stdout and stderr together; the rest is read and dropped."""
MAX_SEND_BYTES = 65_536
SEND_TIMEOUT_S = 10.0
"""How long ``send`` waits for a server that stopped reading before giving up."""
CLOSE_TIMEOUT_S = 2.0


async def open_ssh(session_id: str, spec: SessionSpec, known_hosts: KnownHosts, *,
                   connect_timeout_s: float = 10.0,
                   on_output: OutputListener | None = None) -> SshSession:
    """Log in to ``spec`` (after the host key checks above) and open the interactive
    shell. Every failure is one of the terminal's domain errors."""
    address = await resolve_target(spec.host, spec.port, telnet=False)
    client_keys = _client_keys(spec)  # A key that cannot be read fails before any traffic.
    trusted = known_hosts.keys_for(address, spec.port)
    if not trusted:
        offered = await _offered_key(spec, address, connect_timeout_s)
        fingerprint = offered.get_fingerprint("sha256")
        accepted = spec.host_key_fingerprint
        if accepted is None:
            raise HostKeyUnknownError(spec.host, spec.port, fingerprint, address=address,
                                      key=offered)
        if not hmac.compare_digest(accepted.encode(), fingerprint.encode()):
            raise HostKeyMismatchError(spec.host, spec.port, fingerprint)
        known_hosts.trust(address, spec.port, offered)
        trusted = [offered]
    conn = await _login(spec, address, trusted, client_keys, connect_timeout_s)
    session = SshSession(session_id, spec.target, conn,
                         on_output=on_output)
    try:
        async with asyncio.timeout(connect_timeout_s):
            await session.start()
    except BaseException as exc:
        await session.close()
        if isinstance(exc, (TimeoutError, asyncssh.Error, OSError)):
            raise TargetUnreachableError(f"{spec.host}:{spec.port}: the server did not open"
                                         f" a shell ({_reason(exc)})") from None
        raise
    return session


class SshSession:
    """One logged-in connection. ``execute`` opens a fresh exec channel per command (real
    exit status, separate stderr); ``send``/``take_output`` talk to the shell channel opened
    at start."""

    type: SessionType = "ssh"

    def __init__(self, session_id: str, target: str, conn: asyncssh.SSHClientConnection, *,
                 on_output: OutputListener | None = None) -> None:
        self.id = session_id
        self.target = target
        self._conn = conn
        self._on_output = on_output
        self._ring = OutputRing()
        self._shell: asyncssh.SSHClientChannel[str] | None = None
        self._feed: _ShellFeed | None = None
        self._closed = False

    async def start(self) -> None:
        """Open the interactive shell channel: a "dumb" terminal, so programs on the other
        side do not paint with escape sequences the output ring cannot render."""
        chan, feed = await self._conn.create_session(
            lambda: _ShellFeed(self._emit), term_type="dumb", encoding="utf-8",
            errors="replace")
        self._shell, self._feed = chan, cast(_ShellFeed, feed)

    @property
    def connected(self) -> bool:
        return (not self._closed and self._feed is not None and not self._feed.ended
                and not self._conn.is_closed())

    async def execute(self, command: str, timeout_s: float) -> CommandResult:
        timeout_s = min(max(timeout_s, 0.0), MAX_TIMEOUT_S)  # As for local commands.
        if not self.connected:
            raise TargetUnreachableError(f"{self.target}: the connection has closed")
        started = time.monotonic()
        try:
            chan, session = await asyncio.wait_for(
                self._conn.create_session(_Capture, command, encoding=None),
                timeout=max(timeout_s, 1.0))
        except (TimeoutError, asyncssh.Error, OSError) as exc:
            raise TargetUnreachableError(f"{self.target}: cannot run a command"
                                         f" ({_reason(exc)})") from None
        capture = cast(_Capture, session)
        chan.write_eof()  # No stdin: a command that reads it sees end of file at once.
        timed_out = False
        try:
            await asyncio.wait_for(capture.done.wait(), timeout=timeout_s)
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(Exception):
                chan.send_signal("KILL")  # Servers that do not take signals still hang up.
            chan.close()
        code = chan.get_returncode()
        return CommandResult(
            stdout=capture.stdout.decode("utf-8", "replace"),
            stderr=capture.stderr.decode("utf-8", "replace"),
            exit_code=-1 if code is None else (128 - code if code < 0 else code),
            timed_out=timed_out, truncated=capture.truncated,
            duration_ms=(time.monotonic() - started) * 1000)

    async def send(self, data: str) -> None:
        raw_size = len(data.encode("utf-8", "replace"))
        if raw_size > MAX_SEND_BYTES:
            raise InvalidSessionRequestError(f"at most {MAX_SEND_BYTES} bytes per write"
                                             f" ({raw_size} given)")
        shell, feed = self._shell, self._feed
        if shell is None or feed is None or not self.connected:
            raise TargetUnreachableError(f"{self.target}: the shell has ended")
        try:  # Bounded: a server that stops reading must not let writes pile up here.
            await asyncio.wait_for(feed.writable.wait(), timeout=SEND_TIMEOUT_S)
        except TimeoutError:
            raise TargetUnreachableError(f"{self.target}: the server is not reading"
                                         " input") from None
        shell.write(data)

    def take_output(self) -> list[str]:
        return self._ring.take()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._shell is not None:
            self._shell.close()
        self._conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._conn.wait_closed(), timeout=CLOSE_TIMEOUT_S)

    def _emit(self, text: str) -> None:
        self._ring.append(text)
        if self._on_output is not None:
            try:
                self._on_output(self.id, text)
            except Exception:  # A listener's bug must not end the shell's stream.
                log.exception("terminal output listener failed for %s", self.id)


class _ShellFeed(asyncssh.SSHClientSession[str]):
    """The shell channel's receiving end: every chunk (stdout and stderr alike, as a
    terminal shows them) to the session; write flow control as an event ``send`` awaits."""

    def __init__(self, sink: Any) -> None:
        self._sink = sink
        self.writable = asyncio.Event()
        self.writable.set()
        self.ended = False

    def data_received(self, data: str, datatype: asyncssh.DataType) -> None:
        self._sink(data)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.writable.set()  # Wake a waiting send; it sees the end and says so.


class _Capture(asyncssh.SSHClientSession[bytes]):
    """One command's output up to :data:`MAX_OUTPUT_BYTES` (stdout and stderr share it);
    past the cap chunks are counted and dropped as they arrive, so a chatty command costs
    no memory."""

    def __init__(self) -> None:
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.truncated = False
        self.done = asyncio.Event()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        room = MAX_OUTPUT_BYTES - len(self.stdout) - len(self.stderr)
        if len(data) > room:
            self.truncated = True
            data = data[:max(room, 0)]
        target = self.stderr if datatype == asyncssh.EXTENDED_DATA_STDERR else self.stdout
        target += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.done.set()


def _client_keys(spec: SessionSpec) -> list[asyncssh.SSHKey] | None:
    """The one key the request brought, or None (password login). None, not ``[]``:
    asyncssh reads ``~/.ssh``'s keys when given an empty list."""
    if spec.private_key is None:
        return None
    try:
        return [asyncssh.import_private_key(spec.private_key)]
    except Exception:  # KeyImportError, ValueError, but also OverflowError... on bad bytes.
        # The library's text could quote the key; ours says only what went wrong.
        raise InvalidSessionRequestError('"privateKey" is not an unencrypted OpenSSH or'
                                         " PEM private key") from None


async def _offered_key(spec: SessionSpec, address: str, timeout_s: float) -> asyncssh.SSHKey:
    """The host key ``address`` offers, from a key exchange with no login attempt."""
    try:
        async with asyncio.timeout(timeout_s):
            key = await asyncssh.get_server_host_key(address, spec.port, config=None)
    except (TimeoutError, asyncssh.Error, OSError) as exc:
        raise TargetUnreachableError(f"{spec.host}:{spec.port}: {_reason(exc)}") from None
    if key is None:
        raise TargetUnreachableError(f"{spec.host}:{spec.port}: the server showed no host key")
    return key


async def _login(spec: SessionSpec, address: str, trusted: list[asyncssh.SSHKey],
                 client_keys: list[asyncssh.SSHKey] | None,
                 timeout_s: float) -> asyncssh.SSHClientConnection:
    by_key = client_keys is not None
    try:
        async with asyncio.timeout(timeout_s):
            return await asyncssh.connect(
                address, spec.port, username=spec.username,
                known_hosts=(trusted, [], []),  # Exactly these keys: never ~/.ssh's file.
                x509_trusted_certs=None, config=None,
                client_keys=client_keys, agent_path=None, agent_identities=None,
                password=None if by_key else spec.password,
                kbdint_auth=not by_key, gss_auth=False, gss_kex=False,
                host_based_auth=False,
                preferred_auth="publickey" if by_key else "keyboard-interactive,password",
                connect_timeout=timeout_s, login_timeout=timeout_s)
    except (asyncssh.HostKeyNotVerifiable, asyncssh.KeyExchangeFailed) as exc:
        # Not the trusted key, or (a key exchange limited to the trusted key's type
        # failing) no key of that type any more: ask what it offers now to tell a changed
        # key from a plain handshake failure.
        offered = await _offered_key(spec, address, timeout_s)
        if offered not in trusted:
            raise HostKeyMismatchError(spec.host, spec.port,
                                       offered.get_fingerprint("sha256")) from None
        raise TargetUnreachableError(f"{spec.host}:{spec.port}: {_reason(exc)}") from None
    except asyncssh.PermissionDenied:
        how = "key" if by_key else "password"
        raise SshAuthError(f"{spec.host}:{spec.port} refused user {spec.username!r} with"
                           f" that {how}") from None
    except (TimeoutError, asyncssh.Error, OSError) as exc:
        raise TargetUnreachableError(f"{spec.host}:{spec.port}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """A short cause for an error text: the library's own words, which never hold our
    password (they come from the socket or the server), or the kind of failure."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, asyncssh.DisconnectError):
        return exc.reason or type(exc).__name__
    return str(exc) or type(exc).__name__
