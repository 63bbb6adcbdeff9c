"""The "Copied ✓" a Copy button shows for a moment: a copy to the clipboard is otherwise
invisible, and people click again, or paste without knowing what they have."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QPushButton

COPIED_TEXT = "Copied ✓"
COPIED_MS = 1500
RESTING_TEXT = "restingText"
"""The dynamic property that keeps the button's own text while it says "Copied"."""


def flash_copied(button: QPushButton, ms: int = COPIED_MS) -> None:
    """Say "Copied ✓" on ``button`` for ``ms``; a second click restarts the moment.

    The button keeps its width, so the row around it does not jump.
    """
    resting = button.property(RESTING_TEXT)
    if not isinstance(resting, str):
        resting = button.text()
        button.setProperty(RESTING_TEXT, resting)
        button.setMinimumWidth(max(button.sizeHint().width(), _width_for(button, COPIED_TEXT)))
    button.setText(COPIED_TEXT)
    generation = int(button.property("copiedGeneration") or 0) + 1
    button.setProperty("copiedGeneration", generation)

    def restore() -> None:
        if button.property("copiedGeneration") == generation:
            button.setText(resting)

    QTimer.singleShot(ms, button, restore)


def _width_for(button: QPushButton, text: str) -> int:
    shown = button.text()
    button.setText(text)
    width = button.sizeHint().width()
    button.setText(shown)
    return width
