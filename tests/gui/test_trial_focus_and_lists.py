"""Issue 14, found by trying the app as a new user: focus that a button gives up never lands
on *Stop hosting*, Tab leaves the tables, and the Playground lists a participant and its
model as two different choices with two different names."""

from __future__ import annotations

import aiohttp
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.gui.main_window import MainWindow
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import TOKENS, host_and_create_room
from tests.gui.test_queue_playground import join


async def playground_ready(qtbot: QtBot, window: MainWindow, http: aiohttp.ClientSession,
                           upstream: FakeOpenAIServer) -> None:
    await host_and_create_room(qtbot, window, "Keys")
    await join(http, window, "solo", "Solo", upstream)
    playground = window.room_page.playground
    window.room_page.tabs.setCurrentWidget(playground)
    qtbot.mouseClick(playground.refresh_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: playground.model_combo.count() >= 3)


async def test_sending_with_the_keyboard_keeps_focus_off_stop_hosting(
    qtbot: QtBot, window: MainWindow, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    # Given a hosted room with a participant, and the keyboard on Send
    await playground_ready(qtbot, window, http, upstream)
    window.activateWindow()
    playground = window.room_page.playground
    playground.prompt.setPlainText("Hello?")
    upstream.behaviour.first_token_delay_s = 0.5
    playground.send_button.setFocus()
    await eventually(lambda: playground.send_button.hasFocus())

    # When I press Space on Send (it disables itself while the reply streams)
    qtbot.keyClick(playground.send_button, Qt.Key.Key_Space)
    await eventually(lambda: not playground.send_button.isEnabled())

    # Then the keyboard is in the prompt, not on the sidebar's Stop hosting
    focused = QApplication.focusWidget()
    assert focused is not window.sidebar.host_button
    assert focused is playground.prompt
    await eventually(lambda: playground.output.toPlainText() == TOKENS)
    assert window.host.hosted is not None
    await finish(window)


async def test_any_button_that_disables_itself_hands_focus_back_not_to_stop_hosting(
    qtbot: QtBot, window: MainWindow
) -> None:
    # Given a hosted hub, and focus on a page's last button
    await host_and_create_room(qtbot, window, "Guard")
    window.activateWindow()
    button = window.room_page.leave
    button.setFocus()
    await eventually(lambda: button.hasFocus())

    # When that button is disabled while it has focus (as one does while its work runs)
    button.setEnabled(False)

    # Then Qt's next-in-chain (the sidebar's Stop hosting) does not keep the focus
    await eventually(lambda: QApplication.focusWidget() is not None)
    assert QApplication.focusWidget() is not window.sidebar.host_button
    assert window.room_page.isAncestorOf(QApplication.focusWidget()) \
        or QApplication.focusWidget() is window.stack
    button.setEnabled(True)

    # And a user's own Tab onto Stop hosting is still theirs to make
    window.sidebar.host_button.setFocus(Qt.FocusReason.TabFocusReason)
    await eventually(lambda: window.sidebar.host_button.hasFocus())
    await finish(window)


async def test_tab_leaves_the_participants_table(
    qtbot: QtBot, window: MainWindow, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    # Given a room with a participant, and the keyboard in its table
    await host_and_create_room(qtbot, window, "Tabs")
    await join(http, window, "solo", "Solo", upstream)
    table = window.room_page.participants.table
    await eventually(lambda: table.rowCount() == 1)
    window.activateWindow()
    table.setFocus()
    await eventually(lambda: table.hasFocus())

    # When I press Tab
    qtbot.keyClick(table, Qt.Key.Key_Tab)

    # Then the keyboard moves on to the next control instead of the next cell
    await eventually(lambda: not table.hasFocus())
    assert not table.tabKeyNavigation()
    assert not window.room_page.participants.served.tabKeyNavigation()
    await finish(window)


async def test_the_playground_lists_a_participant_and_its_model_once_each(
    qtbot: QtBot, window: MainWindow, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    # Given a room with one participant serving llama3.2:3b
    await playground_ready(qtbot, window, http, upstream)
    combo = window.room_page.playground.model_combo

    # Then the picker has: anyone, the participant, and the model name, each named apart
    labels = [combo.itemText(i) for i in range(combo.count())]
    data = [combo.itemData(i) for i in range(combo.count())]
    assert len(labels) == len(set(labels)), labels
    assert "Solo (llama3.2:3b)" in labels
    assert labels[data.index("llama3.2:3b")] == "Model: llama3.2:3b (served by Solo)"
    assert labels[data.index("solo")] == "Solo (llama3.2:3b)"
    await finish(window)


