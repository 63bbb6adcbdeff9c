"""``gambiarra models`` and ``gambiarra admin set-password`` as a user runs them: the real
command in a subprocess, against a real hub on 127.0.0.1; the password prompts on a real
pseudo-terminal, so a test sees what the user's screen would show (no echo)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from gambiarra_desktop.gateway.accounts import ADMIN_PASSWORD_FILE
from gambiarra_desktop.hub import HubServer
from tests.conftest import HubFactory
from tests.platforms import posix_only

CLI = [sys.executable, "-m", "gambiarra_desktop.cli"]
PASSWORD = "correct-horse-battery"  # noqa: S105 - a test's password.
NEW_PASSWORD = "new-staple-horse-77"  # noqa: S105


async def cli(*args: str, stdin: str = "", env: dict[str, str] | None = None
              ) -> tuple[int, str, str]:
    """Run the command without blocking the loop that serves the hub under test."""
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def cli_on_terminal(args: list[str], answers: list[tuple[str, str]],
                          env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the command with a pty as its controlling terminal (where getpass talks), type
    each answer once its prompt shows, and return the exit status and the whole screen."""
    import fcntl
    import termios

    controller, terminal = os.openpty()

    def take_terminal() -> None:  # After setsid: the pty becomes the controlling terminal.
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = await asyncio.create_subprocess_exec(
        *CLI, *args, stdin=terminal, stdout=terminal, stderr=terminal, env=env,
        start_new_session=True, preexec_fn=take_terminal)
    os.close(terminal)
    screen = b""
    loop = asyncio.get_running_loop()

    async def read_until(text: str | None) -> None:
        nonlocal screen
        deadline = time.monotonic() + 30
        while text is None or text.encode() not in screen:
            assert time.monotonic() < deadline, screen
            try:
                chunk = await asyncio.wait_for(
                    loop.run_in_executor(None, os.read, controller, 4096), 30)
            except OSError:  # EIO: the command exited and closed the terminal.
                return
            if not chunk:
                return
            screen += chunk

    try:
        for prompt, answer in answers:
            await read_until(prompt)
            os.write(controller, answer.encode() + b"\n")
        await read_until(None)
        status = await asyncio.wait_for(process.wait(), 30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        os.close(controller)
    return status, screen.decode(errors="replace")


def environment(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in changes.items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    return env


@pytest.fixture
async def gateway_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", PASSWORD)
    return await make_hub()


async def test_models_add_list_rm(gateway_hub: HubServer, http: aiohttp.ClientSession) -> None:
    url = gateway_hub.url
    async with http.post(f"{url}/rooms", json={"name": "Lab"}) as response:
        code = (await response.json())["room"]["code"]
    status, out, err = await cli(
        "models", "add", "--hub", url, "--id", "coder", "--provider", "gambiarra",
        "--model", "qwen2.5-coder:7b", "--layer", "l1", "--room", code.lower(),
        "--priority", "2", "--relative-cost", "0.5", "--disabled")
    assert status == 0, err
    entry = json.loads(out)
    assert (entry["id"], entry["layer"], entry["room"], entry["priority"]) == (
        "coder", "L1", code, 2)
    assert entry["relativeCost"] == 0.5 and entry["enabled"] is False
    assert PASSWORD not in out + err

    # Listing is public: no password in the environment, nothing on stdin.
    anonymous = environment(GAMBIARRA_ADMIN_PASSWORD=None)
    status, out, err = await cli("models", "list", "--hub", url, env=anonymous)
    assert status == 0, err
    assert out.split() == ["L1", "coder", "gambiarra", "qwen2.5-coder:7b", "priority", "2",
                           "disabled,", "room", code]
    status, out, _ = await cli("models", "list", "--hub", url, "--json", env=anonymous)
    assert [m["id"] for m in json.loads(out)] == ["coder"]

    status, out, err = await cli("models", "rm", "coder", "--hub", url)
    assert (status, out.strip()) == (0, "Model coder removed."), err
    status, out, _ = await cli("models", "list", "--hub", url)
    assert status == 0 and out.startswith("No models yet.")


async def test_models_errors_say_what_the_hub_said(gateway_hub: HubServer) -> None:
    url = gateway_hub.url
    status, out, err = await cli("models", "add", "--hub", url, "--id", "x", "--provider",
                                 "openai", "--model", "m", "--layer", "L7")
    lines = err.splitlines()
    assert status == 1 and out == ""
    assert lines[0] == "Error: Invalid field: layer" and lines[1].startswith("  ")

    status, _, err = await cli("models", "rm", "missing", "--hub", url)
    assert status == 1 and err.splitlines()[0] == "Error: Model not found"

    wrong = environment(GAMBIARRA_ADMIN_PASSWORD="not-the-password")
    status, _, err = await cli("models", "rm", "x", "--hub", url, env=wrong)
    assert (status, err.strip()) == (1, "Error: Invalid credentials")

    # No variable and no terminal: getpass reads stdin, finds nothing, and the command says so.
    status, _, err = await cli("models", "rm", "x", "--hub", url,
                               env=environment(GAMBIARRA_ADMIN_PASSWORD=None))
    assert status == 1 and "no admin password" in err and "Traceback" not in err


async def test_models_against_no_hub_is_one_line() -> None:
    status, _, err = await cli("models", "list", "--hub", "http://127.0.0.1:9")
    assert status == 1 and err.startswith("Error: Cannot reach 127.0.0.1:9: nothing answers there.")
    assert "Traceback" not in err


@posix_only  # A pseudo-terminal.
async def test_models_prompts_for_the_password_without_echo(gateway_hub: HubServer) -> None:
    status, screen = await cli_on_terminal(
        ["models", "add", "--hub", gateway_hub.url, "--id", "typed", "--provider", "openai",
         "--model", "gpt-4o", "--layer", "L3"],
        [(f"Admin password for {gateway_hub.url}: ", PASSWORD)],
        env=environment(GAMBIARRA_ADMIN_PASSWORD=None))
    assert status == 0, screen
    assert '"id": "typed"' in screen and PASSWORD not in screen


async def _login(http: aiohttp.ClientSession, url: str, password: str) -> tuple[int, str]:
    async with http.post(f"{url}/v1/auth/login",
                         json={"username": "admin", "password": password}) as response:
        body = await response.json()
        return response.status, body.get("token", "")


async def _config_status(http: aiohttp.ClientSession, url: str, token: str) -> int:
    async with http.get(f"{url}/v1/config",
                        headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status


async def test_set_password_from_stdin_ends_old_tokens(
    make_hub: HubFactory, tmp_path: Path, http: aiohttp.ClientSession,
) -> None:
    data_dir = tmp_path / "hub-data"
    hub = await make_hub(data_dir=data_dir)  # No variable: a first-run password file.
    first = (data_dir / ADMIN_PASSWORD_FILE).read_text().strip()
    status, old_token = await _login(http, hub.url, first)
    assert status == 200 and await _config_status(http, hub.url, old_token) == 200

    status, out, err = await cli("admin", "set-password", "--data-dir", str(data_dir),
                                 "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert status == 0, err
    assert "Admin password changed" in out and NEW_PASSWORD not in out + err
    assert not (data_dir / ADMIN_PASSWORD_FILE).exists()  # Stale now: removed.

    assert await _config_status(http, hub.url, old_token) == 401
    assert (await _login(http, hub.url, first))[0] == 401
    status, new_token = await _login(http, hub.url, NEW_PASSWORD)
    assert status == 200 and await _config_status(http, hub.url, new_token) == 200


async def test_set_password_refuses_a_short_one(
    make_hub: HubFactory, tmp_path: Path, http: aiohttp.ClientSession,
) -> None:
    data_dir = tmp_path / "hub-data"
    hub = await make_hub(data_dir=data_dir)
    first = (data_dir / ADMIN_PASSWORD_FILE).read_text().strip()
    for given in ("short\n", ""):
        status, out, err = await cli("admin", "set-password", "--data-dir", str(data_dir),
                                     "--password-stdin", stdin=given)
        assert status == 1 and out == "" and err.startswith("Error: ")
    assert (await _login(http, hub.url, first))[0] == 200  # Unchanged.


@posix_only  # A pseudo-terminal.
async def test_set_password_prompts_twice_without_echo(
    make_hub: HubFactory, tmp_path: Path, http: aiohttp.ClientSession,
) -> None:
    data_dir = tmp_path / "hub-data"
    hub = await make_hub(data_dir=data_dir)
    args = ["admin", "set-password", "--data-dir", str(data_dir)]

    status, screen = await cli_on_terminal(
        args, [("New admin password: ", NEW_PASSWORD), ("Repeat it: ", NEW_PASSWORD + "x")])
    assert status == 1 and "differ" in screen and NEW_PASSWORD not in screen
    assert (data_dir / ADMIN_PASSWORD_FILE).exists()  # Nothing changed.

    status, screen = await cli_on_terminal(
        args, [("New admin password: ", NEW_PASSWORD), ("Repeat it: ", NEW_PASSWORD)])
    assert status == 0, screen
    assert "Admin password changed" in screen and NEW_PASSWORD not in screen
    assert (await _login(http, hub.url, NEW_PASSWORD))[0] == 200


async def test_models_add_for_a_password_room_asks_for_its_password(
    gateway_hub: HubServer, http: aiohttp.ClientSession
) -> None:
    url = gateway_hub.url
    async with http.post(f"{url}/rooms", json={"name": "Lab", "password": "room-secret"}) as r:
        code = (await r.json())["room"]["code"]
    add = ["models", "add", "--hub", url, "--id", "private", "--provider", "gambiarra",
           "--model", "m", "--layer", "L0", "--room", code]
    # From the environment, never a flag.
    status, out, err = await cli(*add, env=environment(GAMBIARRA_ROOM_PASSWORD="wrong-one"))
    assert status == 1 and "Invalid password" in err
    status, out, err = await cli(*add, env=environment(GAMBIARRA_ROOM_PASSWORD="room-secret"))
    assert status == 0, err
    assert json.loads(out)["room"] == code and "room-secret" not in out + err


@posix_only
async def test_models_add_prompts_for_a_room_password_without_echo(
    gateway_hub: HubServer, http: aiohttp.ClientSession
) -> None:
    url = gateway_hub.url
    async with http.post(f"{url}/rooms", json={"name": "Lab", "password": "room-secret"}) as r:
        code = (await r.json())["room"]["code"]
    status, screen = await cli_on_terminal(
        ["models", "add", "--hub", url, "--id", "private", "--provider", "gambiarra",
         "--model", "m", "--layer", "L0", "--room", code],
        [(f"Password of room {code}: ", "room-secret")])
    assert status == 0, screen
    assert "room-secret" not in screen
