"""The one helper that finds ``resources/`` (icons, stylesheet), in a checkout and in a
PyInstaller bundle alike."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon


def resources_dir() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def resource_text(name: str) -> str:
    return (resources_dir() / name).read_text(encoding="utf-8")


def icon(name: str) -> QIcon:
    return QIcon(str(resources_dir() / "icons" / f"{name}.svg"))
