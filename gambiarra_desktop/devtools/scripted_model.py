"""A real OpenAI-compatible server on loopback that answers from a script: each chat call
takes the next scripted reply (text, reasoning, tool calls), streamed or not.

Streamed tool calls are sent the way real servers send them: the id and name first, then
the arguments in pieces split at arbitrary points (mid-key, mid-string), so the client's
reassembly is really exercised. Every request body is kept, so a test can check what was
fed back to the model (tool results, the summary prompt). Used by the agent tests and the
GUI tests; nothing in the product imports it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gambiarra_desktop.protocol import PARTICIPANT_HEADER


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    name: str
    arguments: dict[str, Any]
    id: str = ""


@dataclass(frozen=True, slots=True)
class ScriptedReply:
    text: str = ""
    reasoning: str = ""
    calls: tuple[ScriptedCall, ...] = ()
    stream: bool = True
    hold_s: float = 0.0
    """Wait this long before answering (a slow model, for cancellation tests)."""
    status: int = 200


@dataclass
class ScriptedModel:
    replies: list[ScriptedReply]
    served_by: str = "alice"
    models: tuple[str, ...] = ("scripted",)
    requests: list[dict[str, Any]] = field(default_factory=list)
    split_every: int = 7
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                                     shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> ScriptedModel:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list",
                                  "data": [{"id": model, "object": "model"}
                                           for model in self.models]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if not self.replies:
            return web.json_response({"error": {"message": "the script has no more replies"}},
                                     status=500)
        reply = self.replies.pop(0)
        if reply.hold_s:
            await asyncio.sleep(reply.hold_s)
        headers = {PARTICIPANT_HEADER: self.served_by}
        if reply.status != 200:
            return web.json_response({"error": {"message": f"scripted failure {reply.status}"}},
                                     status=reply.status, headers=headers)
        calls = [{"id": call.id or f"call_{index}", "type": "function",
                  "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}
                 for index, call in enumerate(reply.calls)]
        usage = {"prompt_tokens": 11 * len(self.requests), "completion_tokens": 5}
        if not reply.stream:
            message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
            if reply.reasoning:
                message["reasoning_content"] = reply.reasoning
            if calls:
                message["tool_calls"] = calls
            return web.json_response({
                "id": "chatcmpl-scripted", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if calls else "stop"}],
                "usage": usage}, headers=headers)
        response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
        await response.prepare(request)
        for delta in self._deltas(reply, calls):
            await response.write(_chunk({"choices": [{"index": 0, "delta": delta,
                                                       "finish_reason": None}]}))
        await response.write(_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason":
                                                  "tool_calls" if calls else "stop"}]}))
        await response.write(_chunk({"choices": [], "usage": usage}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _deltas(self, reply: ScriptedReply, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        deltas: list[dict[str, Any]] = [{"role": "assistant"}]
        step = self.split_every
        for index in range(0, len(reply.reasoning), step):
            deltas.append({"reasoning_content": reply.reasoning[index:index + step]})
        for index in range(0, len(reply.text), step):
            deltas.append({"content": reply.text[index:index + step]})
        for number, call in enumerate(calls):
            deltas.append({"tool_calls": [{"index": number, "id": call["id"], "type": "function",
                                           "function": {"name": call["function"]["name"],
                                                        "arguments": ""}}]})
            arguments = call["function"]["arguments"]
            for index in range(0, len(arguments), step):
                deltas.append({"tool_calls": [{"index": number, "function": {
                    "arguments": arguments[index:index + step]}}]})
        return deltas


def _chunk(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()
