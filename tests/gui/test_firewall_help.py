"""Help › Firewall and network explains which ports hosting opens, without blocking the loop."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QMessageBox

from gambiarra_desktop.gui.main_window import MainWindow
from tests.gui.conftest import eventually, finish


def firewall_box() -> QMessageBox | None:
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QMessageBox) and widget.objectName() == "firewallHelp":
            return widget
    return None


async def test_help_menu_explains_the_firewall_while_the_hub_keeps_running(
    window: MainWindow,
) -> None:
    window.sidebar.host_button.click()
    await eventually(lambda: window.host.hosted is not None)
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    action = next(a for a in help_menu.actions() if "Firewall" in a.text())
    action.trigger()
    await eventually(lambda: firewall_box() is not None and firewall_box().isVisible())
    box = firewall_box()
    assert box is not None
    port = window.host.hosted.port
    assert f"TCP port {port}" in box.text() and "UDP port 5353" in box.text()
    assert box.informativeText()
    # The box is window-modal but not a nested loop: the hosted hub still answers.
    import aiohttp

    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{port}/health") as response:
        assert response.status == 200
    box.accept()
    await eventually(lambda: firewall_box() is None or not firewall_box().isVisible())
    await finish(window)
