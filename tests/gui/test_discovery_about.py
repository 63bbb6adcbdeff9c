"""Issue 14: Help → About Gambiarra (version, data and log dirs, the project's link) and
Help → Open log folder; the GUI really writes its log file where that menu looks."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMessageBox

from gambiarra_desktop.gui.about_dialog import LOG_FILE_NAME, PROJECT_URL, user_log_path
from gambiarra_desktop.gui.main_window import MainWindow
from tests.gui.conftest import eventually, finish


def help_action(window: MainWindow, text: str) -> QAction:
    for menu_action in window.menuBar().actions():
        if menu_action.text() == "&Help":
            menu = menu_action.menu()
            for action in menu.actions():  # type: ignore[union-attr]
                if action.text().replace("&", "") == text:
                    return action
    raise AssertionError(f"no Help → {text}")


async def test_about_shows_the_version_and_where_data_and_log_live(
    window: MainWindow,
) -> None:
    # When I pick Help → About Gambiarra
    help_action(window, "About Gambiarra").trigger()
    # Then a dialog (not modal: the hub keeps running) tells the version and the paths
    await eventually(lambda: window.about_dialog is not None
                     and window.about_dialog.isVisible())
    about = window.about_dialog
    assert about is not None and not about.isModal()
    assert about.version == importlib.metadata.version("gambiarra-desktop")
    texts = "\n".join(label.text() for label in about.findChildren(type(about.link)))
    assert about.version in texts
    assert str(window.config.data_dir) in about.data_dir.text()
    assert str(window.log_dir) in about.log_dir.text()
    assert window.log_dir == user_log_path()
    assert PROJECT_URL in about.link.text() and about.link.openExternalLinks()
    about.close()
    await finish(window)


async def test_open_log_folder_creates_it_and_opens_it(
    window: MainWindow, tmp_path: Path
) -> None:
    # Given a log folder that does not exist yet, and an opener that records the URL
    opened: list[QUrl] = []
    window.log_dir = tmp_path / "state" / "log"
    window.open_url = lambda url: opened.append(url) or True
    # When I pick Help → Open log folder
    help_action(window, "Open log folder").trigger()
    # Then the folder exists and the file manager is asked to show it
    assert window.log_dir.is_dir()
    assert opened == [QUrl.fromLocalFile(str(window.log_dir))]
    await finish(window)


def test_the_app_writes_its_log_file_where_open_log_folder_looks(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    result = subprocess.run(
        [sys.executable, "-m", "gambiarra_desktop", "--self-test", "--log-dir", str(log_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    log_file = log_dir / LOG_FILE_NAME
    assert log_file.is_file()
    text = log_file.read_text(encoding="utf-8")
    assert "Gambiarra Desktop" in text and "closed" in text


async def test_open_log_folder_says_in_a_box_when_it_cannot(
    window: MainWindow, tmp_path: Path
) -> None:
    # Given a log folder that cannot be made (a file stands where its parent should be)
    (tmp_path / "state").write_text("not a folder")
    window.log_dir = tmp_path / "state" / "log"
    opened: list[QUrl] = []
    window.open_url = lambda url: opened.append(url) or True
    # When I pick Help → Open log folder
    help_action(window, "Open log folder").trigger()
    # Then a box says which folder and why, and nothing is opened
    boxes = [w for w in QApplication.topLevelWidgets()
             if isinstance(w, QMessageBox) and w.objectName() == "logFolderProblem"]
    assert boxes and str(window.log_dir) in boxes[0].text(), boxes
    assert opened == []
    boxes[0].close()
    await finish(window)
