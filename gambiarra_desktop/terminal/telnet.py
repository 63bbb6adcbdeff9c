"""Telnet sessions: a raw link to a device's console on the LAN (routers, switches, old
boxes that speak nothing else).

Telnet is clear text, so ``resolve_target(telnet=True)`` keeps it to private addresses.
Data goes both ways as it is: no line editing or echo handling of our own, only the option
negotiation telnetlib3 must answer (with a "dumb" terminal type and no environment beyond
TERM, so nothing of the hub's machine is volunteered to the device).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging

import telnetlib3

from gambiarra_desktop.execution.result import CommandResult
from gambiarra_desktop.terminal.errors import (
    InvalidSessionRequestError,
    NotSupportedHereError,
    TargetUnreachableError,
)
from gambiarra_desktop.terminal.output_ring import OutputRing
from gambiarra_desktop.terminal.session import OutputListener, SessionType
from gambiarra_desktop.terminal.targets import resolve_target

log = logging.getLogger(__name__)

MAX_SEND_BYTES = 65_536
READ_CHUNK_BYTES = 65_536
SEND_TIMEOUT_S = 10.0
NEGOTIATION_MAX_WAIT_S = 1.0
"""A plain TCP console answers no options; do not hold the session's creation for long."""


async def open_telnet(session_id: str, host: str, port: int, *, connect_timeout_s: float = 10.0,
                      on_output: OutputListener | None = None) -> TelnetSession:
    """Connect to ``host:port`` (a private address only) and start reading what it says."""
    address = await resolve_target(host, port, telnet=True)
    try:
        async with asyncio.timeout(connect_timeout_s + NEGOTIATION_MAX_WAIT_S):
            reader, writer = await telnetlib3.open_connection(
                address, port, client_factory=telnetlib3.TelnetClient, encoding=False,
                term="dumb", send_environ=("TERM",), connect_minwait=0,
                connect_maxwait=NEGOTIATION_MAX_WAIT_S, connect_timeout=connect_timeout_s)
    except TimeoutError:
        raise TargetUnreachableError(f"{host}:{port}: timed out") from None
    except OSError as exc:
        raise TargetUnreachableError(f"{host}:{port}: {exc.strerror or exc}") from None
    session = TelnetSession(session_id, f"{host}:{port}", reader, writer, on_output=on_output)
    session.start()
    return session


class TelnetSession:
    """One Telnet link: a reader task feeds the output ring; ``send`` writes bytes."""

    type: SessionType = "telnet"

    def __init__(self, session_id: str, target: str, reader: telnetlib3.TelnetReader,
                 writer: telnetlib3.TelnetWriter, *,
                 on_output: OutputListener | None = None) -> None:
        self.id = session_id
        self.target = target
        self._reader = reader
        self._writer = writer
        self._on_output = on_output
        self._ring = OutputRing()
        # Incremental: a UTF-8 character split across two reads is decoded whole.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pump: asyncio.Task[None] | None = None
        self._ended = False
        self._closed = False

    def start(self) -> None:
        self._pump = asyncio.get_running_loop().create_task(
            self._read_forever(), name=f"telnet-{self.id}")

    @property
    def connected(self) -> bool:
        return not (self._closed or self._ended or self._writer.is_closing())

    async def execute(self, command: str, timeout_s: float) -> CommandResult:
        raise NotSupportedHereError("Telnet has no exit codes or separate output: use"
                                    " send and output instead")

    async def send(self, data: str) -> None:
        raw = data.encode("utf-8", "replace")
        if len(raw) > MAX_SEND_BYTES:
            raise InvalidSessionRequestError(f"at most {MAX_SEND_BYTES} bytes per write"
                                             f" ({len(raw)} given)")
        if not self.connected:
            raise TargetUnreachableError(f"{self.target}: the link has closed")
        self._writer.write(raw)
        try:  # Bounded: a device that stops reading must not let writes pile up here.
            await asyncio.wait_for(self._writer.drain(), timeout=SEND_TIMEOUT_S)
        except TimeoutError:
            raise TargetUnreachableError(f"{self.target}: the device is not reading"
                                         " input") from None
        except OSError as exc:
            raise TargetUnreachableError(f"{self.target}: {exc}") from None

    def take_output(self) -> list[str]:
        return self._ring.take()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump

    async def _read_forever(self) -> None:
        try:
            while True:
                chunk = await self._reader.read(READ_CHUNK_BYTES)
                if not chunk:
                    break
                text = self._decoder.decode(bytes(chunk))
                if text:
                    self._emit(text)
        except (OSError, EOFError) as exc:
            log.info("telnet session %s: read ended (%s)", self.id, type(exc).__name__)
        finally:
            self._ended = True
            tail = self._decoder.decode(b"", final=True)
            if tail:
                self._emit(tail)

    def _emit(self, text: str) -> None:
        self._ring.append(text)
        if self._on_output is not None:
            try:
                self._on_output(self.id, text)
            except Exception:  # A listener's bug must not end the link's stream.
                log.exception("terminal output listener failed for %s", self.id)
