"""The agent's text-only path against a real model server: llama.cpp's own HTTP server (the
xllamacpp wheel, a tiny random-weight model) shared in a room of a real hub, the agent's
base URL pointing at the room's ``/v1``. Real streamed chunks, real usage, the hub's
participant header naming who served the answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.agent.config import AgentConfig
from gambiarra_desktop.agent.server import AgentServer
from tests.conftest import Api, HubFactory
from tests.llama_server import llama_server as start_llama_server
from tests.sse_client import SseReader

pytestmark = pytest.mark.slow
pytest.importorskip("xllamacpp", reason="the llama.cpp server wheel is not installed")
pytest.importorskip("gguf", reason="the gguf writer is not installed")


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # n_predict bounds each answer (random weights rarely pick end-of-sequence); the
    # system prompt and tool schemas need more than the default 512 tokens of context.
    with start_llama_server(tmp_path_factory.mktemp("model"), n_parallel=1, use_jinja=True,
                            n_predict=24, n_ctx=2048) as (url, _model):
        yield url


async def test_a_text_only_answer_streams_through_the_agent(
        make_hub: HubFactory, http: Any, llama_url: str, tmp_path: Path) -> None:
    hub = await make_hub()
    api = Api(http, hub)
    room = await api.create_room("agent room")
    status, _ = await api.join(room["code"], id="llama-box", model="tiny", endpoint=llama_url)
    assert status == 201
    workspace = tmp_path / "work"
    workspace.mkdir()
    config = AgentConfig(workspace=workspace, data_dir=tmp_path / "agent-data",
                         base_url=f"{hub.url}/rooms/{room['code']}/v1")
    async with AgentServer(config, "127.0.0.1", 0) as agent, aiohttp.ClientSession() as client:
        headers = {"Authorization": f"Bearer {agent.token}"}
        async with client.get(f"{agent.url}/models", headers=headers) as response:
            assert "tiny" in (await response.json())["models"]
        async with client.post(f"{agent.url}/chat", headers=headers, json={
                "model": "tiny", "maxIterations": 1, "permissions": {"*": "deny"},
                "messages": [{"role": "user", "content": "hello"}]}) as response:
            assert response.status == 200
            reader = SseReader(response)
            events: list[tuple[str, Any]] = []
            for _ in range(2000):
                try:
                    events.append(await reader.next_event(within_s=60))
                except EOFError:
                    break
    kinds = [name for name, _ in events]
    assert kinds[:2] == ["connected", "harness_start"]
    assert kinds[-1] == "harness_end" and "error" not in kinds
    usages = [data for name, data in events if name == "usage"]
    assert usages and usages[0]["inputTokens"] > 0 and 0 < usages[0]["outputTokens"] <= 24
    texts = [data for name, data in events if name == "text"]
    if kinds.count("tool_call") == 0:  # A random model's text: at least one visible piece.
        assert texts and {data["id"] for data in texts} == {texts[0]["id"]}
    assert agent.service.session_count() == 0
