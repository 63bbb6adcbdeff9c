"""Light and dark palettes, applied to Qt's palette and to the stylesheet's tokens.

The default follows the system's colour scheme; the View menu can force one.
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from gambiarra_desktop.gui.resources import resource_text, resources_dir

ThemeMode = Literal["system", "light", "dark"]
THEME_MODES: tuple[ThemeMode, ...] = ("system", "light", "dark")
THEME_PROPERTY = "gambiarraTheme"
"""The application property that names the theme applied ("light" or "dark")."""

PALETTES: dict[str, dict[str, str]] = {
    # Every text pair meets WCAG AA (4.5:1) and every control boundary or state 3:1 in both
    # themes; tests/gui/test_window_contrast.py reads these and style.qss to keep it so.
    # "onAccent"/"onOk" are the text on an accent or green fill (dark text in the dark
    # theme: white on its light pink was 2.7:1, on its green 1.74:1); "online"/"offline"
    # colour a participant's status in the room's table.
    "light": {
        "window": "#f6f7fb", "sidebar": "#eef0f6", "card": "#ffffff", "input": "#ffffff",
        "text": "#1d2230", "muted": "#5d6579", "border": "#d9dce5", "accent": "#c8305a",
        "accentHover": "#a52148", "selection": "#fde3ea", "ok": "#15803d", "okBg": "#dcfce7",
        "warn": "#b45309", "warnBg": "#fef3c7", "err": "#b42318", "errBg": "#fee4e2",
        "onAccent": "#ffffff", "onOk": "#ffffff", "primaryRing": "#1d2230",
        "controlBorder": "#80879a", "online": "#15803d", "offline": "#5d6579",
    },
    "dark": {
        "window": "#16181f", "sidebar": "#1c1f28", "card": "#232733", "input": "#1b1e27",
        "text": "#e8eaf0", "muted": "#9aa1b2", "border": "#343948", "accent": "#ff6b8b",
        "accentHover": "#ff86a0", "selection": "#4a2733", "ok": "#4ade80", "okBg": "#14351f",
        "warn": "#fbbf24", "warnBg": "#3b2f0d", "err": "#f97066", "errBg": "#3d1a17",
        "onAccent": "#16181f", "onOk": "#16181f", "primaryRing": "#0b0d12",
        "controlBorder": "#737a8e", "online": "#4ade80", "offline": "#9aa1b2",
    },
}


def resolve(mode: ThemeMode) -> str:
    if mode != "system":
        return mode
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else None
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def stylesheet(name: str) -> str:
    """style.qss with the palette's colours, and @icons@ and @theme@ for the arrow images
    (each theme has its own, drawn in its text colour)."""
    text = resource_text("style.qss")
    for token, value in PALETTES[name].items():
        text = text.replace(f"@{token}@", value)
    icons = (resources_dir() / "icons").as_posix()
    return text.replace("@icons@", icons).replace("@theme@", name)


def token(name: str) -> str:
    """A colour of the theme in use (the light one before any is applied), for the few
    colours set from code rather than the stylesheet."""
    app = QApplication.instance()
    theme = app.property(THEME_PROPERTY) if app is not None else None
    return PALETTES[theme if theme in PALETTES else "light"][name]


def apply_theme(app: QApplication, mode: ThemeMode = "system") -> str:
    name = resolve(mode)
    colors = PALETTES[name]
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: colors["window"], QPalette.ColorRole.Base: colors["input"],
        QPalette.ColorRole.AlternateBase: colors["card"], QPalette.ColorRole.Text: colors["text"],
        QPalette.ColorRole.WindowText: colors["text"],
        QPalette.ColorRole.ButtonText: colors["text"], QPalette.ColorRole.Button: colors["card"],
        QPalette.ColorRole.Highlight: colors["accent"],
        QPalette.ColorRole.HighlightedText: colors["onAccent"],
        QPalette.ColorRole.PlaceholderText: colors["muted"],
        QPalette.ColorRole.ToolTipBase: colors["card"],
        QPalette.ColorRole.ToolTipText: colors["text"],
    }
    for role, value in roles.items():
        palette.setColor(role, QColor(value))
    app.setPalette(palette)
    app.setProperty(THEME_PROPERTY, name)
    app.setStyleSheet(stylesheet(name))
    return name
