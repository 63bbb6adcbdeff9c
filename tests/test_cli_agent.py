"""``gambiarra agent`` as a user runs it: a real process, seed 004's ``PORT`` and
``DEFAULT_MODEL`` from the environment, the token file, and a clean stop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.platforms import posix_only
from tests.test_cli import CLI, _free_port, run_cli


def test_a_non_loopback_host_is_refused() -> None:
    result = run_cli("agent", "--host", "0.0.0.0")  # noqa: S104 - the point of the test.
    assert result.returncode == 2
    assert "listens only on this machine's loopback" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_workspace_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("agent", "--port", "0", "--workspace", str(tmp_path / "nope"),
                     "--data-dir", str(tmp_path))
    assert result.returncode == 8
    assert f"the workspace {tmp_path / 'nope'} is not a folder" in result.stderr


@posix_only  # Checks a clean exit on SIGTERM.
def test_serves_on_port_from_the_environment_with_its_default_model(tmp_path: Path) -> None:
    port = _free_port()
    environment = {**os.environ, "PORT": str(port), "DEFAULT_MODEL": "auto"}
    process = subprocess.Popen(
        [*CLI, "agent", "--workspace", str(tmp_path), "--data-dir", str(tmp_path / "data"),
         "--base-url", f"http://127.0.0.1:{_free_port()}/v1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        assert re.search(rf"agent API on http://127\.0\.0\.1:{port}\b", first), first
        lines = [process.stdout.readline() for _ in range(4)]
        token_file = tmp_path / "data" / "agent-token"
        token = token_file.read_text().strip()
        assert any(str(token_file) in line for line in lines)
        assert any("default model: auto" in line for line in lines)
        assert not any(token in line for line in [first, *lines])
        request = urllib.request.Request(f"http://127.0.0.1:{port}/models",
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310 - loopback.
        except urllib.error.HTTPError as exc:  # Nothing listens at the base URL.
            assert exc.code == 502
            assert "cannot reach the model server" in json.loads(exc.read())["error"]
        else:
            raise AssertionError("GET /models should fail: the base URL is down")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
