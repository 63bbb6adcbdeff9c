"""The LAN commands as a user runs them: serve --mdns, list, join and monitor, as real
processes talking real mDNS on 127.0.0.1 (pinned with --interface, nothing leaves)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.test_cli import CLI, run_cli

TOKENS = "".join(f"tok{i} " for i in range(16))


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(process: subprocess.Popen[str], pattern: str, within_s: float = 20) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + within_s
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern!r} in: {''.join(seen)}")


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    assert process.stdout is not None
    return process.stdout.read()


@pytest.fixture
def lan_hub(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    hub = start([*CLI, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir",
                 str(tmp_path / "hub"), "--mdns", "--interface", "lo", "--name", "CLI hub"])
    url = "http://127.0.0.1:" + re.findall(r":(\d+)", read_until(hub, "listening on"))[0]
    advertised = read_until(hub, "mDNS:")
    assert "advertised as 'CLI hub' on 127.0.0.1:" in advertised and "(lo)" in advertised
    try:
        yield url, hub
    finally:
        stop(hub)


@pytest.fixture
def fake_model() -> Iterator[str]:
    from tests.test_cli import _free_port

    port = _free_port()
    process = start([sys.executable, "-m", "gambiarra_desktop.devtools.fake_openai",
                     "--port", str(port), "--model", "tiny"])
    read_until(process, "Fake OpenAI")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def test_list_finds_the_hub_and_its_rooms(lan_hub: tuple[str, subprocess.Popen[str]]) -> None:
    url, _ = lan_hub
    created = run_cli("create", "--name", "Found by mDNS", "--hub", url)
    code = re.search(r"Code: (\w{6})", created.stdout)
    assert code
    result = run_cli("list", "--interface", "lo", "--timeout", "3", "--json")
    assert result.returncode == 0, result.stderr
    hubs = json.loads(result.stdout)
    ours = [hub for hub in hubs if hub["url"] == url]
    assert ours, hubs
    assert ours[0]["name"] == "CLI hub"
    assert [room["code"] for room in ours[0]["rooms"]] == [code.group(1)]
    text = run_cli("list", "--interface", "lo", "--timeout", "3")
    assert f"CLI hub  {url}" in text.stdout
    assert f"{code.group(1)}  Found by mDNS" in text.stdout


def test_join_finds_the_room_by_mdns_and_shares_through_the_tunnel(
    lan_hub: tuple[str, subprocess.Popen[str]], fake_model: str
) -> None:
    url, _ = lan_hub
    code = re.search(r"Code: (\w{6})", run_cli("create", "--name", "Share", "--hub", url).stdout)
    assert code
    monitor = start([*CLI, "monitor", "--code", code.group(1), "--hub", url, "--json"])
    agent = start([*CLI, "join", "--code", code.group(1).lower(), "--model", "tiny",
                   "--endpoint", fake_model, "--nickname", "Cli", "--interface", "lo",
                   "--no-specs"])
    try:
        read_until(agent, rf"Found it on CLI hub at {re.escape(url)}")
        read_until(agent, r"\[sharing\] .*through the tunnel")
        client = openai.OpenAI(base_url=f"{url}/rooms/{code.group(1)}/v1", api_key="x",
                               max_retries=0, timeout=20)
        reply = client.chat.completions.create(model="tiny", messages=[
            {"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == TOKENS
        read_until(monitor, '"event": "llm:complete"')
    finally:
        agent_output = stop(agent)
        stop(monitor)
    assert f"Left room {code.group(1)}." in agent_output
    listing = json.loads(run_cli("list", "--hub", url, "--json").stdout)
    assert listing[0]["participantCount"] == 0


def test_join_explains_a_missing_model(
    lan_hub: tuple[str, subprocess.Popen[str]], fake_model: str
) -> None:
    url, _ = lan_hub
    code = re.search(r"Code: (\w{6})", run_cli("create", "--name", "X", "--hub", url).stdout)
    assert code
    result = run_cli("join", "--code", code.group(1), "--model", "not-there", "--endpoint",
                     fake_model, "--hub", url, "--no-specs")
    assert result.returncode == 1
    assert "does not serve 'not-there' (it serves: tiny)" in result.stderr


def test_join_without_a_reachable_room_says_so() -> None:
    result = run_cli("join", "--code", "ZZZZZZ", "--model", "m", "--endpoint",
                     "http://127.0.0.1:9", "--interface", "lo", "--timeout", "1")
    assert result.returncode == 1
    assert "no hub on the LAN holds room ZZZZZZ" in result.stderr
