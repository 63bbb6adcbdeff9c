"""Issue 14, "State that is true", for the share: the window against a real hub it hosts
and a real fake model server (stopped and restarted on the same port).

Given/When/Then, clicking the real widgets; the hub's own registry says who is in a room.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.tray import MODEL_DOWN_TITLE, NOT_HOSTING, NOT_SHARING, Tray
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.keys import REGISTRY
from gambiarra_desktop.hub.rooms.room import Room
from gambiarra_desktop.hub_client import HubClient
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import host_and_create_room, share_model


class CountingTray(Tray):
    """A real tray icon that also keeps every message it showed (offscreen shows none)."""

    def __init__(self, parent: Any) -> None:
        super().__init__(parent)
        self.messages: list[str] = []

    def showMessage(self, title: str, *args: Any) -> None:  # type: ignore[override]  # noqa: N802
        self.messages.append(title)
        super().showMessage(title, *args)


def hub_room(window: MainWindow, code: str) -> Room:
    hosted = window.host.hosted
    assert hosted is not None
    return hosted.server.app[REGISTRY].require(code)


def with_tray(window: MainWindow) -> CountingTray:
    assert window.tray is None  # Offscreen has no system tray; the window makes none.
    tray = CountingTray(window)
    window.use_tray(tray)
    return tray


async def create_another_room(qtbot: QtBot, window: MainWindow, name: str) -> None:
    qtbot.mouseClick(window.room_page.leave, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.stack.currentWidget() is window.hub_page)
    window.hub_page.room_name.setText(name)
    qtbot.mouseClick(window.hub_page.create_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.stack.currentWidget() is window.room_page
                     and window.room.session is not None and window.room.session.name == name)


async def test_model_server_down_is_shown_notified_once_and_recovers(
    qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer
) -> None:
    # Given a room shared with from my model server, and a tray icon
    tray = with_tray(window)
    await host_and_create_room(qtbot, window, "Down and up")
    await share_model(qtbot, window, upstream)
    code = window.room_page.code.text()
    room = hub_room(window, code)
    share = window.room_page.share

    # When the model server stops answering
    port = upstream.port
    await upstream.stop()

    # Then the tab and the banner say so in plain words, with what to do
    await eventually(lambda: share.status.text() == "Model server not answering")
    assert "start it again" in share.reason.text()
    assert share.share_switch.isChecked()  # Still on: it resumes by itself.
    banner = window.share_banner
    assert banner.isVisibleTo(window)
    assert banner.status.text() == "Model server not answering"
    # And the hub has it offline, so nothing is routed to it
    assert all(p["status"] == "offline" for p in room.participants.values())
    # And the tray said it once, over several beats of the same outage
    await asyncio.sleep(1.5)  # Three health intervals of the test window.
    assert tray.messages.count(MODEL_DOWN_TITLE) == 1
    assert "not answering" in tray.share_info.text()

    # When the model server comes back on the same port
    await upstream.start(port=port)

    # Then sharing resumes by itself, everywhere
    await eventually(lambda: share.status.text() == "Sharing")
    assert banner.status.text() == "Sharing"
    assert all(p["status"] == "online" for p in room.participants.values())
    window.tray = None
    await finish(window)


async def test_a_share_runs_on_across_pages_and_rooms_and_the_banner_leads_back(
    qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer
) -> None:
    # Given a share with room A
    await host_and_create_room(qtbot, window, "Room A")
    await share_model(qtbot, window, upstream)
    code_a = window.room_page.code.text()
    agent = window.share.agent
    assert agent is not None
    banner = window.share_banner
    assert banner.isVisibleTo(window) and "llama3.2:3b → Room A" in banner.text.text()

    # When I go to another page (the Gateway page, from the sidebar)
    window.show_gateway()
    # Then the share goes on, and the banner says so there
    assert window.stack.currentWidget() is window.gateway_page
    assert banner.isVisibleTo(window) and banner.status.text() == "Sharing"

    # When I click the banner there, then leave the room and create room B
    qtbot.mouseClick(window.share_banner.open_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.stack.currentWidget() is window.room_page)
    assert window.room_page.code.text() == code_a
    await create_another_room(qtbot, window, "Room B")
    code_b = window.room_page.code.text()
    assert code_b != code_a

    # Then the share still goes to A: A has me, online; B's tab says where the share is
    share = window.room_page.share
    assert window.share.agent is agent and agent.running
    assert [p["status"] for p in hub_room(window, code_a).participants.values()] == ["online"]
    await eventually(lambda: share.elsewhere.isVisibleTo(share))
    assert not share.share_switch.isChecked()
    assert "Room A" in share.elsewhere_text.text()
    assert code_a not in share.reason.text()  # A's "sharing with room A" is not B's news.
    assert banner.isVisibleTo(window) and "Room A" in banner.text.text()

    # When I click the banner
    qtbot.mouseClick(banner.open_button, Qt.MouseButton.LeftButton)

    # Then room A opens, its share tab shows the share on, and nothing was restarted
    await eventually(lambda: window.room_page.code.text() == code_a)
    await eventually(lambda: share.share_switch.isChecked() and share.status.text() == "Sharing")
    assert not share.elsewhere.isVisibleTo(share)
    assert window.share.agent is agent and agent.joins == 1

    # When I create room C and move the share there
    await create_another_room(qtbot, window, "Room C")
    code_c = window.room_page.code.text()
    qtbot.mouseClick(share.move_button, Qt.MouseButton.LeftButton)

    # Then C has me and A has nobody
    await eventually(lambda: len(hub_room(window, code_c).participants) == 1)
    await eventually(lambda: not hub_room(window, code_a).participants)
    await eventually(lambda: share.share_switch.isChecked() and share.status.text() == "Sharing")
    assert "Room C" in banner.text.text()
    await finish(window)


async def slow_specs() -> dict[str, Any]:
    await asyncio.sleep(1.5)  # nvidia-smi can take up to 2 s.
    return {"cpu": "test", "ram": 1}


async def test_fast_switch_clicks_never_leave_an_orphan_agent(
    qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer
) -> None:
    # Given a room, a model picked, and a machine whose specs are slow to read
    await host_and_create_room(qtbot, window, "Fast hands")
    share = window.room_page.share
    share.endpoint.setText(upstream.url)
    qtbot.mouseClick(share.check_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: share.model_combo.currentText() == "llama3.2:3b")
    window.share.switch.specs_reader = slow_specs
    room = hub_room(window, window.room_page.code.text())
    beats: list[float] = []
    registry = window.host.hosted.server.app[REGISTRY]  # type: ignore[union-attr]
    real_heartbeat = registry.heartbeat

    async def counted(*args: Any, **kwargs: Any) -> None:
        beats.append(time.monotonic())
        await real_heartbeat(*args, **kwargs)

    registry.heartbeat = counted

    # When I click on, off, on while the specs are read
    for _ in range(3):
        qtbot.mouseClick(share.share_switch, Qt.MouseButton.LeftButton)
        await asyncio.sleep(0.05)
    assert share.status.text() == "Starting…"

    # Then exactly one participant shares
    await eventually(lambda: share.status.text() == "Sharing", within_s=10)
    await asyncio.sleep(0.5)
    assert len(room.participants) == 1

    # When I click off, on, off, on, off quickly
    for _ in range(5):
        qtbot.mouseClick(share.share_switch, Qt.MouseButton.LeftButton)
        await asyncio.sleep(0.05)

    # Then nobody is left in the room and nothing beats after the final off
    await eventually(lambda: window.share.switch.state == "idle" and not room.participants,
                     within_s=10)
    off_at = time.monotonic()
    await asyncio.sleep(2.0)  # Past a stray start's specs read and a few beats.
    assert not room.participants
    assert [t for t in beats if t >= off_at] == []
    assert share.status.text() == "Stopped" and not share.share_switch.isChecked()
    await finish(window)


async def test_tray_shows_room_state_and_port_and_stops_hosting_like_the_sidebar(
    qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer, tmp_path: Path
) -> None:
    # Given the window with a tray icon, hosting nothing
    tray = with_tray(window)
    assert tray.menu_lines() == ["Show Gambiarra", NOT_SHARING, "Share my model", NOT_HOSTING,
                                 "Stop hosting", "About Gambiarra", "Open log folder", "Quit"]
    # And About and the log folder are there too, as in the Help menu
    opened: list[object] = []
    window.open_url = lambda url: opened.append(url) or True
    window.log_dir = tmp_path / "logs"
    tray.log_folder_action.trigger()
    assert opened and window.log_dir.is_dir()
    tray.about_action.trigger()
    assert window.about_dialog is not None and window.about_dialog.isVisible()
    window.about_dialog.close()
    assert not tray.stop_hosting_action.isEnabled()
    assert not tray.share_action.isEnabled()  # No room open: nothing to share with.

    # When I host a hub and share with a room
    await host_and_create_room(qtbot, window, "Tray room")
    hosted = window.host.hosted
    assert hosted is not None
    await share_model(qtbot, window, upstream)

    # Then the tray names the room, the state and the hub's port
    assert tray.share_info.text() == "Sharing llama3.2:3b → Tray room: sharing"
    assert tray.hosting_info.text() == f"Hosting a hub on port {hosted.port}"
    assert tray.stop_hosting_action.isEnabled()
    assert f"port {hosted.port}" in tray.toolTip() and "Tray room" in tray.toolTip()
    assert tray.share_action.isChecked()
    assert tray.icon().cacheKey() != QSystemTrayIcon(window).icon().cacheKey()

    # When I turn sharing off from the tray, on another page
    window.show_gateway()
    tray.share_action.trigger()

    # Then the share stops everywhere: the switch, the banner, the room
    await eventually(lambda: window.share.switch.state == "idle")
    share = window.room_page.share
    await eventually(lambda: not share.share_switch.isChecked())
    assert not window.share_banner.isVisibleTo(window)
    assert tray.share_info.text() == NOT_SHARING
    await eventually(lambda: not hub_room(window, window.room_page.code.text()).participants)

    # When I use the tray's Stop hosting
    tray.stop_hosting_action.trigger()

    # Then the hub stops (the same request_stop path as the sidebar, which asks first
    # while people are online)
    await eventually(lambda: tray.hosting_info.text() == NOT_HOSTING)
    assert window.host.hosted is None
    assert not tray.stop_hosting_action.isEnabled()

    # And a late Stop hosting (a menu opened before the hub stopped) never starts a hub:
    # the sidebar's button toggles, the tray's item only stops
    tray.stop_hosting_action.setEnabled(True)
    tray.stop_hosting_action.trigger()
    await asyncio.sleep(0.3)
    assert window.host.hosted is None
    window.tray = None
    await finish(window)


async def test_a_hub_blip_shows_reconnecting_in_place_and_sharing_resumes(
    qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer, tmp_path: Path
) -> None:
    from tests.gui.test_hub_room_access import free_port, open_hub

    # Given a share with a room on a hub elsewhere, while I look at another page
    port = free_port()
    hub = HubServer(tmp_path / "remote", port=port)
    await hub.start()
    try:
        async with HubClient(hub.url) as client:
            await client.create_room("Blip room")
        await open_hub(window, hub.url)
        await eventually(lambda: window.hub_page.room_list.count() == 1)
        qtbot.mouseClick(window.hub_page.join_button, Qt.MouseButton.LeftButton)
        await eventually(lambda: window.stack.currentWidget() is window.room_page)
        await share_model(qtbot, window, upstream)
        window.show_gateway()
        banner = window.share_banner
        assert banner.status.text() == "Sharing"

        # When the hub goes away
        await hub.stop()

        # Then the banner says "reconnecting" in place: no page switches, the share is on
        await eventually(lambda: banner.status.text() == "Reconnecting…", within_s=15)
        assert window.stack.currentWidget() is window.gateway_page
        assert window.room_page.share.status.text() == "Reconnecting…"
        assert window.room_page.share.share_switch.isChecked()

        # When it comes back on the same port
        hub = HubServer(tmp_path / "remote", port=port)
        await hub.start()

        # Then sharing resumes by itself
        await eventually(lambda: banner.status.text() == "Sharing", within_s=20)
        assert window.stack.currentWidget() is window.gateway_page
    finally:
        await finish(window)
        await hub.stop()
