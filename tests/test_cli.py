"""The ``gambiarra`` command as a user runs it: real processes, real sockets."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.platforms import posix_only

CLI = [sys.executable, "-m", "gambiarra_desktop.cli"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=30, check=False)


@posix_only  # Checks a clean exit on SIGTERM.
def test_serve_create_list_and_stop(served_hub: tuple[str, subprocess.Popen[str]]) -> None:
    url, process = served_hub
    created = run_cli("create", "--name", "CLI room", "--password", "zebra-horse-42", "--hub", url)
    assert created.returncode == 0, created.stderr
    code = re.search(r"Code: ([A-Z0-9]{6})", created.stdout)
    assert code, created.stdout
    assert f"{url}/rooms/{code.group(1)}/v1" in created.stdout

    listed = run_cli("list", "-H", url)
    assert listed.returncode == 0
    assert f"{code.group(1)}  CLI room (password)" in listed.stdout
    assert "Participants: 0" in listed.stdout

    as_json = run_cli("list", "--hub", url, "--json")
    rooms = json.loads(as_json.stdout)
    assert [room["code"] for room in rooms] == [code.group(1)]
    assert "passwordHash" not in as_json.stdout and "argon2" not in as_json.stdout

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert process.stdout is not None
    log = process.stdout.read()
    assert "zebra-horse-42" not in log


def test_create_reports_hub_errors(served_hub: tuple[str, subprocess.Popen[str]]) -> None:
    url, _ = served_hub
    result = run_cli("create", "--name", "   ", "--hub", url)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: Name is required"


def test_unreachable_hub_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli("list", "--hub", f"http://127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"Failed to connect to hub at http://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_port_is_reported_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli("serve", "--host", "127.0.0.1", "--port", str(port),
                         "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@posix_only  # Checks a clean exit on SIGTERM.
def test_restart_through_the_cli_keeps_the_room(tmp_path: Path) -> None:
    codes = []
    for _ in range(2):
        process = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            assert process.stdout is not None
            port = re.search(r":(\d+)", process.stdout.readline())
            assert port
            url = f"http://127.0.0.1:{port.group(1)}"
            if not codes:
                run_cli("create", "--name", "Persisted", "--hub", url)
            rooms = json.loads(run_cli("list", "--hub", url, "--json").stdout)
            codes.append([room["code"] for room in rooms])
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
    assert len(codes[0]) == 1 and codes[0] == codes[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_served_hub_proxies_chat_on_its_production_event_loop(
    served_hub: tuple[str, subprocess.Popen[str]],
) -> None:
    """``serve`` runs on uvloop where installed; the proxy must work there, not only on the
    default loop the in-process tests use."""
    import openai

    url, _ = served_hub
    port = _free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "gambiarra_desktop.devtools.fake_openai", "--port", str(port),
         "--model", "tiny"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert fake.stdout is not None and "Fake OpenAI" in fake.stdout.readline()
        created = run_cli("create", "--name", "uvloop", "--hub", url)
        code = re.search(r"Code: (\w{6})", created.stdout)
        assert code
        join = {"id": "p", "nickname": "P", "model": "tiny", "endpoint": f"http://127.0.0.1:{port}"}
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=10)
        connection.request("POST", f"/rooms/{code.group(1)}/join", json.dumps(join),
                           {"Content-Type": "application/json"})
        joined = connection.getresponse()
        assert joined.status == 201, joined.read()
        connection.close()
        client = openai.OpenAI(base_url=f"{url}/rooms/{code.group(1)}/v1", api_key="x",
                               max_retries=0, timeout=20)
        for _ in range(3):  # Several calls: pooled connections are reused on this loop too.
            reply = client.chat.completions.create(model="tiny", messages=[
                {"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content == "".join(f"tok{i} " for i in range(16))
            stream = client.chat.completions.create(
                model="*", messages=[{"role": "user", "content": "hi"}], stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            assert text == "".join(f"tok{i} " for i in range(16))
    finally:
        fake.terminate()
        fake.wait(timeout=10)


def test_a_secret_that_starts_with_a_dash_is_read_as_printed() -> None:
    # One secret in 64 starts with "-": "--secret -X…" would be read as another option.
    from gambiarra_desktop.cli import build_parser

    args = build_parser().parse_args(["delete", "--code", "ABC234", "--secret=-Xy_9"])
    assert args.secret == "-Xy_9"


def test_delete_with_the_creator_secret_or_the_owner_token(
    served_hub: tuple[str, subprocess.Popen[str]], tmp_path: Path,
) -> None:
    url, _process = served_hub
    codes = []
    for name in ("First", "Second"):
        created = run_cli("create", "--name", name, "--hub", url)
        assert created.returncode == 0, created.stderr
        code = re.search(r"Code: ([A-Z0-9]{6})", created.stdout)
        secret = re.search(r"(--secret=\S+)", created.stdout)
        assert code and secret, created.stdout
        codes.append((code.group(1), secret.group(1)))
    (first, first_secret), (second, _) = codes

    wrong = run_cli("delete", "--code", first, "--hub", url, "--secret", "not-it")
    assert wrong.returncode == 1
    assert "creator" in wrong.stderr
    done = run_cli("delete", "--code", first.lower(), "--hub", url, first_secret)
    assert done.returncode == 0, done.stderr
    assert f"Room {first} deleted." in done.stdout
    # The hub's owner, on its machine: the owner token from the hub's data dir.
    owner = run_cli("delete", "--code", second, "--hub", url, "--data-dir", str(tmp_path))
    assert owner.returncode == 0, owner.stderr
    listed = run_cli("list", "--hub", url, "--json")
    assert json.loads(listed.stdout) == []
