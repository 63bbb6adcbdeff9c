"""Issue 14, slice B: a room opens only with the hub's yes; passwords are asked again in
place; an unreachable hub is said in place with Retry or "reconnecting"; errors read as
sentences. Real hubs on 127.0.0.1, real widgets, offscreen."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from gambiarra_desktop.backoff import Backoff
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.models import HubEntry, RoomSession
from gambiarra_desktop.gui.room_notice_view import BACK_TEXT, RECONNECTING_TEXT
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub_client import HubClient
from gambiarra_desktop.room_feed import STREAM_ENDED
from tests.conftest import HubFactory
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import host_and_create_room

RAW = ("ssl:default", "<html", "TransferEncodingError", "ClientConnectorError", "Errno",
       "Connect call failed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def activity(window: MainWindow) -> list[str]:
    log = window.room_page.participants.activity
    return [log.item(i).text() for i in range(log.count())]


async def open_hub(window: MainWindow, url: str) -> None:
    window.show_hub(HubEntry("remote", "Remote hub", url, source="manual"))
    await eventually(lambda: window.stack.currentWidget() is window.hub_page
                     and window.hubs.entry is not None and window.hubs.entry.url == url)


async def test_a_wrong_password_never_opens_the_rooms_tabs_and_is_asked_again_in_place(
    qtbot: QtBot, window: MainWindow, hub: HubServer
) -> None:
    # Given a password room on a hub, and a session that carries a wrong password (as a
    # banner reopening a room, or a hub that asks for the password later, would bring)
    async with HubClient(hub.url) as client:
        code = (await client.create_room("Secret", "right"))["room"]["code"]
    session = RoomSession("Remote hub", hub.url, code, "Secret", True, "wrong")

    # When the room opens
    window.open_room(session)
    page = window.room_page
    await eventually(lambda: page.notice.password.isVisible())

    # Then no tab opens, and the password is asked for right there, focused and selected
    assert not page.tabs.isVisible()
    assert window.stack.currentWidget() is page
    assert page.notice.message.text() == "Wrong password for this room: type it again."
    assert QApplication.focusWidget() is page.notice.password
    page.notice.password.setText("still wrong")
    qtbot.mouseClick(page.notice.unlock, Qt.MouseButton.LeftButton)
    await eventually(lambda: page.notice.password.selectedText() == "still wrong")
    assert not page.tabs.isVisible()
    assert window.playground.view.model_combo.count() <= 1  # No call went out unlocked.
    assert "Invalid password" not in window.playground.view.error.text()

    # When the right one is typed, the room opens, and every tab uses that password
    page.notice.password.setText("right")
    qtbot.keyClick(page.notice.password, Qt.Key.Key_Return)
    await eventually(lambda: page.tabs.isVisible() and not page.notice.isVisible())
    assert session.password == "right"
    assert window.playground.session is session and window.share.session is session
    qtbot.mouseClick(page.playground.refresh_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: page.playground.model_combo.count() >= 1)
    await asyncio.sleep(0.3)
    assert page.playground.error.text() == ""
    assert not any("Invalid password" in line for line in activity(window))
    await finish(window)


async def test_joining_a_room_the_list_shows_open_but_the_hub_locks_asks_in_place(
    qtbot: QtBot, window: MainWindow, hub: HubServer
) -> None:
    # Given a password room whose listing says it has none (an older hub, a stale list)
    async with HubClient(hub.url) as client:
        code = (await client.create_room("Secret", "right"))["room"]["code"]
    await open_hub(window, hub.url)
    hub_page = window.hub_page
    await eventually(lambda: hub_page.room_list.count() == 1)
    room = dict(hub_page.room_list.item(0).data(Qt.ItemDataRole.UserRole), hasPassword=False)
    hub_page.room_list.item(0).setData(Qt.ItemDataRole.UserRole, room)
    window.hubs._on_room_changed()

    # When I join it
    qtbot.mouseClick(hub_page.join_button, Qt.MouseButton.LeftButton)

    # Then the hub page asks for the password, and the room does not open
    await eventually(lambda: hub_page.join_password.isVisible())
    assert QApplication.focusWidget() is hub_page.join_password
    assert window.stack.currentWidget() is hub_page
    hub_page.join_password.setText("right")
    qtbot.mouseClick(hub_page.join_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.room.session is not None
                     and window.room_page.tabs.isVisible())
    assert window.room.session.code == code and window.room.session.password == "right"
    await finish(window)


async def test_an_unreachable_hub_says_so_with_retry_and_opens_nothing(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    # Given a hub address where nothing answers
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    await open_hub(window, url)
    page = window.hub_page

    # Then the hub page says so in words, with Retry, and offers no room to open
    await eventually(lambda: page.unreachable.isVisible())
    text = page.unreachable_text.text()
    assert text == (f"Cannot reach 127.0.0.1:{port}: nothing answers there. Check that the"
                    " hub is running and that you are on the same network.")
    assert not any(raw in text + page.error.text() for raw in RAW)
    assert not page.join_button.isEnabled() and page.room_list.count() == 0

    # When the hub starts and I click Retry, its rooms show
    hub = HubServer(tmp_path / "late-hub", port=port)
    await hub.start()
    try:
        async with HubClient(hub.url) as client:
            await client.create_room("Late")
        qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)
        await eventually(lambda: page.room_list.count() == 1 and not page.unreachable.isVisible())

        # And a hub that goes away between the list and the click keeps the room closed
        await hub.stop()
        qtbot.mouseClick(page.join_button, Qt.MouseButton.LeftButton)
        await eventually(lambda: page.unreachable.isVisible())
        assert window.stack.currentWidget() is page and window.room.session is None
        await finish(window)
    finally:
        await hub.stop()


async def test_a_hub_that_goes_away_is_reconnecting_in_place_and_comes_back(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    # Given an open room on another hub
    port = free_port()
    hub = HubServer(tmp_path / "remote", port=port)
    await hub.start()
    try:
        async with HubClient(hub.url) as client:
            await client.create_room("Lab")
        window.room.access.backoff = Backoff(initial_s=0.5, cap_s=2.0)
        await open_hub(window, hub.url)
        await eventually(lambda: window.hub_page.room_list.count() == 1)
        qtbot.mouseClick(window.hub_page.join_button, Qt.MouseButton.LeftButton)
        page = window.room_page
        await eventually(lambda: page.tabs.isVisible() and window.room.access.feed is not None
                         and window.room.access.feed.state.value == "live")
        before = len(activity(window))

        # When the hub stops
        await hub.stop()

        # Then the room page says so in place, and keeps its page and tabs
        await eventually(lambda: page.notice.isVisible())
        assert page.notice.message.text() == RECONNECTING_TEXT
        assert page.notice.detail.text() in (STREAM_ENDED, (
            f"Cannot reach 127.0.0.1:{port}: nothing answers there. Check that the hub is"
            " running and that you are on the same network."))
        assert window.stack.currentWidget() is page and page.tabs.isVisible()
        await asyncio.sleep(4.0)  # Old code: a "retrying" line every 2 s, forever.
        assert len(activity(window)) - before == 1, activity(window)[before:]
        assert window.room.access.feed.tries <= 6

        # When it comes back on the same port, the page says "back", in one more line
        hub = HubServer(tmp_path / "remote", port=port)
        await hub.start()
        await eventually(lambda: page.notice.message.text() == BACK_TEXT, within_s=6)
        lines = activity(window)[before:]
        assert len(lines) == 2 and "back" in lines[1], lines
        assert not any(raw in " ".join(lines) for raw in RAW)
        await finish(window)
    finally:
        await hub.stop()


async def test_after_create_focus_is_not_on_stop_hosting_and_the_lock_is_an_icon(
    qtbot: QtBot, window: MainWindow
) -> None:
    # When I host a hub and create a password room
    await host_and_create_room(qtbot, window, "Friday hack", password="pw")

    # Then focus sits on the room page, never on the sidebar's Stop hosting
    await eventually(lambda: window.room_page.tabs.isVisible())
    assert window.sidebar.host_button.text() == "Stop hosting"
    focused = QApplication.focusWidget()
    assert focused is not window.sidebar.host_button
    assert focused is not None and window.room_page.isAncestorOf(focused)

    # And the hub's list marks the room with an icon and a word, not a missing glyph
    qtbot.mouseClick(window.room_page.leave, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.stack.currentWidget() is window.hub_page
                     and window.room.session is None)
    await eventually(lambda: window.hub_page.room_list.count() == 1)
    item = window.hub_page.room_list.item(0)
    assert "🔒" not in item.text() and "password" in item.text()
    assert not item.icon().isNull()
    await eventually(lambda: window.tasks.pending == 0)  # The page's refresh has ended.
    await finish(window)


async def test_joining_a_hub_from_the_list_checks_every_room(
    qtbot: QtBot, window: MainWindow, make_hub: HubFactory
) -> None:
    """A room deleted between the list and the click is said, not opened empty."""
    hub = await make_hub()
    async with HubClient(hub.url) as client:
        created = await client.create_room("Short-lived")
    await open_hub(window, hub.url)
    await eventually(lambda: window.hub_page.room_list.count() == 1)
    async with HubClient(hub.url) as client:
        await client.delete_room(created["room"]["code"], created["creatorSecret"])
    qtbot.mouseClick(window.hub_page.join_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.hub_page.error.text() == "Cannot open the room: Room not found")
    assert window.stack.currentWidget() is window.hub_page
    await finish(window)
