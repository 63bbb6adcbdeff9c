"""End to end with a real model server: llama.cpp's own HTTP server (the xllamacpp wheel)
running a tiny random-weight LLaMA written on the spot, behind the hub, driven by the
openai SDK. It proves the hub survives the server's real keep-alive behaviour."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest

from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.keys import PROXY
from tests.conftest import Api, HubFactory
from tests.llama_server import llama_server as start_llama_server

pytestmark = pytest.mark.slow
xllamacpp = pytest.importorskip("xllamacpp", reason="the llama.cpp server wheel is not installed")
pytest.importorskip("gguf", reason="the gguf writer is not installed")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_llama_server(tmp_path_factory.mktemp("model"), n_parallel=1, use_jinja=True,
                            endpoint_slots=True, verbosity=1) as (url, _model):
        yield url


@pytest.fixture
async def room_client(
    make_hub: HubFactory, http: Any, llama_server: str
) -> AsyncIterator[tuple[HubServer, openai.AsyncOpenAI]]:
    hub = await make_hub()
    api = Api(http, hub)
    room = await api.create_room("llama")
    status, _ = await api.join(room["code"], id="llama", model="tiny", endpoint=llama_server)
    assert status == 201
    client = openai.AsyncOpenAI(base_url=f"{hub.url}/rooms/{room['code']}/v1", api_key="x",
                                max_retries=0, timeout=60)
    yield hub, client
    await client.close()


MESSAGES: Any = [{"role": "user", "content": "hello world"}]
# Random weights pick any token. Ban end-of-sequence (lengths must be exact) and every token
# that shows no text on its own: <unk>, <s>, NUL and the bytes 0x80-0xFF, which llama.cpp
# holds back as incomplete UTF-8. Six such tokens in a row once made a "reply" with no text.
BYTE_TOKEN_BASE = 3  # tests/tiny_gguf.py: <unk>, <s>, </s>, then <0x00> … <0xFF>.
NO_EOS: Any = {str(token): -100 for token in (
    0, 1, 2, BYTE_TOKEN_BASE, *range(BYTE_TOKEN_BASE + 0x80, BYTE_TOKEN_BASE + 0x100))}


async def test_streamed_and_plain_replies_alternate_through_the_hub(
    room_client: tuple[HubServer, openai.AsyncOpenAI],
) -> None:
    hub, client = room_client
    for _ in range(4):
        stream = await client.chat.completions.create(
            model="tiny", messages=MESSAGES, max_tokens=6, stream=True, logit_bias=NO_EOS)
        finish = None
        pieces = 0
        async for chunk in stream:
            if chunk.choices:
                pieces += bool(chunk.choices[0].delta.content)
                finish = chunk.choices[0].finish_reason or finish
        assert finish == "length" and pieces >= 1
        reply = await client.chat.completions.create(model="*", messages=MESSAGES, max_tokens=6,
                                                     logit_bias=NO_EOS)
        assert reply.choices[0].finish_reason == "length"
        assert reply.usage is not None and reply.usage.completion_tokens == 6
    # llama.cpp closes a connection after each streamed reply while saying keep-alive; every
    # plain request after a stream found its pooled connection dead and was retried.
    print(f"stale connections retried: {hub.app[PROXY].pool.stale_retries}")


async def test_client_that_leaves_frees_the_model_server(
    room_client: tuple[HubServer, openai.AsyncOpenAI], llama_server: str
) -> None:
    _, client = room_client
    stream = await client.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=400, stream=True, logit_bias=NO_EOS)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    await stream.close()

    def busy_slots() -> int:
        with urllib.request.urlopen(llama_server + "/slots", timeout=5) as response:  # noqa: S310
            return sum(1 for slot in json.loads(response.read()) if slot.get("is_processing"))

    deadline = time.monotonic() + 10
    while await asyncio.to_thread(busy_slots):
        assert time.monotonic() < deadline, "llama.cpp kept generating for a client that left"
        await asyncio.sleep(0.05)
    # With one slot, the next request is served at once rather than after 400 tokens.
    reply = await client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=4,
                                                 logit_bias=NO_EOS)
    assert reply.choices[0].finish_reason == "length"


async def test_pool_survives_llamacpp_closing_kept_alive_connections(llama_server: str) -> None:
    """Back to back, as a busy hub sends them: after each streamed reply the server closes a
    connection it announced as keep-alive, and the next request on it must be retried."""
    from gambiarra_desktop.hub.proxy.upstream_client import Target, UpstreamPool

    pool = UpstreamPool(connect_timeout_s=5)
    opened = 0
    connect = pool._connect

    async def counting_connect(target: Target, on_hub_machine: bool) -> Any:
        nonlocal opened
        opened += 1
        return await connect(target, on_hub_machine)

    pool._connect = counting_connect  # type: ignore[method-assign]
    target = Target.parse(llama_server + "/v1/chat/completions")
    try:
        for stream in (True, False, True, True, False):
            body = json.dumps({"model": "tiny", "messages": MESSAGES, "max_tokens": 3,
                               "stream": stream, "logit_bias": NO_EOS}).encode()
            # The server is on this machine's loopback, as a local participant's would be.
            response = await pool.post(target, body, 30, on_hub_machine=True)
            data = await response.read(30)
            assert response.status == 200, data
            assert response._connection.keep_alive, "the server announces keep-alive"
            response.release()
    finally:
        pool.close()
    # Each of the 3 streams ended its connection, so the requests after them needed a new
    # one: the pool noticed the close before reuse, or on reuse (a stale retry). Either way
    # no request failed.
    assert opened >= 4, (opened, pool.stale_retries)
