"""SSH sessions against a real asyncssh server on 127.0.0.1: host key trust, login, real
exit codes, the output cap, the interactive shell, and no password in any log."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from gambiarra_desktop.terminal.errors import (
    HostKeyMismatchError,
    HostKeyUnknownError,
    InvalidSessionRequestError,
    SshAuthError,
    TargetRefusedError,
    TargetUnreachableError,
)
from gambiarra_desktop.terminal.known_hosts import KnownHosts
from gambiarra_desktop.terminal.specs import SessionSpec
from gambiarra_desktop.terminal.ssh import MAX_OUTPUT_BYTES, SshSession, open_ssh
from tests.conftest import eventually
from tests.ssh_server import PASSWORD, USER, SshServer, start_ssh_server

CLIENT_KEY = asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
async def server() -> AsyncIterator[SshServer]:
    started = await start_ssh_server(client_key=CLIENT_KEY.convert_to_public())
    yield started
    await started.stop()


@pytest.fixture
def known(tmp_path: Path) -> KnownHosts:
    return KnownHosts(tmp_path / "data" / "terminal_known_hosts")


def spec(port: int, *, password: str | None = PASSWORD, key: str | None = None,
         fingerprint: str | None = None, host: str = "127.0.0.1") -> SessionSpec:
    return SessionSpec("ssh", host, port, USER, password, key, fingerprint)


async def trusted_session(server: SshServer, known: KnownHosts) -> SshSession:
    return await open_ssh("term-1", spec(server.port, fingerprint=server.fingerprint), known)


async def test_unknown_host_is_refused_with_its_fingerprint_and_no_login(
        server: SshServer, known: KnownHosts) -> None:
    with pytest.raises(HostKeyUnknownError) as caught:
        await open_ssh("term-1", spec(server.port), known)
    assert caught.value.fingerprint == server.host_key.get_fingerprint("sha256")
    assert caught.value.fingerprint.startswith("SHA256:")
    assert server.auth.passwords_tried == 0  # The password never reached the unknown host.
    assert not known.path.exists()


async def test_accepted_fingerprint_is_trusted_and_logs_in(
        server: SshServer, known: KnownHosts, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    session = await trusted_session(server, known)
    try:
        assert session.connected and session.type == "ssh"
        assert session.target == f"{USER}@127.0.0.1:{server.port}"
        assert known.fingerprint_for("127.0.0.1", server.port) == server.fingerprint
        entry = known.path.read_text()
        assert entry.startswith(f"[127.0.0.1]:{server.port} ssh-ed25519 ")
        assert stat.S_IMODE(os.stat(known.path).st_mode) == 0o600
        # Next time the trusted key is enough: no fingerprint in the request.
        again = await open_ssh("term-2", spec(server.port), known)
        await again.close()
        assert known.path.read_text() == entry  # Not written twice.
    finally:
        await session.close()
    assert PASSWORD not in caplog.text


async def test_wrong_fingerprint_for_an_unknown_host_is_a_mismatch(
        server: SshServer, known: KnownHosts) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    with pytest.raises(HostKeyMismatchError) as caught:
        await open_ssh("term-1", spec(server.port, fingerprint=other), known)
    assert caught.value.fingerprint == server.fingerprint
    assert server.auth.passwords_tried == 0
    assert known.fingerprint_for("127.0.0.1", server.port) is None


async def test_changed_host_key_is_a_mismatch_and_cannot_be_accepted_over_the_api(
        known: KnownHosts) -> None:
    first = await start_ssh_server()
    port = first.port
    session = await open_ssh("term-1", spec(port, fingerprint=first.fingerprint), known)
    await session.close()
    await first.stop()
    impostor = await start_ssh_server(port=port)  # Same address and port, another key.
    try:
        with pytest.raises(HostKeyMismatchError) as caught:
            await open_ssh("term-2", spec(port), known)
        assert caught.value.fingerprint == impostor.fingerprint
        # Resending with the impostor's fingerprint does not replace the trusted key.
        with pytest.raises(HostKeyMismatchError):
            await open_ssh("term-3", spec(port, fingerprint=impostor.fingerprint), known)
        assert impostor.auth.passwords_tried == 0
        assert known.fingerprint_for("127.0.0.1", port) == first.fingerprint
    finally:
        await impostor.stop()


async def test_host_whose_key_type_changed_is_a_mismatch(known: KnownHosts) -> None:
    """The login only accepts the trusted key's type, so a server that now has only an
    ECDSA key fails the key exchange; that is reported as the key change it is."""
    first = await start_ssh_server()
    port = first.port
    session = await open_ssh("term-1", spec(port, fingerprint=first.fingerprint), known)
    await session.close()
    await first.stop()
    impostor = await start_ssh_server(
        port=port, host_key=asyncssh.generate_private_key("ecdsa-sha2-nistp256"))
    try:
        with pytest.raises(HostKeyMismatchError) as caught:
            await open_ssh("term-2", spec(port), known)
        assert caught.value.fingerprint == impostor.fingerprint
        assert impostor.auth.passwords_tried == 0
    finally:
        await impostor.stop()


async def test_wrong_password_is_an_auth_error_that_names_no_password(
        server: SshServer, known: KnownHosts, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-password-0c1d"
    with pytest.raises(SshAuthError) as caught:
        await open_ssh("term-1", spec(server.port, password=wrong,
                                      fingerprint=server.fingerprint), known)
    assert server.auth.passwords_tried >= 1
    text = f"{caught.value} {caught.value.details} {caught.value!r}"
    assert wrong not in text and wrong not in caplog.text
    assert PASSWORD not in caplog.text
    assert wrong not in repr(spec(server.port, password=wrong))


async def test_key_login_works_and_a_foreign_key_is_refused(
        server: SshServer, known: KnownHosts) -> None:
    pem = CLIENT_KEY.export_private_key("openssh").decode()
    session = await open_ssh("term-1", spec(server.port, password=None, key=pem,
                                            fingerprint=server.fingerprint), known)
    try:
        result = await session.execute("echo by-key", 10)
        assert result.stdout == "by-key\n" and result.exit_code == 0
    finally:
        await session.close()
    assert server.auth.passwords_tried == 0
    foreign = asyncssh.generate_private_key("ssh-ed25519").export_private_key("openssh")
    with pytest.raises(SshAuthError):
        await open_ssh("term-2", spec(server.port, password=None, key=foreign.decode()), known)


async def test_unreadable_key_is_refused_without_quoting_it(
        server: SshServer, known: KnownHosts) -> None:
    junk = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n"
    with pytest.raises(InvalidSessionRequestError) as caught:
        await open_ssh("term-1", spec(server.port, password=None, key=junk,
                                      fingerprint=server.fingerprint), known)
    assert "c2VjcmV0" not in str(caught.value.details)
    assert not known.path.exists()  # Refused before any connection.


async def test_execute_reports_real_exit_codes_and_separate_streams(
        server: SshServer, known: KnownHosts) -> None:
    session = await trusted_session(server, known)
    try:
        result = await session.execute("echo out; echo err >&2; exit 3", 10)
        assert (result.stdout, result.stderr, result.exit_code) == ("out\n", "err\n", 3)
        assert not result.timed_out and not result.truncated
        assert (await session.execute("true", 10)).exit_code == 0
        killed = await session.execute("kill -KILL $$", 10)
        assert killed.exit_code == 128 + 9
    finally:
        await session.close()


async def test_execute_caps_output_and_times_out(server: SshServer, known: KnownHosts) -> None:
    session = await trusted_session(server, known)
    try:
        big = await session.execute("head -c 3000000 /dev/zero | tr '\\0' a", 30)
        assert big.truncated and big.exit_code == 0
        assert len(big.stdout) == MAX_OUTPUT_BYTES
        started = time.monotonic()
        slow = await session.execute("sleep 30", 0.5)
        assert slow.timed_out and time.monotonic() - started < 5
        # The session is still usable after a command timed out.
        assert (await session.execute("echo still", 10)).stdout == "still\n"
    finally:
        await session.close()


async def test_interactive_shell_round_trip(server: SshServer, known: KnownHosts) -> None:
    seen: list[tuple[str, str]] = []
    session = await open_ssh("term-9", spec(server.port, fingerprint=server.fingerprint),
                             known, on_output=lambda sid, text: seen.append((sid, text)))
    try:
        await session.send("hello\n")
        taken: list[str] = []

        def echoed() -> bool:
            taken.extend(session.take_output())
            return "echo:hello" in "".join(taken)

        await eventually(echoed)
        assert any(sid == "term-9" and "echo:hello" in text for sid, text in seen)
        with pytest.raises(InvalidSessionRequestError):
            await session.send("x" * 70_000)
    finally:
        await session.close()
        await session.close()  # Twice is harmless.
    assert not session.connected
    with pytest.raises(TargetUnreachableError):
        await session.send("after close\n")


async def test_metadata_and_link_local_targets_are_refused_before_connecting(
        known: KnownHosts) -> None:
    for host in ("169.254.169.254", "fe80::1", "224.0.0.1", "0.0.0.0"):
        started = time.monotonic()
        with pytest.raises(TargetRefusedError):
            await open_ssh("term-1", spec(22, host=host), known)
        assert time.monotonic() - started < 1.0


async def test_closed_port_is_unreachable(known: KnownHosts) -> None:
    gone = await start_ssh_server()
    port = gone.port
    await gone.stop()
    with pytest.raises(TargetUnreachableError):
        await open_ssh("term-1", spec(port), known, connect_timeout_s=3)


def test_known_hosts_matches_the_port_exactly(tmp_path: Path) -> None:
    known = KnownHosts(tmp_path / "kh")
    key = asyncssh.generate_private_key("ssh-ed25519")
    known.trust("10.0.0.5", 22, key)
    assert known.fingerprint_for("10.0.0.5", 22) == key.get_fingerprint("sha256")
    assert known.fingerprint_for("10.0.0.5", 2222) is None  # Not OpenSSH-unlike fallback.
    assert known.path.read_text().startswith("10.0.0.5 ssh-ed25519 ")
    known.trust("10.0.0.5", 2222, key)
    assert "[10.0.0.5]:2222 ssh-ed25519 " in known.path.read_text()
