"""Telnet sessions against a real telnetlib3 server on 127.0.0.1, and where sessions may
connect at all (``resolve_target``), for Telnet and SSH alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import telnetlib3

from gambiarra_desktop.terminal.errors import (
    InvalidSessionRequestError,
    NotSupportedHereError,
    TargetRefusedError,
    TargetUnreachableError,
)
from gambiarra_desktop.terminal.targets import resolve_target
from gambiarra_desktop.terminal.telnet import TelnetSession, open_telnet
from tests.conftest import eventually


async def echo_shell(reader: telnetlib3.TelnetReader, writer: telnetlib3.TelnetWriter) -> None:
    """A device that greets, then says back each piece it is sent, byte for byte."""
    writer.write(b"welcome\r\n")
    while True:  # Ends when the client hangs up.
        data = await reader.read(4096)
        if not data:
            break
        if b"bye" in data:
            writer.write(b"closing\r\n")
            break
        writer.write(b"echo:" + bytes(data))
    writer.close()


@pytest.fixture
async def device() -> AsyncIterator[int]:
    server = await telnetlib3.create_server("127.0.0.1", 0, shell=echo_shell, encoding=False,
                                            connect_maxwait=0.5, timeout=False)
    sockets = server.sockets
    assert sockets
    yield int(sockets[0].getsockname()[1])
    for client in server.clients:
        client.connection_lost(None)
    server.close()
    await server.wait_closed()


class Collected:
    """Everything ``take_output`` gave so far (it forgets what it handed out)."""

    def __init__(self, session: TelnetSession) -> None:
        self.session = session
        self.text = ""

    def has(self, piece: str) -> bool:
        self.text += "".join(self.session.take_output())
        return piece in self.text


async def test_send_and_output_round_trip(device: int) -> None:
    seen: list[tuple[str, str]] = []
    session = await open_telnet("term-7", "127.0.0.1", device,
                                on_output=lambda sid, text: seen.append((sid, text)))
    try:
        assert session.connected and session.type == "telnet"
        assert session.target == f"127.0.0.1:{device}"
        out = Collected(session)
        await eventually(lambda: out.has("welcome"))
        await session.send("show version\r\n")
        await eventually(lambda: out.has("echo:show version"))
        await session.send("ação\r\n")  # Bytes are UTF-8 both ways, not mangled.
        await eventually(lambda: out.has("echo:ação"))
        assert all(sid == "term-7" for sid, _ in seen)
        assert "echo:show version" in "".join(text for _, text in seen)
    finally:
        await session.close()
        await session.close()  # Twice is harmless.
    assert not session.connected


async def test_execute_is_not_supported_and_sends_are_bounded(device: int) -> None:
    session = await open_telnet("term-1", "127.0.0.1", device)
    try:
        with pytest.raises(NotSupportedHereError):
            await session.execute("uptime", 5)
        with pytest.raises(InvalidSessionRequestError):
            await session.send("x" * 70_000)
    finally:
        await session.close()


async def test_device_hanging_up_ends_the_session(device: int) -> None:
    session = await open_telnet("term-1", "127.0.0.1", device)
    try:
        out = Collected(session)
        await session.send("bye\r\n")
        await eventually(lambda: out.has("closing") and not session.connected)
        with pytest.raises(TargetUnreachableError):
            await session.send("anyone?\r\n")
    finally:
        await session.close()


async def test_closed_port_is_unreachable(device: int) -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    with pytest.raises(TargetUnreachableError):
        await open_telnet("term-1", "127.0.0.1", port, connect_timeout_s=3)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"])
async def test_telnet_to_a_public_address_is_refused_before_connecting(address: str) -> None:
    started = time.monotonic()
    with pytest.raises(TargetRefusedError):
        await open_telnet("term-1", address, 23, connect_timeout_s=30)
    assert time.monotonic() - started < 1.0  # A literal: no lookup, no connection tried.


@pytest.mark.parametrize("address", [
    "169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254", "169.254.1.1", "fe80::1",
    "224.0.0.1", "ff02::1", "0.0.0.0", "::", "240.0.0.1", "255.255.255.255",
    # The proxy's rule, shared: 6to4 carrying the metadata address, Alibaba's metadata.
    "2002:a9fe:a9fe::1", "100.100.100.200"])
@pytest.mark.parametrize("telnet", [True, False])
async def test_unusable_addresses_are_refused_for_both_kinds(address: str, telnet: bool) -> None:
    with pytest.raises(TargetRefusedError):
        await resolve_target(address, 22, telnet=telnet)


async def test_allowed_addresses_come_back_as_the_ip_to_connect_to() -> None:
    assert await resolve_target("127.0.0.1", 23, telnet=True) == "127.0.0.1"
    assert await resolve_target("192.168.1.20", 23, telnet=True) == "192.168.1.20"
    assert await resolve_target("localhost", 23, telnet=True) in {"127.0.0.1", "::1"}
    assert await resolve_target("8.8.8.8", 22, telnet=False) == "8.8.8.8"  # SSH may go out.


async def test_unresolvable_name_is_unreachable() -> None:
    # A label over 63 characters fails in encoding, before any DNS query leaves the box.
    with pytest.raises(TargetUnreachableError):
        await resolve_target("x" * 64 + ".lan", 22, telnet=False)
