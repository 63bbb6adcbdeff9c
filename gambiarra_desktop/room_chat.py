"""A conversation with a room, as LM Studio's chat keeps one: the turns so far are sent as
``messages`` each time, and each streamed reply is measured (who answered, time to first
token, tokens per second). No Qt here, so the playground's logic is testable headless.

The one streaming chat client of a room: a conversation needs the reply's headers (who
answered), its timing and usage, and an ``X-Request-Id`` so the room's queue events name
our request. Its replies are read the hub client's way (capped, and a body that is not the
hub's said as such).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError

from gambiarra_desktop.hub_client import (
    HubApiError,
    HubUnreachableError,
    error_message,
    json_or_not_ours,
    text_capped,
)
from gambiarra_desktop.plain_errors import HUB, not_ours_text, unreachable_text
from gambiarra_desktop.protocol import (
    MODEL_HEADER,
    PARTICIPANT_HEADER,
    QUEUE_MS_HEADER,
    REQUEST_ID_HEADER,
)

MAX_TURNS = 200
"""Older turns are dropped past this, so a long session cannot grow the request forever."""


def new_request_id() -> str:
    """Short and ``[A-Za-z0-9-]`` only, as the hub accepts; random, so it names no one."""
    return f"pg-{uuid.uuid4().hex[:16]}"


@dataclass
class ReplyStats:
    """How one reply went, measured on this side of the wire."""

    participant_id: str = ""
    model: str = ""
    queue_ms: float = 0.0
    first_token_s: float | None = None
    total_s: float = 0.0
    tokens: int = 0
    """Completion tokens: the server's ``usage`` when it reports one, else content pieces."""

    @property
    def tokens_per_second(self) -> float:
        """Generation speed: tokens over the time after the first one (what LM Studio
        shows), or over the whole reply when it came in one piece."""
        generating = self.total_s - (self.first_token_s or 0.0)
        span = generating if generating > 0.05 else self.total_s
        return self.tokens / span if span > 0 else 0.0

    def numbers_text(self) -> str:
        """"First token after 0.12 s · 45.3 tokens/s · 16 tokens"."""
        parts = []
        if self.first_token_s is not None:
            parts.append(f"First token after {self.first_token_s:.2f} s")
        parts.append(f"{self.tokens_per_second:.1f} tokens/s")
        parts.append(f"{self.tokens} tokens")
        if self.queue_ms >= 1:
            parts.append(f"waited {self.queue_ms / 1000:.1f} s for a free model")
        return " · ".join(parts)


@dataclass
class Conversation:
    """The turns so far, as OpenAI ``messages``."""

    messages: list[dict[str, str]] = field(default_factory=list)

    def add(self, role: str, content: str) -> None:
        self.messages.append({"role": role, "content": content})
        del self.messages[:-MAX_TURNS]

    def clear(self) -> None:
        self.messages.clear()


async def stream_reply(
    session: aiohttp.ClientSession, hub_url: str, code: str, password: str, model: str,
    messages: list[dict[str, str]], request_id: str, stats: ReplyStats,
) -> AsyncIterator[str]:
    """The reply's text pieces as they arrive; ``stats`` is filled in as they do (who
    answered as soon as the headers come, the numbers when the stream ends)."""
    payload: dict[str, Any] = {"model": model, "stream": True, "messages": messages,
                               "stream_options": {"include_usage": True}}
    headers = {REQUEST_ID_HEADER: request_id}
    if password:
        headers["Authorization"] = f"Bearer {password}"
    url = f"{hub_url.rstrip('/')}/rooms/{code}/v1/chat/completions"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
    started = time.monotonic()
    pieces = 0
    reported: int | None = None
    try:
        async with session.post(url, json=payload, timeout=timeout,
                                headers=headers) as response:
            if response.status >= 400:
                text = await text_capped(response, url)
                raise HubApiError(response.status, error_message(response.status, text, url))
            stats.participant_id = unquote(response.headers.get(PARTICIPANT_HEADER, ""))
            stats.model = response.headers.get(MODEL_HEADER, "")
            try:
                stats.queue_ms = float(response.headers.get(QUEUE_MS_HEADER, "0"))
            except ValueError:
                stats.queue_ms = 0.0
            started += max(0.0, stats.queue_ms) / 1000  # Waiting is not the model's time.
            async for raw in response.content:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                chunk = json_or_not_ours(line[5:], url)  # A proxy's page: no parser text.
                if not isinstance(chunk, dict):
                    continue
                if "error" in chunk:
                    raise HubApiError(502, error_message(502, json.dumps(chunk), url))
                usage = chunk.get("usage")
                if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                    reported = usage["completion_tokens"]
                stats.model = stats.model or str(chunk.get("model") or "")
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") if isinstance(choice, dict) else None
                    piece = delta.get("content") if isinstance(delta, dict) else None
                    if isinstance(piece, str) and piece:
                        if stats.first_token_s is None:
                            stats.first_token_s = time.monotonic() - started
                        pieces += 1
                        yield piece
    except (aiohttp.ClientError, TimeoutError) as exc:
        # The plain sentence (plain_errors.py), never the library's text.
        raise HubUnreachableError(unreachable_text(HUB, url, exc)) from exc
    except HttpProcessingError:  # A line longer than aiohttp's buffer: no hub sends one.
        raise HubApiError(502, not_ours_text(HUB, url, 200)) from None
    finally:
        stats.total_s = time.monotonic() - started
        stats.tokens = reported if reported is not None else pieces
