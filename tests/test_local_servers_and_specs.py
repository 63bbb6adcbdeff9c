"""Finding local model servers (real fake servers on loopback) and reading machine specs."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.share.local_servers import (
    ModelServerError,
    detect_local_servers,
    list_models,
)
from gambiarra_desktop.share.specs import machine_specs, nvidia_gpu
from tests.platforms import posix_only


@pytest.fixture
async def fake_ollama() -> AsyncIterator[str]:
    """Ollama's own listing: /api/tags, with names as Ollama users type them."""

    async def tags(request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": "llama3.2:3b"}, {"name": "qwen2.5:7b"}]})

    app = web.Application()
    app.router.add_get("/api/tags", tags)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await runner.cleanup()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_detects_ollama_and_openai_servers(
    fake_ollama: str, upstream: FakeOpenAIServer
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nothing_there = sock.getsockname()[1]
    found = await detect_local_servers(known=[
        ("Ollama", _port(fake_ollama)), ("LM Studio", _port(upstream.url)),
        ("vLLM", nothing_there)])
    assert [(s.name, s.endpoint, s.models) for s in found] == [
        ("Ollama", fake_ollama, ("llama3.2:3b", "qwen2.5:7b")),
        ("LM Studio", upstream.url, ("llama3.2:3b",)),
    ]


async def test_custom_endpoint_with_v1_suffix(upstream: FakeOpenAIServer) -> None:
    found = await detect_local_servers(extra_endpoints=[upstream.url + "/v1"], known=[])
    assert [(s.name, s.models) for s in found] == [("Custom", ("llama3.2:3b",))]


async def test_no_server_is_a_clear_error() -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        with pytest.raises(ModelServerError,
                           match="No model server answers at 127.0.0.1:9. Start Ollama"):
            await list_models(session, "http://127.0.0.1:9", timeout_s=1)


async def test_machine_specs_reads_cpu_and_ram() -> None:
    specs = await machine_specs()
    assert isinstance(specs["cpu"], str) and specs["cpu"]
    assert isinstance(specs["ram"], int) and specs["ram"] >= 1


def _fake_nvidia_smi(directory: Path, body: str) -> None:
    script = directory / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@posix_only
async def test_gpu_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nvidia_smi(tmp_path, 'echo "NVIDIA GeForce RTX 4090, 24564"')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert await nvidia_gpu() == ("NVIDIA GeForce RTX 4090", 24)
    specs = await machine_specs()
    assert (specs["gpu"], specs["vram"]) == ("NVIDIA GeForce RTX 4090", 24)


@posix_only
async def test_hanging_nvidia_smi_is_timed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_nvidia_smi(tmp_path, "exec sleep 30")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    import time

    started = time.monotonic()
    assert await nvidia_gpu(timeout_s=0.3) is None
    assert time.monotonic() - started < 3


async def test_no_nvidia_smi_means_no_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert await nvidia_gpu() is None
