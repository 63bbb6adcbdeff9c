"""Issue 14 review: the network watcher must not widen mDNS past the chosen interface.

The window is set to browse on 127.0.0.1 only. When that interface has no address any
more (a cable pulled, a Wi-Fi gone), the browser used to move to ``None``, zeroconf's
"every interface" (a café's Wi-Fi, a VPN): it must browse nowhere until the address is
back, then there again.
"""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from gambiarra_desktop.discovery.interfaces import InterfaceAddress
from gambiarra_desktop.gui.main_window import MainWindow
from tests.gui.conftest import finish

LO = InterfaceAddress("lo", "127.0.0.1")


async def test_a_chosen_interface_without_address_browses_nowhere(
    qtbot: QtBot, window: MainWindow
) -> None:
    # Given a window browsing on its chosen interface only
    browser = window.discovery.browser
    assert browser is not None and browser.interfaces == ["127.0.0.1"]
    listed: list[list[InterfaceAddress]] = [[LO]]
    window.discovery.watcher.lister = lambda _interface: listed[-1]
    # When that interface loses its address
    listed.append([])
    assert await window.discovery.watcher.check_now()
    # Then it browses nowhere, not on every interface
    assert browser.interfaces == []
    # And when the address comes back, it browses there again
    listed.append([LO])
    assert await window.discovery.watcher.check_now()
    assert browser.interfaces == ["127.0.0.1"]
    await finish(window)
