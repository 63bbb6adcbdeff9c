"""Password rooms and deleting rooms, through the window."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.gui.main_window import MainWindow
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import TOKENS, ask_the_room, host_and_create_room, share_model


async def test_a_password_room_works_for_those_who_know_the_password(
    qtbot: QtBot, window: MainWindow
) -> None:
    """The hub wants the password to use a password room; the window sends it."""
    async with FakeOpenAIServer(models=("llama3.2:3b",)) as upstream:
        await host_and_create_room(qtbot, window, "Secret", password="hunter2")
        await share_model(qtbot, window, upstream)
        participants = window.room_page.participants.table
        await eventually(lambda: participants.rowCount() == 1)
        await ask_the_room(qtbot, window, "Hello")
        assert window.room_page.playground.output.toPlainText() == TOKENS
        snippet = window.room_page.connect_tab.snippets["Python (openai SDK)"].toPlainText()
        assert 'api_key=os.environ["ROOM_PASSWORD"]' in snippet
        assert "hunter2" not in snippet
    await finish(window)


async def test_a_wrong_password_is_said_on_the_hub_page(
    qtbot: QtBot, window: MainWindow
) -> None:
    await host_and_create_room(qtbot, window, "Secret", password="hunter2")
    qtbot.mouseClick(window.room_page.leave, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.hub_page.room_list.count() == 1)
    window.hub_page.join_password.setText("wrong")
    qtbot.mouseClick(window.hub_page.join_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.hub_page.error.text() == "Wrong password for this room.")
    assert window.stack.currentWidget() is window.hub_page
    await finish(window)


async def test_the_host_deletes_a_room_after_confirming(
    qtbot: QtBot, window: MainWindow
) -> None:
    await host_and_create_room(qtbot, window, "Short-lived")
    qtbot.mouseClick(window.room_page.leave, Qt.MouseButton.LeftButton)
    page = window.hub_page
    await eventually(lambda: page.room_list.count() == 1)
    assert page.delete_button.isEnabled()
    hosted = window.host.hosted
    assert hosted is not None and len(hosted.server.registry) == 1

    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    box = window.hubs._confirm
    assert box is not None and box.isVisible()
    box.button(QMessageBox.StandardButton.Cancel).click()
    await eventually(lambda: window.hubs._confirm is None)
    assert len(hosted.server.registry) == 1  # Cancel kept it.

    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    box = window.hubs._confirm
    assert box is not None
    delete = next(b for b in box.buttons() if b.text() == "Delete room")
    delete.click()
    await eventually(lambda: len(hosted.server.registry) == 0)
    await eventually(lambda: page.room_list.count() == 0)
    assert not page.delete_button.isEnabled()
    await finish(window)
