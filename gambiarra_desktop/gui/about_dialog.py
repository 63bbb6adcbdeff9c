"""Help → About Gambiarra, and where the app writes its log.

The dialog answers what a bug report needs first: which version, where the data and the
log are. The paths are selectable text, so they can be pasted into a report as they are.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from platformdirs import user_log_dir
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from gambiarra_desktop import __version__
from gambiarra_desktop.hub.config import APP_DIR_NAME

PROJECT_URL = "https://github.com/arthurbm/gambiarra"
LOG_FILE_NAME = "gambiarra-desktop.log"


def user_log_path() -> Path:
    """The user's log dir for this app (``~/.local/state/…/log`` on Linux, ``Logs`` on
    macOS, ``AppData\\Local\\…\\Logs`` on Windows); not created here."""
    return Path(user_log_dir(APP_DIR_NAME, appauthor=False))


def package_version() -> str:
    """The installed distribution's version (what a packaged build really is), falling
    back to the source tree's when run uninstalled."""
    try:
        return importlib.metadata.version("gambiarra-desktop")
    except importlib.metadata.PackageNotFoundError:
        return __version__


class AboutDialog(QDialog):
    def __init__(self, data_dir: Path, log_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About Gambiarra")
        layout = QVBoxLayout(self)
        title = QLabel(f"Gambiarra Desktop {package_version()}")
        title.setObjectName("pageTitle")
        layout.addWidget(title)
        blurb = QLabel("Pool the local LLM servers on your network behind one"
                       " OpenAI-compatible address.")
        blurb.setWordWrap(True)
        layout.addWidget(blurb)
        self.version = package_version()
        self.data_dir = QLabel(f"Data: {data_dir}")
        self.log_dir = QLabel(f"Log: {log_dir}")
        for label in (self.data_dir, self.log_dir):
            label.setObjectName("hint")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addWidget(label)
        self.link = QLabel(f'<a href="{PROJECT_URL}">{PROJECT_URL}</a>')
        self.link.setOpenExternalLinks(True)
        self.link.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        layout.addWidget(self.link)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
