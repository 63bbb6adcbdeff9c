"""Issue 16, the app's part: the Connect tab shows the room's web address for guests as a
QR code and a link, on this machine's LAN address (never loopback), or says why there is
none. Real hubs on 127.0.0.1, real widgets, offscreen; the LAN address is pinned."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest
import zxingcpp
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.gui.connect_view import QR_ACCESSIBLE_NAME, ConnectTab
from gambiarra_desktop.gui.copy_feedback import COPIED_TEXT
from gambiarra_desktop.gui.guest_link import guest_link, listens_on_lan
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.models import RoomSession
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub_client import HubClient
from gambiarra_desktop.web import links
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import host_and_create_room
from tests.gui.test_window_fit import _fits, _page_area, _sideways_cut

LAN = "192.168.77.5"


def pin_lan_hosts(monkeypatch: pytest.MonkeyPatch, hosts: list[str]) -> None:
    """This machine's LAN addresses, as the room controller looks them up."""
    monkeypatch.setattr(links, "lan_hosts", lambda _interface=None: list(hosts))


async def open_room_on(window: MainWindow, hub: HubServer, name: str,
                       password: str = "") -> str:
    async with HubClient(hub.url) as client:
        code = str((await client.create_room(name, password or None))["room"]["code"])
    window.open_room(RoomSession("Remote hub", hub.url, code, name, bool(password), password))
    page = window.room_page
    await eventually(lambda: page.tabs.isVisible() and page.code.text() == code)
    page.tabs.setCurrentWidget(page.connect_tab)
    await asyncio.sleep(0.1)
    return code


def decode_qr(connect: ConnectTab, path: Path) -> list[str]:
    pixmap = connect.qr.pixmap()
    assert not pixmap.isNull()
    assert pixmap.save(str(path))
    return [result.text for result in zxingcpp.read_barcodes(Image.open(path))]


async def test_the_connect_tab_qr_code_is_the_rooms_lan_address_and_copy_link_copies_it(
    qtbot: QtBot, window: MainWindow, hub: HubServer, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Given a hub on this machine (known to the app as 127.0.0.1), whose LAN address is
    # 192.168.77.5 (a loopback address listed first, as a pinned interface gives, is none)
    assert hub.url.startswith("http://127.0.0.1:")
    pin_lan_hosts(monkeypatch, ["127.0.0.1", LAN])

    # When I open a password room on it and look at the Connect tab
    code = await open_room_on(window, hub, "Phones welcome", password="hunter2")
    connect = window.room_page.connect_tab
    expected = f"http://{LAN}:{hub.port}/r/{code}"

    # Then its QR code reads exactly as the room's web page on the LAN address, no secret
    assert connect.qr.isVisible()
    assert decode_qr(connect, tmp_path / "qr.png") == [expected]
    assert connect.guest_url.text() == expected
    assert "hunter2" not in expected
    assert not connect.guest_unavailable.isVisible()
    # And it is crisp and named: drawn unscaled, about 200 px, a whole pixel per module
    assert connect.qr.accessibleName() == QR_ACCESSIBLE_NAME
    width = connect.qr.pixmap().width()
    assert 180 <= width <= 220, width
    assert connect.qr.size() == connect.qr.pixmap().size()
    assert not connect.qr.hasScaledContents()

    # When I click Copy link
    qtbot.mouseClick(connect.copy_link, Qt.MouseButton.LeftButton)

    # Then exactly that address is on the clipboard, and the button says so for a moment
    assert QApplication.clipboard().text() == expected
    assert connect.copy_link.text() == COPIED_TEXT
    await eventually(lambda: connect.copy_link.text() == "Copy link", within_s=3)

    # When I open another room
    other = await open_room_on(window, hub, "Second")

    # Then the QR code is made anew, for that room
    assert other != code
    assert decode_qr(connect, tmp_path / "qr2.png") == [f"http://{LAN}:{hub.port}/r/{other}"]
    assert connect.guest_url.text() == f"http://{LAN}:{hub.port}/r/{other}"
    await finish(window)


@pytest.mark.parametrize("hosts", [[], ["127.0.0.1"]])
async def test_without_a_lan_address_there_is_no_qr_code_and_the_tab_says_why(
    window: MainWindow, hub: HubServer, monkeypatch: pytest.MonkeyPatch, hosts: list[str],
) -> None:
    # Given a hub on this machine, which has no LAN address (none, or only loopback)
    pin_lan_hosts(monkeypatch, hosts)

    # When I open a room on it
    await open_room_on(window, hub, "Offline")
    connect = window.room_page.connect_tab

    # Then there is no QR code and no link, and a sentence says why
    assert not connect.qr.isVisible()
    assert connect.qr.pixmap().isNull()
    assert not connect.guest_url.isVisible() and connect.guest_url.text() == ""
    assert not connect.copy_link.isVisible()
    assert connect.guest_unavailable.isVisible()
    assert connect.guest_unavailable.text() == (
        "Guests cannot open this room in a browser: this computer has no LAN address on the"
        " network interface 127.0.0.1, the one this app was told to use.")
    await finish(window)


async def test_the_hub_i_host_on_loopback_gets_no_link_even_with_a_lan_address(
    qtbot: QtBot, window: MainWindow, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a LAN address, and the hub this app hosts bound to 127.0.0.1 (the fixture's)
    pin_lan_hosts(monkeypatch, [LAN])
    assert window.config.host_bind == "127.0.0.1"

    # When I host it and open a room on it
    await host_and_create_room(qtbot, window, "Only here")
    connect = window.room_page.connect_tab
    window.room_page.tabs.setCurrentWidget(connect)
    await asyncio.sleep(0.1)

    # Then no QR code and no link: a phone could not reach that hub; the tab says so
    assert not connect.qr.isVisible() and connect.guest_url.text() == ""
    assert connect.guest_unavailable.isVisible()
    assert connect.guest_unavailable.text() == (
        "Guests cannot open this room in a browser: the hub you host listens on this"
        " computer only.")
    await finish(window)


async def test_the_qr_card_fits_an_800_by_600_window(
    window: MainWindow, hub: HubServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a room whose Connect tab shows the QR code and a long-ish address
    pin_lan_hosts(monkeypatch, ["192.168.177.155"])
    await open_room_on(window, hub, "Small screen")
    connect = window.room_page.connect_tab
    assert connect.qr.isVisible()

    # When the window is made 800×600
    window.resize(800, 600)
    await asyncio.sleep(0.1)

    # Then it stays 800×600, and nothing of the tab is cut or scrolls sideways
    assert (window.width(), window.height()) == (800, 600)
    assert _fits(window.minimumSizeHint(), 800, 600), window.minimumSizeHint()
    assert _sideways_cut(_page_area(window)) == []
    assert connect.copy_link.isVisible()
    assert connect.guest_url.width() >= 100, connect.guest_url.width()
    await finish(window)


class _Hosted:
    port = 3000


def test_only_the_hosted_hub_on_a_loopback_bind_is_off_the_lan() -> None:
    hosted = cast(HostedHub, _Hosted())
    # The hub this app hosts: its bind address decides
    assert not listens_on_lan("http://127.0.0.1:3000", hosted, "127.0.0.1")
    assert not listens_on_lan("http://localhost:3000", hosted, "localhost")
    assert listens_on_lan("http://127.0.0.1:3000", hosted, "0.0.0.0")
    # Another hub (another port), or none hosted: taken to be on the LAN
    assert listens_on_lan("http://127.0.0.1:3001", hosted, "127.0.0.1")
    assert listens_on_lan("http://127.0.0.1:3000", None, "127.0.0.1")


def test_a_guest_link_never_names_loopback_and_carries_no_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pin_lan_hosts(monkeypatch, ["127.0.0.1", LAN])
    assert guest_link("http://127.0.0.1:3000", "ABC123", None).url == \
        f"http://{LAN}:3000/r/ABC123"
    assert guest_link("http://0.0.0.0:3000/", "ABC123", None).url == \
        f"http://{LAN}:3000/r/ABC123"
    # A hub elsewhere on the LAN is linked as it is
    assert guest_link("http://10.0.0.9:3000", "ABC123", None).url == \
        "http://10.0.0.9:3000/r/ABC123"
    # Off the LAN: no link, whatever the address, and a reason
    off = guest_link(f"http://{LAN}:3000", "ABC123", None, on_lan=False)
    assert off.url is None and "listens on this computer only" in off.reason
    pin_lan_hosts(monkeypatch, [])
    none = guest_link("http://127.0.0.1:3000", "ABC123", None)
    assert none.url is None
    assert none.reason == ("Guests cannot open this room in a browser: this computer has no"
                           " LAN address. Connect it to a Wi-Fi or wired network, then open"
                           " the room again.")


async def test_the_link_follows_a_new_lan_address_while_the_room_is_open(
    window: MainWindow, hub: HubServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    # Given a room open on the Connect tab, its link on the Wi-Fi's address
    pin_lan_hosts(monkeypatch, [LAN])
    code = await open_room_on(window, hub, "Moving")
    connect = window.room_page.connect_tab
    assert connect.guest_url.text() == f"http://{LAN}:{hub.port}/r/{code}"

    # When the laptop moves to another network (the app's watcher reports new addresses)
    pin_lan_hosts(monkeypatch, ["10.20.30.40"])
    await window.discovery.on_network_changed([])

    # Then the link and the QR code name the new address at once
    moved = f"http://10.20.30.40:{hub.port}/r/{code}"
    assert connect.guest_url.text() == moved
    assert decode_qr(connect, tmp_path / "moved.png") == [moved]

    # And with no network at all, neither is shown: only why
    pin_lan_hosts(monkeypatch, [])
    await window.discovery.on_network_changed([])
    assert connect.guest_url.text() == "" and connect.guest_unavailable.isVisible()
    await finish(window)
