"""Issue 14, found by trying the app as a new user: focus that a button gives up never lands
on *Stop hosting*, Tab leaves the tables, and the Playground lists a participant and its
model as two different choices with two different names."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from gambiarra_desktop.backoff import Backoff
from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.room_controller import STATUS_COLUMN, UNKNOWN_STATUS
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub_client import HubClient
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import TOKENS, host_and_create_room
from tests.gui.test_hub_room_access import free_port, open_hub
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




async def test_while_the_hub_does_not_answer_nobodys_status_is_shown_as_current(
    qtbot: QtBot, window: MainWindow, http: aiohttp.ClientSession, upstream: FakeOpenAIServer,
    tmp_path: Path,
) -> None:
    # Given an open room on another hub, with someone online in it
    port = free_port()
    hub = HubServer(tmp_path / "remote", port=port)
    await hub.start()
    try:
        async with HubClient(hub.url) as client:
            code = (await client.create_room("Lab"))["room"]["code"]
        async with http.post(f"{hub.url}/rooms/{code}/join", json={
                "id": "p1", "nickname": "Ana", "model": "m", "endpoint": upstream.url}) as r:
            assert r.status == 201, await r.text()
        window.room.access.backoff = Backoff(initial_s=0.5, cap_s=2.0)
        await open_hub(window, hub.url)
        await eventually(lambda: window.hub_page.room_list.count() == 1)
        qtbot.mouseClick(window.hub_page.join_button, Qt.MouseButton.LeftButton)
        table = window.room_page.participants.table
        await eventually(lambda: table.rowCount() == 1 and window.room.access.live)
        assert table.item(0, STATUS_COLUMN).text() == "● online"

        # When the hub stops answering
        await hub.stop()

        # Then the table no longer claims anyone is online; the last state is a tooltip
        await eventually(lambda: table.item(0, STATUS_COLUMN).text() == UNKNOWN_STATUS)
        assert "last seen online" in table.item(0, STATUS_COLUMN).toolTip()
        await finish(window)
    finally:
        await hub.stop()


async def test_long_activity_lines_wrap_and_a_wrong_password_is_said_by_its_field(
    qtbot: QtBot, window: MainWindow
) -> None:
    # Given a hosted hub with a password room, and a narrow window
    await host_and_create_room(qtbot, window, "Locked", password="right")
    window.resize(800, 600)
    # When a long line reaches the activity list
    window.room.log("the hub is not answering; reconnecting (" + "a long reason " * 20 + ")")
    activity = window.room_page.participants.activity
    await asyncio.sleep(0.1)
    # Then it wraps: nothing hides behind a sideways scroll bar
    assert activity.wordWrap()
    assert activity.horizontalScrollBar().maximum() == 0

    # When I go back and join it with a wrong password
    qtbot.mouseClick(window.room_page.leave, Qt.MouseButton.LeftButton)
    page = window.hub_page
    await eventually(lambda: window.stack.currentWidget() is page
                     and page.room_list.count() == 1)
    page.room_list.setCurrentRow(0)
    await eventually(lambda: page.join_password.isVisible())
    page.join_password.setText("wrong")
    qtbot.mouseClick(page.join_button, Qt.MouseButton.LeftButton)

    # Then the words are right under the rooms and their password field, above Create
    await eventually(lambda: "password" in page.error.text().lower())
    rooms_bottom = page.join_button.mapTo(page, page.join_button.rect().bottomLeft()).y()
    create_top = page.room_name.mapTo(page, page.room_name.rect().topLeft()).y()
    error_y = page.error.mapTo(page, page.error.rect().topLeft()).y()
    assert rooms_bottom < error_y < create_top, (rooms_bottom, error_y, create_top)
    await finish(window)
