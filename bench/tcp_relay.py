"""The lowest floor: a Python TCP relay that passes bytes both ways and does nothing else.

Each client connection gets its own connection to the upstream; what one side sends is
written to the other as it arrives, with no HTTP parsing, no task and no buffering (uvloop,
as ``gambiarra serve`` runs). No hub written in Python can cost less per request or per
relayed chunk than this on the same machine: the benchmark measures it beside the hub, so
the table shows which part of the hub's cost is the kernel and the event loop moving bytes
through one more process, and which part is the hub's own work.
Run: ``python bench/tcp_relay.py --port P --upstream http://127.0.0.1:U``.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from bare_relay import relay_main


class _Pipe(asyncio.Protocol):
    """One side of a relayed connection: what it receives goes to ``peer``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.pending: list[bytes] = []
        """Bytes that came before the peer was connected."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.pending.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.close()


class _Client(_Pipe):
    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self._host, self._port = host, port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self._dial())

    async def _dial(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(_Pipe, self._host, self._port)
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        upstream.peer, self.peer = self, upstream
        if self.pending and upstream.transport is not None:
            upstream.transport.write(b"".join(self.pending))
            self.pending.clear()


async def serve(port: int, upstream: str) -> None:
    parts = urlsplit(upstream)
    host, upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: _Client(host, upstream_port), "127.0.0.1", port)
    print(f"tcp relay listening on {port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    relay_main(__doc__, serve)


if __name__ == "__main__":
    main()
