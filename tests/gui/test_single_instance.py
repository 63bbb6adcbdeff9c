"""One app per user and data dir: a second launch brings the first window forward."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QDir

from gambiarra_desktop.gui.single_instance import SingleInstance, server_name
from tests.gui.conftest import eventually


async def test_a_second_launch_asks_the_first_to_come_forward(tmp_path: Path) -> None:
    first = SingleInstance(tmp_path)
    shown: list[bool] = []
    first.activated.connect(lambda: shown.append(True))
    try:
        assert first.claim()
        second = SingleInstance(tmp_path)
        assert not second.claim()
        await eventually(lambda: shown == [True])
        assert not SingleInstance(tmp_path).claim()
        await eventually(lambda: shown == [True, True])
        other = SingleInstance(tmp_path / "another-data-dir")
        assert other.claim()  # Another data dir is another app.
        other.release()
    finally:
        first.release()
    assert SingleInstance(tmp_path).claim()  # Released at quit: the next launch runs.


@pytest.mark.skipif(sys.platform == "win32", reason="a Unix socket file left by a crash")
async def test_a_socket_left_by_a_crashed_app_does_not_block_the_next_launch(
        tmp_path: Path) -> None:
    path = Path(QDir.tempPath()) / server_name(tmp_path)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # Bound, never listening: what a killed app leaves behind.
    stale.close()
    assert path.exists()
    instance = SingleInstance(tmp_path)
    try:
        assert instance.claim()
    finally:
        instance.release()
        path.unlink(missing_ok=True)


async def test_launching_the_app_again_on_the_same_data_dir_exits_at_once(
        tmp_path: Path) -> None:
    running = SingleInstance(tmp_path)
    shown: list[bool] = []
    running.activated.connect(lambda: shown.append(True))
    assert running.claim()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gambiarra_desktop", "--data-dir", str(tmp_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        async with asyncio.timeout(30):
            output, _ = await process.communicate()
        assert process.returncode == 0, output
        assert b"already running with this data dir" in output
        await eventually(lambda: shown == [True])
    finally:
        running.release()
