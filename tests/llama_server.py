"""A real llama.cpp HTTP server (the xllamacpp wheel) on 127.0.0.1 with a tiny random-weight
model written on the spot, for the end-to-end and capacity tests."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def llama_server(model_dir: Path, **params: Any) -> Iterator[tuple[str, Path]]:
    """Yield ``(url, model path)`` of a healthy server; ``params`` set ``CommonParams``
    fields (``n_parallel=3``, ``use_jinja=True``, …). Skips without the wheels."""
    xllamacpp = pytest.importorskip("xllamacpp",
                                    reason="the llama.cpp server wheel is not installed")
    pytest.importorskip("gguf", reason="the gguf writer is not installed")
    from tests.tiny_gguf import write_tiny_llama

    model = write_tiny_llama(model_dir / "tiny.gguf")
    common = xllamacpp.CommonParams()
    common.model.path = str(model)
    common.n_ctx = 512
    common.hostnames = ["127.0.0.1"]
    common.port = free_port()
    common.warmup = False
    for name, value in params.items():
        setattr(common, name, value)
    server = xllamacpp.Server(common)
    url = f"http://127.0.0.1:{common.port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:  # noqa: S310
                if json.loads(response.read()).get("status") == "ok":
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "llama.cpp server did not become healthy"
        time.sleep(0.1)
    try:
        yield url, model
    finally:
        del server
