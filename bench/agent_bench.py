"""What the agent API adds on top of talking to the model server directly, and what running
a tool through it costs against starting the same command directly.

Everything on loopback, in one process (the scripted fake model is a real aiohttp server):

1. A text turn: the model streams a 200-character answer in 30 chunks. Direct: time to the
   first content chunk and to ``[DONE]`` of ``POST /v1/chat/completions``. Through the
   agent: time to the first ``text`` event and to the end of ``POST /chat``'s SSE stream
   (guard, token, session, orchestrator, a second model call never made). Requests are
   interleaved one by one so machine noise hits both alike.
2. A tool turn: the model asks for ``bash true`` (allowed by a stored "always" rule, so no
   person is waited for), then answers. Through the agent: from the ``tool_call`` event to
   its ``tool_result`` (rule check, audit row written before and after, the runner's new
   session, group kill and scrubbed environment). Direct: ``/bin/sh -c true`` started with
   ``asyncio.create_subprocess_exec`` and awaited.

Run: ``.venv/bin/python bench/agent_bench.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gambiarra_desktop.agent.config import AgentConfig  # noqa: E402
from gambiarra_desktop.agent.permissions import Rule  # noqa: E402
from gambiarra_desktop.agent.server import AgentServer  # noqa: E402
from gambiarra_desktop.devtools.scripted_model import (  # noqa: E402
    ScriptedCall,
    ScriptedModel,
    ScriptedReply,
)

ANSWER = "".join(f"word{n} " for n in range(34))[:200]
MESSAGES = [{"role": "user", "content": "hi"}]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def direct_turn(http: aiohttp.ClientSession, url: str) -> tuple[float, float]:
    started = time.perf_counter()
    first = 0.0
    async with http.post(f"{url}/chat/completions", json={
            "model": "scripted", "messages": MESSAGES, "stream": True}) as response:
        async for line in response.content:
            if not first and b'"content"' in line:
                first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def agent_turn(http: aiohttp.ClientSession, agent: AgentServer,
                     headers: dict[str, str]) -> tuple[float, float, float]:
    """(first text, end of stream, tool_call -> tool_result or 0)."""
    started = time.perf_counter()
    first = call_at = tool = 0.0
    async with http.post(f"{agent.url}/chat", headers=headers, json={
            "model": "scripted", "messages": MESSAGES}) as response:
        async for line in response.content:
            if not first and line.startswith(b"event: text"):
                first = time.perf_counter() - started
            elif line.startswith(b"event: tool_call"):
                call_at = time.perf_counter()
            elif line.startswith(b"event: tool_result"):
                tool = time.perf_counter() - call_at
    return first, time.perf_counter() - started, tool


async def direct_command() -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec("/bin/sh", "-c", "true")
    await process.wait()
    return time.perf_counter() - started


def row(name: str, values: list[float], base: list[float] | None = None) -> str:
    p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
    text = f"  {name:<34} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms"
    if base:
        base50 = percentile(base, 0.5) * 1000
        text += f"   {p50 / base50:5.2f}x direct   +{p50 - base50:6.2f} ms"
    return text


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "work").mkdir()
        model = ScriptedModel([], split_every=7)
        await model.start()
        config = AgentConfig(workspace=root / "work", data_dir=root / "data",
                             base_url=model.url)
        agent = AgentServer(config, "127.0.0.1", 0)
        await agent.start()
        await agent.service.rules.add((root / "work").resolve(),
                                      Rule("bash", ("true",)))
        headers = {"Authorization": f"Bearer {agent.token}"}
        text = ScriptedReply(text=ANSWER)
        direct_first: list[float] = []
        direct_total: list[float] = []
        agent_first: list[float] = []
        agent_total: list[float] = []
        tool_agent: list[float] = []
        tool_direct: list[float] = []
        async with aiohttp.ClientSession() as http:
            for index in range(rounds + 10):  # The first 10 warm up and are dropped.
                model.replies[:] = [text, text]
                first, total = await direct_turn(http, model.url)
                agent_values = await agent_turn(http, agent, headers)
                model.replies[:] = [ScriptedReply(calls=(ScriptedCall("bash",
                                                                      {"command": "true"}),)),
                                    ScriptedReply(text="done")]
                _, _, tool = await agent_turn(http, agent, headers)
                command = await direct_command()
                if index >= 10:
                    direct_first.append(first)
                    direct_total.append(total)
                    agent_first.append(agent_values[0])
                    agent_total.append(agent_values[1])
                    tool_agent.append(tool)
                    tool_direct.append(command)
        await agent.stop()
        await model.stop()
    print(f"agent API overhead, {rounds} interleaved rounds (loopback, one process)")
    print("text turn (200 characters in 30 chunks):")
    print(row("direct: first content chunk", direct_first))
    print(row("agent: first text event", agent_first, direct_first))
    print(row("direct: whole stream", direct_total))
    print(row("agent: whole stream", agent_total, direct_total))
    print("tool call allowed by a rule (bash true):")
    print(row("direct: /bin/sh -c true", tool_direct))
    print(row("agent: tool_call -> tool_result", tool_agent, tool_direct))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    asyncio.run(main(parser.parse_args().rounds))
