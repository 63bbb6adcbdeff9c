"""Issue 14, the hub list: it follows the network, looks again on demand, lets the user
remove hubs added by address, lists this app's own hub once, and keeps a hub that left
the network in place while it is in use. Real hubs and real zeroconf on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot
from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from gambiarra_desktop.discovery.announcement import HubAnnouncement, packed
from gambiarra_desktop.discovery.hosting import publish_hub
from gambiarra_desktop.discovery.interfaces import InterfaceAddress
from gambiarra_desktop.gui.discovery_controller import GONE_TEXT
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.sidebar_view import LOOK_AGAIN_TEXT, LOOKING_TEXT
from gambiarra_desktop.protocol import MDNS_SERVICE_TYPE
from tests.conftest import HubFactory
from tests.gui.conftest import eventually, finish

LO = InterfaceAddress("lo", "127.0.0.1")


def item_text(window: MainWindow, key: str) -> str:
    item = window.discovery._item(key)
    return item.text() if item is not None else ""


async def host(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.mouseClick(window.sidebar.host_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.host.hosted is not None)


async def test_look_again_says_looking_and_drops_a_hub_that_went_silent(
    qtbot: QtBot, window: MainWindow
) -> None:
    # Given my own hub, selected, and another in the list that then loses power (no
    # goodbye on the network)
    await host(qtbot, window)
    await eventually(lambda: window.discovery._current_key() == "local")
    announcement = HubAnnouncement("d0" * 16, "Silent hub", 4999, ("127.0.0.1",))
    responder = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    info = ServiceInfo(MDNS_SERVICE_TYPE, announcement.service_name, port=4999,
                       properties=announcement.properties(),
                       addresses=packed(announcement.addresses), server=announcement.host_name)
    await responder.async_register_service(info, cooperating_responders=True)
    key = f"lan:{announcement.hub_id}"
    try:
        await eventually(lambda: key in window.discovery.entries)
    finally:
        responder.zeroconf.registry.async_remove(info)
        await responder.async_close()
    assert key in window.discovery.entries  # Still listed: nothing told the app.
    # When I click Look again
    button = window.sidebar.look_again_button
    assert button.text() == LOOK_AGAIN_TEXT
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    # Then it says it is looking, and the silent hub is gone when it is done
    await eventually(lambda: button.text() == LOOKING_TEXT, 2)
    assert not button.isEnabled()
    await eventually(lambda: button.text() == LOOK_AGAIN_TEXT and button.isEnabled(), 10)
    assert key not in window.discovery.entries
    assert window.discovery._current_key() == "local"
    await finish(window)


async def test_the_hosted_hub_follows_the_network_it_is_on(
    qtbot: QtBot, window: MainWindow
) -> None:
    # Given a hosted hub, published on this machine's only "LAN" address
    await host(qtbot, window)
    hosted = window.host.hosted
    assert hosted is not None and hosted.publisher is not None
    listed: list[list[InterfaceAddress]] = [[LO]]
    window.discovery.watcher.lister = lambda _interface: listed[-1]
    # When the network goes away
    listed.append([])
    assert await window.discovery.watcher.check_now()
    # Then the hub is off the LAN, and the sidebar says so (it stays reachable here)
    assert hosted.publisher is None
    await eventually(lambda: "Not published on the LAN" in window.sidebar.host_status.text())
    # When it comes back, the hub is published again, and found on it
    listed.append([LO])
    assert await window.discovery.watcher.check_now()
    assert hosted.publisher is not None and hosted.addresses == [LO]
    assert "Published on the LAN" in window.sidebar.host_status.text()
    assert window.discovery.entries["local"].url == f"http://127.0.0.1:{hosted.port}"
    assert window.discovery.browser is not None
    service = hosted.publisher.announcement.service_name
    await eventually(lambda: service in window.discovery.browser.hubs)  # type: ignore[union-attr]
    assert [k for k in window.discovery.entries if k.endswith(hosted.publisher.announcement
                                                              .hub_id)] == []
    await finish(window)


async def test_a_hub_added_by_address_can_be_removed_for_good(
    qtbot: QtBot, window: MainWindow, make_hub: HubFactory, tmp_path: Path
) -> None:
    # Given two hubs I added by address
    first, second = await make_hub(), await make_hub(data_dir=tmp_path / "second")
    urls = [first.url, f"http://localhost:{second.port}"]
    for url in urls:
        window.sidebar.add_hub_button.click()
        window.sidebar.address_edit.setText(url)
        window.sidebar.address_button.click()
        await eventually(lambda u=url: f"manual:{u}" in window.discovery.entries)
    assert window.settings.manual_hubs == urls
    # When I select the first and click Remove
    window.discovery.select(f"manual:{urls[0]}")
    remove = window.sidebar.remove_hub_button
    await eventually(lambda: remove.isVisible())
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    # Then it is gone, and stays gone
    assert f"manual:{urls[0]}" not in window.discovery.entries
    assert window.settings.manual_hubs == [urls[1]]
    # And the other one goes through its context menu
    item = window.discovery._item(f"manual:{urls[1]}")
    assert item is not None
    hub_list = window.sidebar.hub_list
    hub_list.customContextMenuRequested.emit(hub_list.visualItemRect(item).center())
    menus = [m for m in hub_list.findChildren(QMenu) if m.objectName() == "hubMenu"]
    assert len(menus) == 1
    [action] = menus[0].actions()
    assert action.text() == "Remove this hub"
    action.trigger()
    menus[0].close()
    assert window.settings.manual_hubs == []
    assert not any(k.startswith("manual:") for k in window.discovery.entries)
    # And a new start of the app (its settings read back from the file) lists neither
    reread = AppSettings(QSettings(window.settings._s.fileName(), QSettings.Format.IniFormat))
    assert reread.manual_hubs == []
    await finish(window)


async def test_my_own_hub_added_by_address_is_listed_once(
    qtbot: QtBot, window: MainWindow
) -> None:
    # Given the hub this app hosts
    await host(qtbot, window)
    hosted = window.host.hosted
    assert hosted is not None
    # When I add it by each of its addresses
    for address in (f"127.0.0.1:{hosted.port}", f"localhost:{hosted.port}",
                    f"http://127.0.0.1:{hosted.port}/"):
        window.discovery.select("local")
        window.sidebar.add_hub_button.click()
        window.sidebar.address_edit.setText(address)
        window.sidebar.address_button.click()
        await eventually(lambda: not window.sidebar.address_row.isVisible())
        # Then the list still shows it once, selected, and nothing is remembered
        assert [k for k in window.discovery.entries if k == "local" or k.startswith("manual:")
                ] == ["local"]
        assert window.discovery._current_key() == "local"
    assert window.settings.manual_hubs == []
    await finish(window)


async def test_a_hub_that_leaves_the_network_keeps_its_open_room_on_screen(
    qtbot: QtBot, window: MainWindow, make_hub: HubFactory
) -> None:
    # Given my own hub in the list, and another hub on the network whose room I opened
    await host(qtbot, window)
    other = await make_hub()
    publisher, _ = await publish_hub(other, "Leaving hub", "127.0.0.1", cooperating=True)
    key = f"lan:{publisher.announcement.hub_id}"
    try:
        await eventually(lambda: key in window.discovery.entries)
        window.discovery.select(key)
        await eventually(lambda: window.stack.currentWidget() is window.hub_page
                         and window.hubs.entry is not None and window.hubs.entry.key == key)
        window.hub_page.room_name.setText("Leaving room")
        qtbot.mouseClick(window.hub_page.create_button, Qt.MouseButton.LeftButton)
        await eventually(lambda: window.stack.currentWidget() is window.room_page)
    finally:
        # When that hub disappears from mDNS (it said goodbye)
        await publisher.stop()
    await eventually(lambda: GONE_TEXT in item_text(window, key))
    # Then its entry is greyed in place, still selected, and the room stays on screen
    assert window.discovery._current_key() == key
    assert window.stack.currentWidget() is window.room_page
    # And when it is back on the network, the entry is back to normal
    publisher, _ = await publish_hub(other, "Leaving hub", "127.0.0.1", cooperating=True)
    try:
        await eventually(lambda: key in window.discovery.entries
                         and GONE_TEXT not in item_text(window, key))
        assert window.stack.currentWidget() is window.room_page
    finally:
        await publisher.stop()
    await finish(window)


async def test_a_selected_hub_that_vanishes_does_not_move_the_page(
    qtbot: QtBot, window: MainWindow, make_hub: HubFactory
) -> None:
    # Given my own hub, and another hub's page open from the list
    await host(qtbot, window)
    other = await make_hub()
    publisher, _ = await publish_hub(other, "Flaky hub", "127.0.0.1", cooperating=True)
    key = f"lan:{publisher.announcement.hub_id}"
    try:
        await eventually(lambda: key in window.discovery.entries)
        window.discovery.select(key)
        await eventually(lambda: window.hubs.entry is not None and window.hubs.entry.key == key)
    finally:
        await publisher.stop()
    # When it vanishes, the page still shows that hub (not mine, not the welcome page)
    await eventually(lambda: GONE_TEXT in item_text(window, key))
    assert window.stack.currentWidget() is window.hub_page
    assert window.hubs.entry is not None and window.hubs.entry.key == key
    # And once I pick another hub, Look again lets the gone one go
    window.discovery.select("local")
    window.sidebar.look_again_button.click()
    await eventually(lambda: key not in window.discovery.entries, 10)
    await finish(window)
