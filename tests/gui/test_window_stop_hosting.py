"""Issue 14: *Stop hosting* asks first while people are in the hub's rooms (Cancel is the
default), and stops at once when nobody is; the sidebar and the tray share that one path."""

from __future__ import annotations

import asyncio
import contextlib

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.gui.main_window import MainWindow
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import host_and_create_room, share_model


def sweepers() -> list[asyncio.Task[object]]:
    """The hub's liveness sweeper runs from its start until the last step of its stop."""
    return [t for t in asyncio.all_tasks() if t.get_name() == "gambiarra-liveness"
            and not t.done()]


def _question(window: MainWindow) -> QMessageBox | None:
    boxes = [w for w in QApplication.topLevelWidgets()
             if isinstance(w, QMessageBox) and w.objectName() == "confirmStopHosting"
             and w.isVisible()]
    return boxes[0] if boxes else None


async def test_stop_hosting_with_nobody_in_the_rooms_stops_at_once(
        qtbot: QtBot, window: MainWindow) -> None:
    # Given a hosted hub with an empty room
    await host_and_create_room(qtbot, window, "Empty")

    # When I click Stop hosting
    qtbot.mouseClick(window.sidebar.host_button, Qt.MouseButton.LeftButton)

    # Then it stops without a question
    await eventually(lambda: window.host.hosted is None)
    assert _question(window) is None
    await finish(window)


async def test_stop_hosting_with_people_in_a_room_asks_and_cancel_keeps_it(
        qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer) -> None:
    # Given a hosted hub and someone sharing in one of its rooms
    await host_and_create_room(qtbot, window, "Busy")
    await share_model(qtbot, window, upstream)
    hosted = window.host.hosted
    assert hosted is not None

    # When I press Stop hosting (by keyboard: the stray Space of the issue)
    window.sidebar.host_button.setFocus()
    qtbot.keyClick(window.sidebar.host_button, Qt.Key.Key_Space)

    # Then a question says who would be cut off, with Cancel the default, and the hub runs on
    await eventually(lambda: _question(window) is not None, within_s=5)
    box = _question(window)
    assert box is not None
    assert "1 person is using rooms" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    await asyncio.sleep(0.2)
    assert window.host.hosted is hosted

    # When I answer Cancel (Return takes the default)
    qtbot.keyClick(box, Qt.Key.Key_Return)

    # Then the hub still runs, and the share too
    await eventually(lambda: _question(window) is None, within_s=5)
    await asyncio.sleep(0.2)
    assert window.host.hosted is hosted
    assert window.room_page.share.status.text() == "Sharing"

    # When I ask again, from the tray's path this time, and confirm
    window.host.request_stop()
    await eventually(lambda: _question(window) is not None, within_s=5)
    box = _question(window)
    assert box is not None
    stop = next(b for b in box.buttons() if b.text() == "Stop hosting")
    qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)

    # Then the hub stops
    await eventually(lambda: window.host.hosted is None, within_s=10)
    await finish(window)


async def test_quitting_while_the_hub_stops_still_closes_it_all_the_way(
        qtbot: QtBot, window: MainWindow) -> None:
    # Given a hosted hub, with its liveness sweeper running
    await host_and_create_room(qtbot, window, "Closing")
    hosted = window.host.hosted
    assert hosted is not None
    assert sweepers()

    # When I click Stop hosting and quit before that stop has finished
    qtbot.mouseClick(window.sidebar.host_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.host.hosted is None)  # The stop is under way...
    assert sweepers()  # ...and not done: its mDNS goodbye alone takes a while.
    await finish(window)  # The shutdown cancels every task the window runs.

    # Then the hub still closed all the way (its sweeper and store too), instead of being
    # left half stopped by the cancelled click: nothing listens and nothing runs.
    assert not sweepers()
    with contextlib.suppress(ConnectionRefusedError):
        _, writer = await asyncio.open_connection("127.0.0.1", hosted.port)
        writer.close()
        raise AssertionError("the hub still listens")
