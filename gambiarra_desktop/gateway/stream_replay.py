"""A whole chat answer sent as an OpenAI event stream.

A cross-checked request that asked for ``stream: true`` can only start once the verdict
is in; it then gets the answer as a stream all the same, so a streaming client needs no
second code path: a first chunk with the role and the whole text (and tool calls), a last
chunk with the finish reason, the usage and the ``crossCheck`` verdict, then ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gambiarra_desktop.hub.api.responses import dump_json
from gambiarra_desktop.hub.proxy.stream_relay import STREAM_HEADERS


def stream_chunks(data: dict[str, Any]) -> list[bytes]:
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list) and tool_calls:
        delta["tool_calls"] = [{**call, "index": index} for index, call in enumerate(tool_calls)
                               if isinstance(call, dict)]
    base = {"id": data.get("id", "chatcmpl-gateway"), "object": "chat.completion.chunk",
            "created": data.get("created", 0), "model": data.get("model", "")}
    first = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    last: dict[str, Any] = {**base, "choices": [{"index": 0, "delta": {},
                                                 "finish_reason": finish or "stop"}]}
    if data.get("usage") is not None:
        last["usage"] = data["usage"]
    if "crossCheck" in data:
        last["crossCheck"] = data["crossCheck"]
    return [b"data: " + dump_json(first) + b"\n\n", b"data: " + dump_json(last) + b"\n\n",
            b"data: [DONE]\n\n"]


async def replay_as_stream(request: web.Request, data: dict[str, Any],
                           headers: Mapping[str, str]) -> web.StreamResponse:
    response = web.StreamResponse(headers={**STREAM_HEADERS, **headers})
    await response.prepare(request)
    for chunk in stream_chunks(data):
        await response.write(chunk)
    await response.write_eof()
    return response
