"""Settings read back from disk may be anything (an older or newer app, a hand edit): the
app starts anyway, on defaults for what it cannot use."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from gambiarra_desktop.gui.config import GuiConfig
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.settings import AppSettings
from tests.gui.conftest import finish

BAD_VALUES = {
    "view/theme": "purple",
    "host/port": "99999",
    "agent/port": "-4",
    "agent/enabled": "maybe",
    "terminal/enabled": "[1, 2]",
    "host/rooms": '{"not": "a list"}',
}


def _settings(path: Path) -> AppSettings:
    raw = QSettings(str(path), QSettings.Format.IniFormat)
    for key, value in BAD_VALUES.items():
        raw.setValue(key, value)
    raw.sync()
    return AppSettings(QSettings(str(path), QSettings.Format.IniFormat))


def test_values_the_app_cannot_use_read_as_defaults(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "settings.ini")
    assert settings.theme == "system"
    assert settings.host_port == 3000
    assert settings.agent_port == 4000
    assert settings.agent_enabled is False and settings.terminal_enabled is False
    assert settings.hosted_rooms == []


async def test_the_window_starts_with_an_unknown_theme_in_the_file(tmp_path: Path) -> None:
    # An unknown theme used to stop the app at start with a KeyError.
    settings = _settings(tmp_path / "settings.ini")
    config = GuiConfig(data_dir=tmp_path / "hub", host_bind="127.0.0.1", host_port=0,
                       mdns_interface="127.0.0.1", cooperating_mdns=True)
    window = MainWindow(config, settings)
    try:
        window.show()
        checked = [action.text() for action in window.menuBar().actions()[1].menu().actions()
                   if action.isChecked()]
        assert checked == ["Follow the system"]
    finally:
        await finish(window)
        window.close()
