"""Small widgets the room's tabs share: a card frame and a coloured status word."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout


def framed_card() -> tuple[QFrame, QVBoxLayout]:
    """A framed panel (styled as ``#card``) and its layout."""
    frame = QFrame()
    frame.setObjectName("card")
    return frame, QVBoxLayout(frame)


class StatusPill(QLabel):
    """A coloured status word; the colour comes from the stylesheet's ``state`` property."""

    def set_state(self, state: str, text: str) -> None:
        self.setText(text)
        self.setProperty("state", state)
        self.style().unpolish(self)
        self.style().polish(self)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("statusPill")
        self.set_state("stopped", "Stopped")
