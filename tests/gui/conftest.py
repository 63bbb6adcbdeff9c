"""GUI tests: real widgets offscreen, on a qasync loop shared by Qt and asyncio.

Waiting inside a coroutine is done by polling with ``asyncio.sleep`` (``qtbot.waitUntil``
nests a Qt loop and hangs under qasync; see shared/PLATFORM.md).

Every test ends with ``await finish(window)``: pytest-qt processes Qt events right after
the test returns, when the asyncio loop no longer runs, and qasync would then step any of
the window's tasks still in flight (a refresh, the room's event stream) outside its loop.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import asyncio  # noqa: E402
import time  # noqa: E402
from collections.abc import AsyncIterator, Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import qasync  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gambiarra_desktop.gui.config import GuiConfig  # noqa: E402
from gambiarra_desktop.gui.main_window import MainWindow  # noqa: E402
from gambiarra_desktop.gui.settings import AppSettings  # noqa: E402


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
    return {"qasync": lambda: qasync.QEventLoop(QApplication.instance() or QApplication([]))}


async def eventually(predicate: Callable[[], object], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "the window did not get there in time"
        await asyncio.sleep(0.02)


async def finish(window: MainWindow) -> None:
    """End the window's work inside the test (see the module docstring)."""
    await window.shutdown()
    assert window.tasks.pending == 0


@pytest.fixture
async def window(tmp_path: Path) -> AsyncIterator[MainWindow]:
    """The real main window, hosting on 127.0.0.1 port 0 and discovering on loopback."""
    settings = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    config = GuiConfig(
        data_dir=tmp_path / "hub", host_bind="127.0.0.1", host_port=0,
        mdns_interface="127.0.0.1", cooperating_mdns=True, share_health_interval_s=0.5,
    )
    win = MainWindow(config, settings)
    win.show()
    await win.start()
    yield win
    await win.shutdown()
    await asyncio.sleep(0.05)  # Let queued slots see the window closing.
    win.close()
    win.deleteLater()
