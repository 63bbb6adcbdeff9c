"""``POST /v1/chat/completions`` at the hub root, as clients see it: the official openai
SDK with ``model="auto"``; who answered in the reply and its headers; escalation when the
L0 model's real server process is killed, answers 500 or answers nothing, and never once
bytes went out; cross-check verdicts from a second model that agrees, disagrees, answers
in prose or answers nonsense, streamed and not."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig, HubServer
from tests.conftest import HubFactory
from tests.gateway_testkit import ADMIN_PASSWORD, ScriptedModel, room_entry, set_config

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
FAKE_TEXT = "".join(f"tok{i} " for i in range(16))  # FakeOpenAIServer's default answer.


@pytest.fixture
async def gw_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return await make_hub()


@pytest.fixture
async def sdk(gw_hub: HubServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{gw_hub.url}/v1", api_key="not-needed",
                                max_retries=0, timeout=20)
    yield client
    await client.close()


async def chat(http: aiohttp.ClientSession, hub: HubServer, **fields: Any
               ) -> tuple[int, str, Any]:
    """(status, body text, headers) of one raw chat request."""
    body = {"model": "auto", "messages": MESSAGES, **fields}
    async with http.post(f"{hub.url}/v1/chat/completions", json=body) as response:
        return response.status, await response.text(), response.headers


def sse_events(text: str) -> list[Any]:
    """The JSON of every ``data:`` line, ``[DONE]`` kept as the string."""
    events: list[Any] = []
    for line in text.splitlines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


# --- the openai SDK at the hub root ---------------------------------------------------------

async def test_the_openai_sdk_lists_the_entries_and_chats_with_auto(
    http: aiohttp.ClientSession, gw_hub: HubServer, sdk: openai.AsyncOpenAI,
) -> None:
    async with FakeOpenAIServer(models=("llama3.2:3b",)) as small:
        await room_entry(http, gw_hub, "small", "L0", "llama3.2:3b", small.url, "alice")
        assert [m.id async for m in sdk.models.list()] == ["small"]

        raw = await sdk.chat.completions.with_raw_response.create(
            model="auto", messages=MESSAGES)  # type: ignore[arg-type]
        completion = raw.parse()
        assert completion.choices[0].message.content == FAKE_TEXT
        assert completion.model == "llama3.2:3b"
        assert raw.headers["X-Gambiarra-Model"] == "small"
        assert raw.headers["X-Gambiarra-Layer"] == "L0"
        assert raw.headers["X-Gambiarra-Participant"] == "alice"

        raw_stream: Any = await sdk.chat.completions.with_raw_response.create(
            model="auto", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        assert raw_stream.headers["X-Gambiarra-Model"] == "small"
        assert raw_stream.headers["X-Gambiarra-Layer"] == "L0"
        assert raw_stream.headers["X-Gambiarra-Participant"] == "alice"
        parts = [chunk.choices[0].delta.content or "" async for chunk in raw_stream.parse()
                 if chunk.choices]
        assert "".join(parts) == FAKE_TEXT
        # The extras are the gateway's: the model server never sees them.
        assert all("layer" not in r and "crossCheck" not in r for r in small.requests)
        assert small.requests[-1]["model"] == "llama3.2:3b"


async def test_an_entry_can_be_asked_for_by_id_and_errors_have_the_seed_form(
    http: aiohttp.ClientSession, gw_hub: HubServer, sdk: openai.AsyncOpenAI,
) -> None:
    async with FakeOpenAIServer(models=("llama3.2:3b",)) as small, \
            FakeOpenAIServer(models=("qwen2.5:14b",)) as big:
        await room_entry(http, gw_hub, "small", "L0", "llama3.2:3b", small.url)
        await room_entry(http, gw_hub, "big", "L1", "qwen2.5:14b", big.url)
        completion = await sdk.chat.completions.create(model="big", messages=MESSAGES)  # type: ignore[arg-type]
        assert completion.model == "qwen2.5:14b" and len(small.requests) == 0
        status, text, headers = await chat(http, gw_hub, layer="L1")
        assert status == 200 and headers["X-Gambiarra-Layer"] == "L1", text
        assert len(small.requests) == 0  # The request's layer is auto's start.
    status, text, _ = await chat(http, gw_hub, model="nope")
    assert (status, json.loads(text)["error"]) == (404, "Model not found")
    for field, value in (("layer", "L7"), ("crossCheck", "yes"), ("model", 3)):
        status, text, _ = await chat(http, gw_hub, **{field: value})
        assert (status, json.loads(text)["error"]) == (400, f"Invalid field: {field}")


async def test_nothing_usable_is_503_no_model_available(
    http: aiohttp.ClientSession, gw_hub: HubServer,
) -> None:
    status, text, _ = await chat(http, gw_hub)
    body = json.loads(text)
    assert status == 503 and body["error"] == "No model available", text
    assert isinstance(body["details"], str)


# --- escalation ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _model_process(model: str) -> tuple[asyncio.subprocess.Process, str]:
    """``fake_openai`` as a real separate process, once it listens."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gambiarra_desktop.devtools.fake_openai", "--host", "127.0.0.1",
        "--port", str(port), "--model", model, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 20)
    assert b"Fake OpenAI-compatible server on" in line, line
    return process, f"http://127.0.0.1:{port}"


async def test_killing_the_l0_model_process_escalates_to_l1(
    http: aiohttp.ClientSession, gw_hub: HubServer, sdk: openai.AsyncOpenAI,
) -> None:
    process, url = await _model_process("llama3.2:1b")
    try:
        async with FakeOpenAIServer(models=("qwen2.5:7b",)) as l1:
            await room_entry(http, gw_hub, "tiny", "L0", "llama3.2:1b", url, "laptop")
            await room_entry(http, gw_hub, "mid", "L1", "qwen2.5:7b", l1.url, "desktop")
            raw = await sdk.chat.completions.with_raw_response.create(
                model="auto", messages=MESSAGES)  # type: ignore[arg-type]
            assert raw.headers["X-Gambiarra-Layer"] == "L0" and len(l1.requests) == 0

            process.kill()  # SIGKILL: no goodbye, the port just stops answering.
            await asyncio.wait_for(process.wait(), 10)
            for stream in (False, True, False, True):
                answer: Any = await sdk.chat.completions.with_raw_response.create(
                    model="auto", messages=MESSAGES, stream=stream)  # type: ignore[arg-type]
                assert answer.headers["X-Gambiarra-Model"] == "mid"
                assert answer.headers["X-Gambiarra-Layer"] == "L1"
                assert answer.headers["X-Gambiarra-Participant"] == "desktop"
                if stream:
                    parts = [c.choices[0].delta.content or "" async for c in answer.parse()
                             if c.choices]
                    assert "".join(parts) == FAKE_TEXT
                else:
                    assert answer.parse().model == "qwen2.5:7b"
            assert len(l1.requests) == 4
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_5xx_before_the_first_byte_escalates(
    http: aiohttp.ClientSession, gw_hub: HubServer, stream: bool,
) -> None:
    async with FakeOpenAIServer(models=("a",)) as l0, FakeOpenAIServer(models=("b",)) as l1:
        l0.behaviour.error_status = 500
        await room_entry(http, gw_hub, "l0", "L0", "a", l0.url)
        await room_entry(http, gw_hub, "l1", "L1", "b", l1.url)
        status, text, headers = await chat(http, gw_hub, stream=stream)
        assert status == 200, text
        assert headers["X-Gambiarra-Model"] == "l1" and headers["X-Gambiarra-Layer"] == "L1"
        assert "model exploded" not in text and "tok0" in text
        assert len(l0.requests) >= 1 and len(l1.requests) == 1


async def test_a_model_that_never_starts_answering_times_out_and_escalates(
    http: aiohttp.ClientSession, make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    hub = await make_hub(HubConfig(upstream_first_byte_timeout_s=1.0))
    async with FakeOpenAIServer(models=("a",)) as l0, FakeOpenAIServer(models=("b",)) as l1:
        l0.behaviour.first_token_delay_s = 30
        await room_entry(http, hub, "l0", "L0", "a", l0.url)
        await room_entry(http, hub, "l1", "L1", "b", l1.url)
        started = time.monotonic()
        status, text, headers = await chat(http, hub)
        assert status == 200 and headers["X-Gambiarra-Layer"] == "L1", text
        assert time.monotonic() - started < 10


async def test_an_empty_answer_escalates(http: aiohttp.ClientSession,
                                         gw_hub: HubServer) -> None:
    async with ScriptedModel("   ") as l0, ScriptedModel("Paris.") as l1:
        await room_entry(http, gw_hub, "l0", "L0", "a", l0.url)
        await room_entry(http, gw_hub, "l1", "L1", "b", l1.url)
        status, text, headers = await chat(http, gw_hub)
        assert status == 200 and headers["X-Gambiarra-Layer"] == "L1", text
        assert json.loads(text)["choices"][0]["message"]["content"] == "Paris."
        assert len(l0.requests) == 1


async def test_with_escalation_off_a_failure_is_the_answer(
    http: aiohttp.ClientSession, gw_hub: HubServer,
) -> None:
    async with FakeOpenAIServer(models=("a",)) as l0, FakeOpenAIServer(models=("b",)) as l1:
        l0.behaviour.error_status = 500
        await room_entry(http, gw_hub, "l0", "L0", "a", l0.url)
        await room_entry(http, gw_hub, "l1", "L1", "b", l1.url)
        await set_config(http, gw_hub, enableAutoEscalate=False)
        status, text, _ = await chat(http, gw_hub)
        assert status >= 500, text
        assert "error" in json.loads(text)
        assert len(l1.requests) == 0


async def test_escalation_stops_at_max_escalation_layer(
    http: aiohttp.ClientSession, gw_hub: HubServer,
) -> None:
    async with FakeOpenAIServer(models=("a",)) as l0, FakeOpenAIServer(models=("b",)) as l1:
        l0.behaviour.error_status = 503
        await room_entry(http, gw_hub, "l0", "L0", "a", l0.url)
        await room_entry(http, gw_hub, "l1", "L1", "b", l1.url)
        await set_config(http, gw_hub, maxEscalationLayer="L0")
        status, _text, _ = await chat(http, gw_hub)
        assert status >= 500 and len(l1.requests) == 0


async def test_a_stream_broken_after_bytes_went_out_ends_with_an_error_chunk(
    http: aiohttp.ClientSession, gw_hub: HubServer,
) -> None:
    async with FakeOpenAIServer(models=("a",)) as l0, FakeOpenAIServer(models=("b",)) as l1:
        l0.behaviour.break_stream_after = 3
        await room_entry(http, gw_hub, "l0", "L0", "a", l0.url)
        await room_entry(http, gw_hub, "l1", "L1", "b", l1.url)
        status, text, headers = await chat(http, gw_hub, stream=True)
        assert status == 200 and headers["X-Gambiarra-Layer"] == "L0"
        events = sse_events(text)
        content = "".join(e["choices"][0]["delta"].get("content") or "" for e in events
                          if isinstance(e, dict) and e.get("choices"))
        assert content == "tok0 tok1 tok2 "
        errors = [e for e in events if isinstance(e, dict) and "error" in e]
        assert len(errors) == 1 and errors[0]["error"]["message"]
        assert len(l1.requests) == 0  # Bytes were out: no second model, no mixed answer.


# --- cross-check --------------------------------------------------------------------------

class CrossCheckRig:
    def __init__(self, small: ScriptedModel, big: ScriptedModel,
                 reviewer: ScriptedModel) -> None:
        self.small, self.big, self.reviewer = small, big, reviewer


@pytest.fixture
async def rig(http: aiohttp.ClientSession, gw_hub: HubServer) -> AsyncIterator[CrossCheckRig]:
    """L0 answers "Lyon." (llama), L1 answers "Paris." (llama too), and a qwen at L2 is the
    reviewer of another family; each on its own participant."""
    async with ScriptedModel("Lyon.") as small, ScriptedModel("Paris.") as big, \
            ScriptedModel() as reviewer:
        await room_entry(http, gw_hub, "small", "L0", "llama3.2:3b", small.url, "p-small")
        await room_entry(http, gw_hub, "big", "L1", "llama3.1:8b", big.url, "p-big")
        await room_entry(http, gw_hub, "judge", "L2", "qwen2.5:32b", reviewer.url, "p-judge")
        yield CrossCheckRig(small, big, reviewer)


def _review_asked_about(rig: CrossCheckRig, answer: str) -> None:
    assert len(rig.reviewer.requests) == 1
    review = rig.reviewer.requests[0]
    assert review["model"] == "qwen2.5:32b" and review["stream"] is False
    assert review["messages"][0]["role"] == "system"
    assert "verdict" in review["messages"][0]["content"]
    assert answer in review["messages"][1]["content"]
    assert "capital of France" in review["messages"][1]["content"]


async def test_a_reviewer_that_agrees(http: aiohttp.ClientSession, gw_hub: HubServer,
                                      rig: CrossCheckRig) -> None:
    rig.reviewer.reply = '{"verdict": "agree", "reason": "Lyon is fine by me"}'
    status, text, headers = await chat(http, gw_hub, crossCheck=True)
    assert status == 200, text
    body = json.loads(text)
    assert body["crossCheck"] == {"reviewer": "judge", "verdict": "agree",
                                  "reason": "Lyon is fine by me"}
    assert body["choices"][0]["message"]["content"] == "Lyon."
    assert body["model"] == "llama3.2:3b"
    assert headers["X-Gambiarra-Cross-Check"] == "agree"
    assert headers["X-Gambiarra-Model"] == "small" and headers["X-Gambiarra-Layer"] == "L0"
    assert headers["X-Gambiarra-Participant"] == "p-small"
    _review_asked_about(rig, "Lyon.")
    assert len(rig.big.requests) == 0


@pytest.mark.parametrize("verdict", [
    '{"verdict": "disagree", "reason": "the capital is Paris"}',
    "I disagree, the capital is Paris",
])
async def test_a_reviewer_that_disagrees_gets_it_answered_one_layer_up(
    http: aiohttp.ClientSession, gw_hub: HubServer, rig: CrossCheckRig, verdict: str,
) -> None:
    rig.reviewer.reply = verdict
    status, text, headers = await chat(http, gw_hub, crossCheck=True)
    assert status == 200, text
    body = json.loads(text)
    check = body["crossCheck"]
    assert (check["reviewer"], check["verdict"]) == ("judge", "disagree")
    assert "the capital is Paris" in check["reason"]
    assert check["answeredAgainBy"] == "big"
    assert body["choices"][0]["message"]["content"] == "Paris."
    assert body["model"] == "llama3.1:8b"
    assert headers["X-Gambiarra-Model"] == "big" and headers["X-Gambiarra-Layer"] == "L1"
    assert headers["X-Gambiarra-Participant"] == "p-big"
    assert headers["X-Gambiarra-Cross-Check"] == "disagree"
    _review_asked_about(rig, "Lyon.")
    assert len(rig.small.requests) == len(rig.big.requests) == 1


async def test_free_text_disagreement_names_the_reason(
    http: aiohttp.ClientSession, gw_hub: HubServer, rig: CrossCheckRig,
) -> None:
    await set_config(http, gw_hub, enableAutoEscalate=False)  # Verdict only, no second try.
    rig.reviewer.reply = "I disagree, the capital is Lyon"
    status, text, _ = await chat(http, gw_hub, crossCheck=True)
    body = json.loads(text)
    assert status == 200 and body["crossCheck"] == {
        "reviewer": "judge", "verdict": "disagree", "reason": "I disagree, the capital is Lyon"}
    assert "answeredAgainBy" not in body["crossCheck"] and len(rig.big.requests) == 0


async def test_an_unreadable_review_is_unclear(
    http: aiohttp.ClientSession, gw_hub: HubServer, rig: CrossCheckRig,
) -> None:
    rig.reviewer.reply = "blorp fnord 42"
    status, text, headers = await chat(http, gw_hub, crossCheck=True)
    body = json.loads(text)
    assert status == 200 and body["crossCheck"]["verdict"] == "unclear"
    assert headers["X-Gambiarra-Cross-Check"] == "unclear"
    assert body["choices"][0]["message"]["content"] == "Lyon." and len(rig.big.requests) == 0


async def test_a_streamed_cross_checked_answer_carries_the_verdict_in_its_last_chunk(
    http: aiohttp.ClientSession, gw_hub: HubServer, rig: CrossCheckRig,
) -> None:
    rig.reviewer.reply = '{"verdict": "agree", "reason": "ok"}'
    status, text, headers = await chat(http, gw_hub, crossCheck=True, stream=True)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    assert headers["X-Gambiarra-Cross-Check"] == "agree"
    events = sse_events(text)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events if isinstance(e, dict)]
    assert all(e["object"] == "chat.completion.chunk" for e in chunks)
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in chunks) == "Lyon."
    assert chunks[-1]["crossCheck"] == {"reviewer": "judge", "verdict": "agree", "reason": "ok"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("crossCheck" not in e for e in chunks[:-1])
    assert rig.small.requests[0].get("stream") is not True  # Asked whole, then replayed.


async def test_cross_check_switched_off_answers_without_a_review(
    http: aiohttp.ClientSession, gw_hub: HubServer, rig: CrossCheckRig,
) -> None:
    await set_config(http, gw_hub, enableCrossCheck=False)
    status, text, headers = await chat(http, gw_hub, crossCheck=True)
    assert status == 200 and "crossCheck" not in json.loads(text)
    assert "X-Gambiarra-Cross-Check" not in headers and len(rig.reviewer.requests) == 0
