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
        hub_cmd = hub_host.command(sys.executable, "-m", "gambiarra_desktop.cli", "serve",
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


def test_discovery_and_tunnel_across_hosts(tmp_path: Path) -> None:
    """The whole product path on a virtual LAN: the hub on one host publishes itself; on the
    other host a model server listens on localhost only, ``gambiarra list`` finds the hub,
    ``gambiarra join`` finds the room by mDNS and shares through the tunnel, and a client on
    that host gets a streamed answer through the hub."""
    with two_hosts() as (hub_host, peer_host):
        hub_cmd = hub_host.command(sys.executable, "-m", "gambiarra_desktop.cli", "serve",
                                   "--host", "0.0.0.0", "--port", "3000", "--data-dir",
                                   str(tmp_path), "--mdns", "--interface", hub_host.interface,
                                   "--name", "Namespace hub")
        model_cmd = peer_host.command(sys.executable, "-m",
                                      "gambiarra_desktop.devtools.fake_openai",
                                      "--host", "127.0.0.1", "--port", "8080", "--model", "tiny")
        with background(hub_cmd, "mDNS:"), background(model_cmd, "Fake OpenAI"):
            hub_url = f"http://{hub_host.address}:3000"
            created = subprocess.run(
                peer_host.command(sys.executable, "-m", "gambiarra_desktop.cli", "create",
                                  "--name", "Across", "--hub", hub_url),
                capture_output=True, text=True, timeout=30, check=True)
            code = created.stdout.split("Code: ")[1].split()[0]
            listed = subprocess.run(
                peer_host.command(sys.executable, "-m", "gambiarra_desktop.cli", "list",
                                  "--interface", peer_host.interface, "--timeout", "3",
                                  "--json"),
                capture_output=True, text=True, timeout=30, check=True)
            hubs = json.loads(listed.stdout)
            assert [(h["name"], h["url"]) for h in hubs] == [("Namespace hub", hub_url)]
            assert [r["code"] for r in hubs[0]["rooms"]] == [code]
            join_cmd = peer_host.command(
                sys.executable, "-m", "gambiarra_desktop.cli", "join", "--code", code,
                "--model", "tiny", "--endpoint", "http://127.0.0.1:8080", "--interface",
                peer_host.interface, "--no-specs")
            with background(join_cmd, "through the tunnel"):
                client = subprocess.run(
                    peer_host.command(sys.executable, "-c", STREAM_CLIENT, hub_url, code),
                    capture_output=True, text=True, timeout=60, check=False)
    assert client.returncode == 0, client.stderr
    assert client.stdout.strip() == TOKENS.strip()


STREAM_CLIENT = """
import sys, openai
client = openai.OpenAI(base_url=f"{sys.argv[1]}/rooms/{sys.argv[2]}/v1", api_key="x",
                       max_retries=0, timeout=30)
stream = client.chat.completions.create(model="tiny", stream=True,
                                        messages=[{"role": "user", "content": "hi"}])
print("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
"""
