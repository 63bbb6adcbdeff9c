"""The tray icon: sharing keeps running with the window closed, and Quit is always there.

Its menu says what runs without opening the window: the room shared with and the share's
state, and the port of the hub this app hosts, with *Stop hosting*. The share item is
driven by the share controller (the one home of the share switch); *Stop hosting* is wired
by the window to the host controller's one stop path, so it asks like the sidebar does.
"""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from gambiarra_desktop.gui.resources import icon
from gambiarra_desktop.usage_text import cost_alert_text

COST_ALERT_TITLE = "Gambiarra: cost alert"
APPROVAL_TITLE = "Gambiarra: the agent asks"
MODEL_DOWN_TITLE = "Gambiarra: model server not answering"
APPROVAL_SHOWN_MS = 15000
NOT_SHARING = "Not sharing"
NOT_HOSTING = "Not hosting a hub"


class Tray(QSystemTrayIcon):
    def __init__(self, parent: QWidget) -> None:
        super().__init__(icon("gambiarra"), parent)
        self.setToolTip("Gambiarra")
        menu = QMenu(parent)
        self.show_action = QAction("Show Gambiarra", menu)
        self.share_info = QAction(NOT_SHARING, menu)
        self.share_info.setEnabled(False)  # Information, not a command.
        self.share_action = QAction("Share my model", menu)
        self.share_action.setCheckable(True)
        self.share_action.setEnabled(False)
        self.hosting_info = QAction(NOT_HOSTING, menu)
        self.hosting_info.setEnabled(False)
        self.stop_hosting_action = QAction("Stop hosting", menu)
        self.stop_hosting_action.setEnabled(False)
        self.about_action = QAction("About Gambiarra", menu)
        self.log_folder_action = QAction("Open log folder", menu)
        self.quit_action = QAction("Quit", menu)
        menu.addAction(self.show_action)
        menu.addSeparator()
        menu.addAction(self.share_info)
        menu.addAction(self.share_action)
        menu.addSeparator()
        menu.addAction(self.hosting_info)
        menu.addAction(self.stop_hosting_action)
        menu.addSeparator()
        menu.addAction(self.about_action)
        menu.addAction(self.log_folder_action)
        menu.addAction(self.quit_action)
        self.setContextMenu(menu)
        self._menu = menu
        self._share_line = ""
        self._hosting_line = ""
        self.last_message: tuple[str, str] | None = None

    def set_sharing(self, on: bool, line: str = "") -> None:
        """The share item and icon; ``line`` says what is shared where, and how it goes
        (e.g. "Sharing llama3 → Friday hack: model server not answering")."""
        self.share_action.blockSignals(True)
        self.share_action.setChecked(on)
        self.share_action.blockSignals(False)
        self.setIcon(icon("tray-sharing" if on else "gambiarra"))
        self._share_line = (line or "sharing your model") if on else ""
        self.share_info.setText(line if on and line else NOT_SHARING)
        self._update_tooltip()

    def set_hosting(self, port: int | None) -> None:
        """The hosted hub's port, and *Stop hosting* only while there is one to stop."""
        self._hosting_line = f"hosting a hub on port {port}" if port is not None else ""
        self.hosting_info.setText(f"Hosting a hub on port {port}" if port is not None
                                  else NOT_HOSTING)
        self.stop_hosting_action.setEnabled(port is not None)
        self._update_tooltip()

    def _update_tooltip(self) -> None:
        lines = [line for line in (self._share_line, self._hosting_line) if line]
        self.setToolTip("Gambiarra — " + "; ".join(lines) if lines else "Gambiarra")

    def menu_lines(self) -> list[str]:
        """The menu as its user reads it (separators left out): for tests and logs."""
        return [action.text() for action in self._menu.actions() if not action.isSeparator()]

    def notify_model_down(self, reason: str) -> None:
        """The shared model server stopped answering: said once per outage, since the
        window is often closed while sharing runs."""
        self.last_message = (MODEL_DOWN_TITLE, reason[:1].upper() + reason[1:])
        self.showMessage(*self.last_message, QSystemTrayIcon.MessageIcon.Warning, 10000)

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
