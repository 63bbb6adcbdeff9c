"""The user's path through the window, against a real in-process hub and model server."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.gui.main_window import MainWindow
from tests.conftest import HubFactory
from tests.gui.conftest import eventually, finish

TOKENS = "".join(f"tok{i} " for i in range(16))


async def host_and_create_room(qtbot: QtBot, window: MainWindow, name: str,
                               password: str = "") -> None:
    qtbot.mouseClick(window.sidebar.host_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.host.hosted is not None)
    await eventually(lambda: window.stack.currentWidget() is window.hub_page)
    window.hub_page.room_name.setText(name)
    window.hub_page.room_password.setText(password)
    qtbot.mouseClick(window.hub_page.create_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.stack.currentWidget() is window.room_page)


async def share_model(qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer) -> None:
    """Type the model server's address, Check, flip the switch, wait until sharing."""
    share = window.room_page.share
    share.endpoint.setText(upstream.url)
    qtbot.mouseClick(share.check_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: share.model_combo.currentText() == "llama3.2:3b")
    qtbot.mouseClick(share.share_switch, Qt.MouseButton.LeftButton)
    await eventually(lambda: share.status.text() == "Sharing")


async def ask_the_room(qtbot: QtBot, window: MainWindow, prompt: str) -> None:
    """Open the playground, pick up the room's models, send ``prompt``, wait for the reply."""
    playground = window.room_page.playground
    window.room_page.tabs.setCurrentWidget(playground)
    qtbot.mouseClick(playground.refresh_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: playground.model_combo.count() >= 2)
    playground.prompt.setPlainText(prompt)
    qtbot.mouseClick(playground.send_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: playground.output.toPlainText() == TOKENS)


async def test_host_create_share_and_chat(
    qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer
) -> None:
    # Given a hosted hub and a new room
    await host_and_create_room(qtbot, window, "Friday hack")
    assert "Hosting on 127.0.0.1:" in window.sidebar.host_status.text()
    code = window.room_page.code.text()
    assert len(code) == 6
    assert window.room_page.connect_tab.base_url.text().endswith(f"/rooms/{code}/v1")

    # When I point the share tab at my model server and flip the switch
    await share_model(qtbot, window, upstream)

    # Then I share through the tunnel, and the room shows me
    share = window.room_page.share
    assert "through the tunnel" in share.reason.text()
    table = window.room_page.participants.table
    await eventually(lambda: table.rowCount() == 1)
    assert table.item(0, 1).text() == "llama3.2:3b"
    assert table.item(0, 3).text() == "tunnel"

    # And the playground streams a reply from the room
    await ask_the_room(qtbot, window, "Say something")
    await eventually(lambda: table.item(0, 5).text() == "1")  # Served, from llm:complete.
    activity = [window.room_page.participants.activity.item(i).text()
                for i in range(window.room_page.participants.activity.count())]
    assert any("answered: 16 tokens" in line for line in activity), activity

    # And the switch stops sharing: the participant leaves the room
    qtbot.mouseClick(share.share_switch, Qt.MouseButton.LeftButton)
    await eventually(lambda: share.status.text() == "Stopped")
    await eventually(lambda: table.rowCount() == 0)
    await finish(window)


async def test_sharing_started_while_the_room_still_opens_is_kept(
    qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer
) -> None:
    """Opening a room ends with the share tab's own set-up. A user quick enough to flip
    the switch before that (easy on a busy machine) keeps sharing, and the address typed
    is not swapped for a detected one, and opening another room does not stop it."""
    await host_and_create_room(qtbot, window, "Quick hands")
    await share_model(qtbot, window, upstream)
    share = window.room_page.share
    agent = window.share.agent
    session = window.share.session
    assert agent is not None and session is not None

    # When the tail of opening this same room runs only now
    await window.share.open(session)

    # Then the share goes on, untouched
    assert window.share.agent is agent and agent.running
    assert share.status.text() == "Sharing" and share.share_switch.isChecked()
    assert share.endpoint.text() == upstream.url

    # And opening another room keeps it too (issue 14: only the user stops a share);
    # that room's tab says where the share goes instead of silently stopping it
    other = dataclasses.replace(session, code="ZZZZZZ", name="Elsewhere")
    await window.share.open(other)
    assert window.share.agent is agent and agent.running
    assert not share.share_switch.isChecked() and share.elsewhere.isVisibleTo(share)
    assert session.code in share.elsewhere_text.text()
    await finish(window)


async def test_hosted_hub_appears_in_the_discovered_list(
    qtbot: QtBot, window: MainWindow
) -> None:
    qtbot.mouseClick(window.sidebar.host_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.host.hosted is not None)
    hosted = window.host.hosted
    assert hosted is not None and hosted.publisher is not None
    hub_id = hosted.publisher.announcement.hub_id
    browser = window.discovery.browser
    assert browser is not None
    # It is seen over mDNS on the (loopback) LAN, and listed once, as this computer.
    await eventually(lambda: any(h.hub_id == hub_id for h in browser.hubs.values()))
    seen = next(h for h in browser.hubs.values() if h.hub_id == hub_id)
    assert seen.url == f"http://127.0.0.1:{hosted.port}"
    assert list(window.discovery.entries) == ["local"]
    assert not window.sidebar.empty_label.isVisible()
    # Stopping sends the goodbye: the hub leaves the LAN and the list.
    qtbot.mouseClick(window.sidebar.host_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: not window.discovery.entries and not browser.hubs)
    assert window.sidebar.empty_label.isVisible()
    await finish(window)


async def test_password_is_asked_only_for_protected_rooms(
    qtbot: QtBot, window: MainWindow
) -> None:
    await host_and_create_room(qtbot, window, "Secret", password="hunter2")
    qtbot.mouseClick(window.room_page.leave, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.stack.currentWidget() is window.hub_page)
    await eventually(lambda: window.hub_page.room_list.count() == 1)
    assert window.hub_page.join_password.isVisible()
    qtbot.mouseClick(window.hub_page.join_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: "has a password" in window.hub_page.error.text())
    assert window.stack.currentWidget() is window.hub_page
    window.hub_page.join_password.setText("hunter2")
    qtbot.mouseClick(window.hub_page.join_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.stack.currentWidget() is window.room_page)
    assert "password protected" in window.room_page.subtitle.text()
    await finish(window)


async def test_open_room_does_not_ask_for_a_password(qtbot: QtBot, window: MainWindow) -> None:
    await host_and_create_room(qtbot, window, "Open")
    qtbot.mouseClick(window.room_page.leave, Qt.MouseButton.LeftButton)
    await finish(window)
    assert window.hub_page.room_list.count() == 1
    assert not window.hub_page.join_password.isVisible()


async def test_model_server_down_is_explained(
    qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer
) -> None:
    await host_and_create_room(qtbot, window, "Broken")
    share = window.room_page.share
    share.endpoint.setText(upstream.url)
    qtbot.mouseClick(share.check_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: share.model_combo.currentText() == "llama3.2:3b")
    await upstream.stop()  # The model server goes away before sharing starts.
    qtbot.mouseClick(share.share_switch, Qt.MouseButton.LeftButton)
    await eventually(lambda: share.status.text() == "Stopped" and "no model server answers"
                     in share.reason.text().lower())
    assert not share.share_switch.isChecked()
    await finish(window)


async def test_busy_port_is_reported_with_another_port_offered(
    qtbot: QtBot, window: MainWindow
) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        window.config.host_port = busy
        qtbot.mouseClick(window.sidebar.host_button, Qt.MouseButton.LeftButton)
        await eventually(lambda: "not available" in window.sidebar.host_status.text())
        assert window.host.hosted is None
        assert window.sidebar.port_row.isVisible()
        assert window.sidebar.port_spin.value() != busy
        qtbot.mouseClick(window.sidebar.retry_button, Qt.MouseButton.LeftButton)
        await eventually(lambda: window.host.hosted is not None)
        assert not window.sidebar.port_row.isVisible()
    await finish(window)


async def test_add_hub_by_address(
    qtbot: QtBot, window: MainWindow, make_hub: HubFactory
) -> None:
    other = await make_hub()
    qtbot.mouseClick(window.sidebar.add_hub_button, Qt.MouseButton.LeftButton)
    window.sidebar.address_edit.setText("127.0.0.1:1")
    qtbot.mouseClick(window.sidebar.address_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: "No hub answers" in window.sidebar.address_error.text())
    window.sidebar.address_edit.setText(other.url.removeprefix("http://"))
    qtbot.mouseClick(window.sidebar.address_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: f"manual:{other.url}" in window.discovery.entries)
    await eventually(lambda: window.stack.currentWidget() is window.hub_page)
    assert window.settings.manual_hubs == [other.url]
    await finish(window)


async def test_playground_explains_an_empty_room(qtbot: QtBot, window: MainWindow) -> None:
    await host_and_create_room(qtbot, window, "Empty")
    playground = window.room_page.playground
    window.room_page.tabs.setCurrentWidget(playground)
    playground.prompt.setPlainText("Anyone there?")
    qtbot.mouseClick(playground.send_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: playground.error.text() != "")
    assert playground.error.text() == "No available participant for the requested model"
    assert playground.send_button.isEnabled()
    await finish(window)
