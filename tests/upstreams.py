"""Misbehaving upstreams that aiohttp cannot imitate: raw sockets, for exact failure modes."""

from __future__ import annotations

import asyncio
import json

CHAT_REPLY = json.dumps({
    "id": "chatcmpl-raw", "object": "chat.completion", "created": 0, "model": "raw",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "fresh"},
                 "finish_reason": "stop"}],
}).encode()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request with a Content-Length body, read off a raw socket."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


class StaleKeepAliveServer:
    """Answers the first request on each connection with ``Connection: keep-alive`` and then
    closes the connection when a second request arrives on it, without answering. That is
    what a client sees when it reuses a pooled connection the server already dropped (the
    llama.cpp server quirk), made deterministic."""

    def __init__(self) -> None:
        self.connections = 0
        self.dropped_requests = 0
        self.answered = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for request_number in range(2):
                await read_request(reader)
                if request_number == 1:
                    self.dropped_requests += 1
                    return
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Connection: keep-alive\r\nContent-Length: "
                    + str(len(CHAT_REPLY)).encode() + b"\r\n\r\n" + CHAT_REPLY
                )
                await writer.drain()
                self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()
