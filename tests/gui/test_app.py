"""The app's entry points and what it remembers between runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.theme import PALETTES, stylesheet
from gambiarra_desktop.gui.tray import Tray


def test_self_test_opens_the_window_hosts_a_hub_and_checks_health() -> None:
    result = subprocess.run([sys.executable, "-m", "gambiarra_desktop", "--self-test"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.split("self-test: ", 1)[1])
    assert report["visible"] is True and report["window"] == "Gambiarra"
    assert report["health"]["status"] == "ok" and report["iconDrawn"] is True
    assert report["hub"].startswith("http://127.0.0.1:")
    assert report["hostStatus"].startswith("Hosting on 127.0.0.1:")


def test_settings_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "settings.ini")
    first = AppSettings(QSettings(path, QSettings.Format.IniFormat))
    first.nickname = "Ana"
    first.last_endpoint = "http://127.0.0.1:11434"
    first.last_model = "llama3.2:3b"
    first.remember_hosted_room("K7QX2M")
    first.remember_hosted_room("K7QX2M")
    first.remember_manual_hub("http://192.168.1.5:3000")
    first.theme = "dark"
    first.sync()
    again = AppSettings(QSettings(path, QSettings.Format.IniFormat))
    assert (again.nickname, again.last_endpoint, again.last_model, again.theme) == (
        "Ana", "http://127.0.0.1:11434", "llama3.2:3b", "dark")
    assert again.hosted_rooms == ["K7QX2M"]
    assert again.manual_hubs == ["http://192.168.1.5:3000"]


def test_both_palettes_fill_every_stylesheet_token() -> None:
    for name in PALETTES:
        assert "@" not in stylesheet(name), name


def test_tray_mirrors_the_sharing_state(qapp: QApplication) -> None:
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    tray = Tray(parent)
    tray.set_sharing(True)
    assert tray.share_action.isChecked()
    assert "sharing" in tray.toolTip()
    tray.set_sharing(False)
    assert not tray.share_action.isChecked()
    assert tray.toolTip() == "Gambiarra"
