"""A real agent API on 127.0.0.1 (port 0) whose models are a scripted fake model server,
and a client that reads its SSE stream, for the agent tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from gambiarra_desktop.agent.config import AgentConfig
from gambiarra_desktop.agent.server import AgentServer
from gambiarra_desktop.devtools.scripted_model import ScriptedModel, ScriptedReply
from tests.sse_client import SseReader

Event = tuple[str, Any]


@dataclass
class AgentKit:
    server: AgentServer
    model: ScriptedModel
    workspace: Path
    http: aiohttp.ClientSession
    open_responses: list[aiohttp.ClientResponse] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.server.token}"}

    async def chat(self, body: dict[str, Any]) -> SseReader:
        response = await self.http.post(f"{self.server.url}/chat", json=body,
                                        headers=self.headers)
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        self.open_responses.append(response)
        return SseReader(response)

    async def relay(self, session_id: str, relay_id: str,
                    answer: dict[str, Any]) -> tuple[int, Any]:
        async with self.http.post(f"{self.server.url}/chat/relay/{relay_id}",
                                  json={"sessionId": session_id, "response": answer},
                                  headers=self.headers) as response:
            return response.status, await response.json()


def ask(text: str = "do it") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def until(reader: SseReader, name: str, limit: int = 400) -> list[Event]:
    """Events up to and including the first ``name`` (bounded)."""
    seen: list[Event] = []
    for _ in range(limit):
        event = await reader.next_event(within_s=10)
        seen.append(event)
        if event[0] == name:
            return seen
    raise AssertionError(f"no {name} in {limit} events: {seen}")


async def rest(reader: SseReader, limit: int = 400) -> list[Event]:
    """Every event until the stream ends."""
    seen: list[Event] = []
    for _ in range(limit):
        try:
            seen.append(await reader.next_event(within_s=10))
        except EOFError:
            return seen
    raise AssertionError(f"the stream did not end within {limit} events")


def process_gone(pid: int) -> bool:
    """Exited (a zombie waiting for its parent counts: it runs nothing)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def joined(events: list[Event], kind: str) -> str:
    return "".join(data["content"] for name, data in events if name == kind)


AgentFactory = Callable[..., Awaitable[AgentKit]]


@pytest.fixture
async def make_agent(tmp_path: Path) -> AsyncIterator[AgentFactory]:
    started: list[AgentKit] = []

    async def start(replies: list[ScriptedReply], **config: Any) -> AgentKit:
        model = ScriptedModel(list(replies))
        await model.start()
        workspace = tmp_path / f"workspace{len(started)}"
        workspace.mkdir()
        settings = AgentConfig(workspace=workspace, data_dir=tmp_path / "data",
                               base_url=model.url, **config)
        server = AgentServer(settings, "127.0.0.1", 0)
        await server.start()
        kit = AgentKit(server, model, workspace.resolve(), aiohttp.ClientSession())
        started.append(kit)
        return kit

    yield start
    for kit in started:
        for response in kit.open_responses:
            response.close()
        await kit.http.close()
        await kit.server.stop()
        await kit.model.stop()
