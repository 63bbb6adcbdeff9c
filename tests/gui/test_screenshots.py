"""PNGs of the main screens, light and dark, saved as build artifacts.

They land in ``build/screenshots/`` (or ``$GAMBIARRA_SCREENSHOTS``); the README's pictures
are made with ``GAMBIARRA_SCREENSHOTS=docs/screenshots``. Each picture is checked to be a
real, non-blank rendering of the expected size.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.gui import guest_link, room_controller
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.theme import apply_theme
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import ask_the_room, host_and_create_room

SIZE = (1180, 760)


def _out_dir() -> Path:
    out = Path(os.environ.get("GAMBIARRA_SCREENSHOTS", "build/screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


async def _shoot(window: MainWindow, name: str) -> Path:
    # Let Qt lay out and paint through the running loop. (QApplication.processEvents()
    # here would re-enter qasync from inside a task step and can wedge the loop.)
    await asyncio.sleep(0.1)
    path = _out_dir() / f"{name}.png"
    assert window.grab().save(str(path))
    image = QImage(str(path))
    assert (image.width(), image.height()) == SIZE
    # Not blank: the picture holds many distinct colours.
    colours = {image.pixel(x, y) for x in range(0, image.width(), 37)
               for y in range(0, image.height(), 29)}
    assert len(colours) > 8, f"{name} looks blank"
    return path


async def test_main_screens(qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    window.resize(*SIZE)
    upstream.behaviour.token_delay_s = 0.03  # About 33 tokens/s, like a small local model.
    await _shoot(window, "01-welcome")

    await host_and_create_room(qtbot, window, "Friday hack")
    share = window.room_page.share
    share.endpoint.setText(upstream.url)
    share.nickname.setText("Ana")
    qtbot.mouseClick(share.check_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: share.model_combo.currentText() == "llama3.2:3b")
    qtbot.mouseClick(share.share_switch, Qt.MouseButton.LeftButton)
    await eventually(lambda: share.status.text() == "Sharing")
    window.room_page.tabs.setCurrentWidget(share)
    await _shoot(window, "03-share")

    await ask_the_room(qtbot, window, "Write a haiku about sharing GPUs with friends")
    await _shoot(window, "05-playground")

    # The test's hub listens on loopback only, where the Connect tab rightly shows no guest
    # link; the picture shows a hub on a LAN, as users see it (a documentation address).
    monkeypatch.setattr(guest_link, "lan_hosts", lambda _interface: ["192.168.1.20"])
    monkeypatch.setattr(room_controller, "listens_on_lan", lambda *_args: True)
    session = window.room.session
    assert session is not None
    window.room.show_guest_link(session)
    assert window.room_page.connect_tab.guest_url.text().startswith("http://192.168.1.20:")
    window.room_page.tabs.setCurrentWidget(window.room_page.connect_tab)
    await _shoot(window, "04-connect")
    window.room_page.tabs.setCurrentIndex(0)
    await eventually(lambda: window.room_page.participants.table.item(0, 5).text() == "1")
    await _shoot(window, "02-room")

    # The hosted hub's Gateway page logs in by itself; the Usage page charts the playground's
    # request from the ledger.
    await eventually(lambda: window.gateway.logged_in)
    qtbot.mouseClick(window.sidebar.usage_button, Qt.MouseButton.LeftButton)
    page = window.usage_page
    await eventually(lambda: page.scroll_area.isVisible() and page.busy.text() == "")
    await window.usage.refresh_now()
    assert page.per_model.series.labels == ["llama3.2:3b"]
    await _shoot(window, "09-usage")
    window.stack.setCurrentWidget(window.room_page)

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    apply_theme(app, "dark")
    await _shoot(window, "06-room-dark")
    qtbot.mouseClick(window.room_page.leave, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.stack.currentWidget() is window.hub_page)
    await eventually(lambda: window.hub_page.room_list.count() == 1)
    await _shoot(window, "07-hub-dark")
    apply_theme(app, "light")
    await finish(window)


SCALED_WINDOW = """
import sys
from pathlib import Path
from PySide6.QtWidgets import QApplication
from gambiarra_desktop.gui.config import GuiConfig
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.settings import AppSettings
from PySide6.QtCore import QSettings
app = QApplication([])
window = MainWindow(GuiConfig(data_dir=Path(sys.argv[2])),
                    AppSettings(QSettings(sys.argv[3], QSettings.Format.IniFormat)))
window.resize(1180, 760)
window.show()
app.processEvents()
image = window.grab()
print(image.width(), image.height(), image.devicePixelRatio())
image.save(sys.argv[1])
"""


def test_window_renders_at_200_percent(tmp_path: Path) -> None:
    """Readable at 200%: Qt scales the whole window, text and all, by the device ratio."""
    import subprocess
    import sys

    out = _out_dir() / "08-welcome-200-percent.png"
    env = {**os.environ, "QT_SCALE_FACTOR": "2", "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", SCALED_WINDOW, str(out), str(tmp_path / "hub"),
         str(tmp_path / "settings.ini")],
        capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 0, result.stderr
    width, height, ratio = result.stdout.split()
    assert float(ratio) == 2.0
    image = QImage(str(out))
    assert (image.width(), image.height()) == (2 * SIZE[0], 2 * SIZE[1])


async def test_agent_page_with_an_approval_waiting(
        qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    from gambiarra_desktop.devtools.scripted_model import ScriptedCall, ScriptedReply
    from tests.gui.test_agent_page import agent_on, one_card, scripted, send

    window.resize(*SIZE)
    model = await scripted(
        ScriptedReply(reasoning="The tests live in tests/; running them shows what fails.",
                      text="I will run the test suite first.",
                      calls=(ScriptedCall("bash", {"command": "make test"}, "c1"),)),
        ScriptedReply(text="All green."))
    workspace = tmp_path / "project"
    workspace.mkdir()
    try:
        await agent_on(qtbot, window, model.url, workspace)
        send(qtbot, window.agent_page, "Why does make test fail?")
        card = await one_card(window.agent_page)
        await _shoot(window, "08-agent-approval")
        card.deny_button.click()
    finally:
        await window.agent.close()
        await model.stop()


async def test_playground_waiting_for_a_free_model(
        qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer, http: Any) -> None:
    """Issue 14: the Playground says its place in the room's queue while the only model is
    busy with someone else's request, under a conversation's earlier turn."""
    from tests.gui.test_queue_playground import occupy_the_only_slot, one_slot_room

    window.resize(*SIZE)
    upstream.behaviour.token_delay_s = 0.03  # About 33 tokens/s, like a small local model.
    await one_slot_room(qtbot, window, http, upstream)
    await ask_the_room(qtbot, window, "Write a haiku about sharing GPUs with friends")
    playground = window.room_page.playground
    await eventually(lambda: playground.send_button.isEnabled())
    blocker = await occupy_the_only_slot(window, http, upstream)
    playground.prompt.setPlainText("Now one about waiting in line")
    qtbot.mouseClick(playground.send_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: playground.waiting.isVisible())
    await _shoot(window, "13-queue-position")
    upstream.behaviour.first_token_delay_s = 0.0
    await blocker
    await eventually(lambda: playground.send_button.isEnabled())
    await finish(window)


async def test_narrow_800x600_room(
        qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer) -> None:
    """Issue 14: a room page in an 800×600 window: the sidebar narrows, nothing is cut."""
    from tests.gui.test_flows import share_model

    await host_and_create_room(qtbot, window, "Friday hack")
    await share_model(qtbot, window, upstream)
    window.resize(800, 600)
    window.room_page.tabs.setCurrentIndex(0)
    await eventually(lambda: window.room_page.participants.table.rowCount() == 1)
    await asyncio.sleep(0.2)
    path = _out_dir() / "12-narrow-800x600.png"
    assert window.grab().save(str(path))
    image = QImage(str(path))
    assert (image.width(), image.height()) == (800, 600)
    colours = {image.pixel(x, y) for x in range(0, 800, 37) for y in range(0, 600, 29)}
    assert len(colours) > 8, "the narrow window looks blank"
    await finish(window)


async def test_room_reconnecting_in_place(
        qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    """Issue 14: the room's hub went away: the room page says so in place and reconnects."""
    from gambiarra_desktop.hub import HubServer
    from gambiarra_desktop.hub_client import HubClient
    from tests.gui.test_hub_room_access import free_port, open_hub

    window.resize(*SIZE)
    hub = HubServer(tmp_path / "remote", port=free_port())
    await hub.start()
    try:
        async with HubClient(hub.url) as client:
            await client.create_room("Friday hack")
        await open_hub(window, hub.url)
        await eventually(lambda: window.hub_page.room_list.count() == 1)
        qtbot.mouseClick(window.hub_page.join_button, Qt.MouseButton.LeftButton)
        page = window.room_page
        await eventually(lambda: page.tabs.isVisible() and window.room.access.feed is not None
                         and window.room.access.feed.state.value == "live")
    finally:
        await hub.stop()
    await eventually(lambda: page.notice.isVisible())
    await _shoot(window, "11-reconnecting")
    await finish(window)


async def test_sharing_banner_and_model_server_down(
        qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer) -> None:
    """Issue 14: a share stays in sight on every page (the banner), and a model server
    that stops answering is said in plain words, in the tab and the banner."""
    from tests.gui.test_flows import share_model

    window.resize(*SIZE)
    await host_and_create_room(qtbot, window, "Friday hack")
    window.room_page.share.nickname.setText("Ana")
    await share_model(qtbot, window, upstream)
    window.show_gateway()  # Another page: the banner keeps the share in sight.
    await eventually(lambda: window.share_banner.isVisible())
    await _shoot(window, "09-sharing-banner")

    qtbot.mouseClick(window.share_banner.open_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.stack.currentWidget() is window.room_page)
    share = window.room_page.share
    window.room_page.tabs.setCurrentWidget(share)
    await upstream.stop()
    await eventually(lambda: share.status.text() == "Model server not answering")
    await _shoot(window, "10-model-server-down")
    await finish(window)
