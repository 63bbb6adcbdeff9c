"""The agent's calls to an OpenAI-compatible model server (the local hub by default).

Every call asks for a stream (``stream: true``, usage included) so text reaches the user
as it is written, but a server that answers with one JSON reply instead is read the same
way. Streamed tool calls arrive as deltas keyed by ``index`` (the id and name first, the
arguments in pieces split anywhere, even inside a JSON string); they are put back together
here and parsed once complete. Every reply is bounded: total bytes, line length, tool
calls and argument size, and time (security rule 5).

Which machine answered is read from the hub's headers (``X-Gambiarra-Participant`` on a
room's ``/v1``, ``X-Gambiarra-Model`` on the gateway), so an approval can say whose model
proposed a command.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import aiohttp

from gambiarra_desktop.agent.errors import ModelCallError
from gambiarra_desktop.protocol import MODEL_HEADER, PARTICIPANT_HEADER

MAX_REPLY_BYTES = 8 * 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024
MAX_TOOL_CALLS = 16
MAX_ARGUMENT_BYTES = 512 * 1024
MAX_MODELS = 1000
SERVED_BY_HEADERS = (PARTICIPANT_HEADER, MODEL_HEADER)


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    """The raw JSON text the model wrote; :meth:`parsed` reads it."""

    def parsed(self) -> Any:
        """The arguments as JSON, or the raw text when the model wrote broken JSON (the
        tool then says so, and the model may retry)."""
        try:
            return json.loads(self.arguments) if self.arguments.strip() else {}
        except ValueError:
            return self.arguments

    def to_message(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(slots=True)
class ModelTurn:
    """Everything one model call produced, once it is over."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    served_by: str | None = None
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Delta:
    kind: str
    """"text" or "reasoning"."""
    content: str


class ModelClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str,
                 api_key: str | None = None, timeout_s: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=10)

    async def models(self) -> list[str]:
        """The ids the base URL lists (``GET /models``)."""
        try:
            async with self._session.get(f"{self.base_url}/models", headers=self._headers,
                                         timeout=aiohttp.ClientTimeout(total=15)) as response:
                body = await _json_reply(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ModelCallError(f"cannot reach the model server at {self.base_url}:"
                                 f" {_reason(exc)}") from exc
        rows = body.get("data", body.get("models", [])) if isinstance(body, dict) else []
        ids = [row.get("id") if isinstance(row, dict) else row for row in rows or []]
        return [model for model in ids if isinstance(model, str)][:MAX_MODELS]

    async def chat(self, model: str, messages: list[dict[str, Any]],
                   tools: list[dict[str, Any]] | None, turn: ModelTurn) -> AsyncIterator[Delta]:
        """Yield the reply's text and reasoning deltas; ``turn`` holds the whole reply
        (tool calls, usage, who served it) once the iteration ends."""
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": True,
                                "stream_options": {"include_usage": True}}
        if tools:
            body["tools"] = tools
        try:
            async with self._session.post(f"{self.base_url}/chat/completions", json=body,
                                          headers=self._headers,
                                          timeout=self._timeout) as response:
                turn.served_by = _served_by(response.headers)
                if response.status >= 400 or "event-stream" not in response.content_type:
                    _read_message(await _json_reply(response), turn)
                    for kind, content in (("reasoning", turn.reasoning), ("text", turn.text)):
                        if content:
                            yield Delta(kind, content)
                    return
                calls = _CallAssembler()
                async for chunk in _sse_chunks(response):
                    for delta in _read_chunk(chunk, turn, calls):
                        yield delta
                turn.tool_calls = calls.finish()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ModelCallError(f"the model server failed: {_reason(exc)}") from exc


def _served_by(headers: Any) -> str | None:
    for name in SERVED_BY_HEADERS:
        value = headers.get(name)
        if value:
            return unquote(value)[:200]
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


async def _json_reply(response: aiohttp.ClientResponse) -> Any:
    raw = await response.content.read(MAX_REPLY_BYTES + 1)
    if len(raw) > MAX_REPLY_BYTES:
        raise ModelCallError("the model server's reply is too large")
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if response.status >= 400:
        message = _error_text(body) or raw[:200].decode("utf-8", "replace") or "no details"
        raise ModelCallError(f"the model server answered {response.status}: {message}")
    if body is None:
        raise ModelCallError("the model server's reply is not JSON")
    return body


def _error_text(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    return str(error)[:500] if error else None


def _read_message(body: Any, turn: ModelTurn) -> None:
    """A whole (non-streamed) chat completion into ``turn``."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelCallError("the model server's reply has no choices")
    message = choices[0].get("message") or {}
    turn.finish_reason = choices[0].get("finish_reason")
    turn.text = _string(message.get("content"))
    turn.reasoning = _string(message.get("reasoning_content") or message.get("reasoning"))
    calls = _CallAssembler()
    for index, call in enumerate(message.get("tool_calls") or []):
        calls.add({**call, "index": index} if isinstance(call, dict) else {})
    turn.tool_calls = calls.finish()
    _read_usage(body, turn)


def _read_chunk(chunk: Any, turn: ModelTurn, calls: _CallAssembler) -> list[Delta]:
    if not isinstance(chunk, dict):
        return []
    if isinstance(chunk.get("error"), dict | str):
        raise ModelCallError(f"the model server failed mid-reply: {_error_text(chunk)}")
    _read_usage(chunk, turn)
    found: list[Delta] = []
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        turn.finish_reason = choice.get("finish_reason") or turn.finish_reason
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            continue
        thought = _string(delta.get("reasoning_content") or delta.get("reasoning"))
        if thought:
            turn.reasoning += thought
            found.append(Delta("reasoning", thought))
        content = _string(delta.get("content"))
        if content:
            turn.text += content
            found.append(Delta("text", content))
        for call in delta.get("tool_calls") or []:
            calls.add(call if isinstance(call, dict) else {})
    return found


def _read_usage(body: dict[str, Any], turn: ModelTurn) -> None:
    usage = body.get("usage")
    if isinstance(usage, dict):
        turn.input_tokens = _count(usage.get("prompt_tokens"))
        turn.output_tokens = _count(usage.get("completion_tokens"))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


class _CallAssembler:
    """Tool-call deltas by ``index`` -> whole calls, bounded in count and size."""

    def __init__(self) -> None:
        self._calls: dict[int, ToolCall] = {}
        self._size = 0

    def add(self, delta: dict[str, Any]) -> None:
        index = delta.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            return
        call = self._calls.get(index)
        if call is None:
            if len(self._calls) >= MAX_TOOL_CALLS:
                raise ModelCallError(f"the model asked for more than {MAX_TOOL_CALLS} tool"
                                     " calls at once")
            call = self._calls[index] = ToolCall("", "", "")
        call.id = call.id or _string(delta.get("id"))
        function = delta.get("function") or {}
        if isinstance(function, dict):
            call.name = call.name or _string(function.get("name"))
            piece = _string(function.get("arguments"))
            if not piece and isinstance(function.get("arguments"), dict):
                piece = json.dumps(function["arguments"])  # Some servers send an object.
            self._size += len(piece)
            if self._size > MAX_ARGUMENT_BYTES:
                raise ModelCallError("the model's tool-call arguments are too large")
            call.arguments += piece

    def finish(self) -> list[ToolCall]:
        calls = [self._calls[index] for index in sorted(self._calls)]
        for number, call in enumerate(calls):
            call.id = call.id or f"call_{number}"
        return [call for call in calls if call.name]


async def _sse_chunks(response: aiohttp.ClientResponse) -> AsyncIterator[Any]:
    """The JSON of each ``data:`` line until ``[DONE]`` or the end, bounded in size."""
    total = 0
    while True:
        try:
            line = await response.content.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            line = exc.partial
        except ValueError as exc:  # Longer than the reader's limit.
            raise ModelCallError("the model server sent a line that is too long") from exc
        if not line:
            return
        total += len(line)
        if total > MAX_REPLY_BYTES or len(line) > MAX_LINE_BYTES:
            raise ModelCallError("the model server's reply is too large")
        text = line.strip()
        if not text.startswith(b"data:"):
            continue
        data = text[5:].strip()
        if data == b"[DONE]":
            return
        try:
            yield json.loads(data)
        except ValueError:
            continue
