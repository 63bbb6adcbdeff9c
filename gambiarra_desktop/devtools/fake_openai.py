"""A small but real OpenAI-compatible model server that answers with canned tokens.

It speaks the wire format of ``/v1/chat/completions`` (plain and streamed, with
``stream_options.include_usage``) and ``/v1/models``, so the hub, the tests and the
benchmark exercise real HTTP. Run it by hand to try the app without a model:
``python -m gambiarra_desktop.devtools.fake_openai --port 8080``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeBehaviour:
    """What the fake does; tests change it between requests."""

    tokens: int = 16
    token_delay_s: float = 0.0
    first_token_delay_s: float = 0.0
    error_status: int | None = None
    error_body: dict[str, Any] = field(
        default_factory=lambda: {"error": {"message": "model exploded", "type": "server_error"}}
    )
    break_stream_after: int | None = None
    """Drop the connection after this many streamed tokens, to simulate a crashing server."""
    linger_after_done_s: float = 0.0
    """Keep a finished stream's connection open this long after ``[DONE]``, writing SSE
    comments, as a misbehaving server might."""
    whole_when_streaming: bool = False
    """Answer a request for a stream with a whole JSON answer, as some servers do."""
    close_after_stream: bool = False
    """Close the connection after each streamed reply while advertising keep-alive, as the
    llama.cpp server does."""


class FakeOpenAIServer:
    def __init__(self, models: tuple[str, ...] = ("fake-model",)) -> None:
        self.models = models
        self.behaviour = FakeBehaviour()
        self.requests: list[dict[str, Any]] = []
        self.completed_streams = 0
        self.aborted_streams = 0
        self.token_sent_at: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(self.make_app(), handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.host = host

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        b = self.behaviour
        if b.error_status is not None:
            return web.json_response(b.error_body, status=b.error_status)
        model = body.get("model", self.models[0])
        if b.first_token_delay_s:
            await asyncio.sleep(b.first_token_delay_s)
        if body.get("stream") and not b.whole_when_streaming:
            return await self._stream(request, body, model)
        text = "".join(_token(i) for i in range(b.tokens))
        return web.json_response({
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": b.tokens,
                      "total_tokens": 5 + b.tokens},
        })

    async def _stream(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> web.StreamResponse:
        b = self.behaviour
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(data)}\n\n".encode()

        try:
            for i in range(b.tokens):
                if b.break_stream_after is not None and i >= b.break_stream_after:
                    if request.transport is not None:
                        request.transport.close()
                    self.aborted_streams += 1
                    return response
                if i and b.token_delay_s:
                    await asyncio.sleep(b.token_delay_s)
                delta = {"role": "assistant", "content": _token(i)} if i == 0 else {
                    "content": _token(i)}
                self.token_sent_at.append(time.perf_counter())
                await response.write(chunk(delta))
            await response.write(chunk({}, "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"id": completion_id, "object": "chat.completion.chunk",
                         "created": created, "model": model, "choices": [],
                         "usage": {"prompt_tokens": 5, "completion_tokens": b.tokens,
                                   "total_tokens": 5 + b.tokens}}
                await response.write(f"data: {json.dumps(usage)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            deadline = time.monotonic() + b.linger_after_done_s
            while time.monotonic() < deadline:  # Bounded by the deadline.
                await asyncio.sleep(0.05)
                await response.write(b": still here\n\n")
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionResetError):
            self.aborted_streams += 1
            raise
        self.completed_streams += 1
        if b.close_after_stream:
            response.force_close()
        return response


def _token(index: int) -> str:
    return f"tok{index} "


async def _serve(host: str, port: int, models: tuple[str, ...], token_delay_s: float,
                 tokens: int = 16, first_token_delay_s: float = 0.0) -> None:
    server = FakeOpenAIServer(models)
    server.behaviour.token_delay_s = token_delay_s
    server.behaviour.tokens = tokens
    server.behaviour.first_token_delay_s = first_token_delay_s
    await server.start(host, port)
    print(f"Fake OpenAI-compatible server on {server.url} serving {', '.join(models)}",
          flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--model", action="append", dest="models")
    parser.add_argument("--token-delay", type=float, default=0.0,
                        help="seconds between streamed tokens")
    parser.add_argument("--tokens", type=int, default=16,
                        help="tokens per answer (a long stream makes per-chunk costs show)")
    parser.add_argument("--first-token-delay", type=float, default=0.0,
                        help="seconds before the first token (a model reading its prompt)")
    args = parser.parse_args()
    serve = _serve(args.host, args.port, tuple(args.models or ["fake-model"]), args.token_delay,
                   max(0, args.tokens), args.first_token_delay)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:
            asyncio.run(serve)
        else:
            uvloop.run(serve)


if __name__ == "__main__":
    main()
