"""First start of a headless hub: it makes the admin, says where the password is (on the
console and in the log), and never prints or logs the password itself."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

READY_S = 20.0


def _serve_output(data_dir: Path) -> str:
    process = subprocess.Popen(
        [sys.executable, "-m", "gambiarra_desktop.cli", "serve", "--host", "127.0.0.1",
         "--port", "0", "--data-dir", str(data_dir), "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if k != "GAMBIARRA_ADMIN_PASSWORD"})
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + READY_S
    try:
        while time.monotonic() < deadline and len(lines) < 50:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Gateway:" in line:
                break
        time.sleep(0.5)  # Let it install its signal handlers: SIGTERM before them kills it.
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)  # It writes a few lines at most: no full pipe to wait on.
    # Read the rest through the same text stream: readline() may already hold the lines
    # after "Gateway:" in its buffer, which communicate() (reading the raw pipe) would skip.
    return "".join(lines) + process.stdout.read()


def test_first_start_says_where_the_admin_password_is_and_never_what(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    output = _serve_output(data_dir)
    password_file = data_dir / "admin-password"
    password = password_file.read_text().strip()
    assert len(password) >= 16
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert output.splitlines()[0].startswith("Gambiarra hub listening on 127.0.0.1:")
    assert f"its password is in {password_file}" in output  # Console line.
    assert f"Created the gateway's admin account; its password is in {password_file}" in output
    assert password not in output
    # A second start finds the admin: no new password, no notice.
    again = _serve_output(data_dir)
    assert password_file.read_text().strip() == password
    assert "its password is in" not in again and password not in again


async def test_a_too_short_environment_password_is_refused_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from gambiarra_desktop.hub import HubServer

    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", "admin")
    async with HubServer(tmp_path / "data") as hub:
        assert hub.new_admin_password_file == tmp_path / "data" / "admin-password"
    assert "GAMBIARRA_ADMIN_PASSWORD is ignored: a password needs 8-1024 characters" in (
        caplog.text)
