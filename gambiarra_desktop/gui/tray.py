"""The tray icon: sharing keeps running with the window closed, and Quit is always there."""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from gambiarra_desktop.gui.resources import icon
from gambiarra_desktop.usage_text import cost_alert_text

COST_ALERT_TITLE = "Gambiarra: cost alert"
APPROVAL_TITLE = "Gambiarra: the agent asks"
APPROVAL_SHOWN_MS = 15000


class Tray(QSystemTrayIcon):
    def __init__(self, parent: QWidget) -> None:
        super().__init__(icon("gambiarra"), parent)
        self.setToolTip("Gambiarra")
        menu = QMenu(parent)
        self.show_action = QAction("Show Gambiarra", menu)
        self.share_action = QAction("Share my model", menu)
        self.share_action.setCheckable(True)
        self.share_action.setEnabled(False)
        self.quit_action = QAction("Quit", menu)
        menu.addAction(self.show_action)
        menu.addAction(self.share_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        self.setContextMenu(menu)
        self._menu = menu
        self.last_message: tuple[str, str] | None = None

    def set_sharing(self, on: bool) -> None:
        self.share_action.blockSignals(True)
        self.share_action.setChecked(on)
        self.share_action.blockSignals(False)
        self.setIcon(icon("tray-sharing" if on else "gambiarra"))
        self.setToolTip("Gambiarra — sharing your model" if on else "Gambiarra")

    def notify_cost_alert(self, data: object) -> None:
        """The gateway's spend passed the day's threshold: said once, where it is seen
        even with the window closed."""
        if isinstance(data, dict):
            self.last_message = (COST_ALERT_TITLE, cost_alert_text(data))
            self.showMessage(*self.last_message, QSystemTrayIcon.MessageIcon.Warning, 10000)

    def notify_approval(self, tool: str, what: str) -> None:
        """The agent waits for a yes (``what``: the command or file): said where it is seen
        with the window hidden, since nothing runs until someone answers."""
        self.last_message = (APPROVAL_TITLE, f"{tool}: {what}")
        self.showMessage(*self.last_message, QSystemTrayIcon.MessageIcon.Information,
                         APPROVAL_SHOWN_MS)
