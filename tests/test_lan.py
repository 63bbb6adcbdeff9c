"""The hub and a participant on two different hosts of a virtual LAN (network namespaces).

This is the product's real situation: the model server runs on the participant's machine,
the hub on another. Skipped with a reason when not root.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.netns import two_hosts

TOKENS = "".join(f"tok{i} " for i in range(16))


@contextmanager
def background(command: list[str], ready: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, f"{command} exited early"
            if ready in line:
                break
        else:
            raise AssertionError(f"{command} never printed {ready!r}")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_participant_on_another_host_serves_chat_through_the_hub(tmp_path: Path) -> None:
    with two_hosts() as (hub_host, peer_host):
        hub_cmd = hub_host.command(sys.executable, "-m", "gambiarra_desktop", "serve",
                                   "--host", "0.0.0.0", "--port", "3000",
                                   "--data-dir", str(tmp_path))
        model_cmd = peer_host.command(sys.executable, "-m",
                                      "gambiarra_desktop.devtools.fake_openai",
                                      "--host", "0.0.0.0", "--port", "8080", "--model", "tiny")
        with background(hub_cmd, "listening"), background(model_cmd, "Fake OpenAI"):
            result = subprocess.run(
                peer_host.command(sys.executable, str(Path(__file__).with_name("lan_client.py")),
                                  f"http://{hub_host.address}:3000", peer_host.address),
                capture_output=True, text=True, timeout=60, check=False,
                cwd=Path(__file__).parent.parent,
            )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    status, body = seen["localhost_join"]
    assert status == 400
    assert "only works for a participant on the hub's machine" in body["error"]
    assert seen["lan_join"] == 201
    assert seen["reply"] == TOKENS
    assert seen["streamed"] == TOKENS
