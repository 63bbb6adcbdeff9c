"""Light and dark palettes, applied to Qt's palette and to the stylesheet's tokens.

The default follows the system's colour scheme; the View menu can force one.
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from gambiarra_desktop.gui.resources import resource_text

ThemeMode = Literal["system", "light", "dark"]
THEME_MODES: tuple[ThemeMode, ...] = ("system", "light", "dark")

PALETTES: dict[str, dict[str, str]] = {
    "light": {
        "window": "#f6f7fb", "sidebar": "#eef0f6", "card": "#ffffff", "input": "#ffffff",
        "text": "#1d2230", "muted": "#667085", "border": "#d9dce5", "accent": "#e8456b",
        "accentHover": "#d13a5e", "selection": "#fde3ea", "ok": "#15803d", "okBg": "#dcfce7",
        "warn": "#b45309", "warnBg": "#fef3c7", "err": "#b42318", "errBg": "#fee4e2",
    },
    "dark": {
        "window": "#16181f", "sidebar": "#1c1f28", "card": "#232733", "input": "#1b1e27",
        "text": "#e8eaf0", "muted": "#9aa1b2", "border": "#343948", "accent": "#ff6b8b",
        "accentHover": "#ff86a0", "selection": "#4a2733", "ok": "#4ade80", "okBg": "#14351f",
        "warn": "#fbbf24", "warnBg": "#3b2f0d", "err": "#f97066", "errBg": "#3d1a17",
    },
}


def resolve(mode: ThemeMode) -> str:
    if mode != "system":
        return mode
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else None
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def stylesheet(name: str) -> str:
    text = resource_text("style.qss")
    for token, value in PALETTES[name].items():
        text = text.replace(f"@{token}@", value)
    return text


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
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: colors["muted"],
        QPalette.ColorRole.ToolTipBase: colors["card"],
        QPalette.ColorRole.ToolTipText: colors["text"],
    }
    for role, value in roles.items():
        palette.setColor(role, QColor(value))
    app.setPalette(palette)
    app.setStyleSheet(stylesheet(name))
    return name
