"""A one-line label that shortens its text with "…" to the width it is given.

A room may be named with 96 characters; a plain QLabel asks for the whole line's width as
its minimum, and the window grew past the screen (2,022 px on a 1,600 px screen) and stayed
that wide on every page. This label asks for a small minimum, shows as much as fits, and
keeps the full text in ``text()``, the tooltip (only when shortened) and the accessible name.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

MIN_CHARS = "Room…"
"""The minimum width is this much text: enough to tell that something is there."""
HINT_MAX_PX = 360
"""The preferred width is capped, so the window's size hint never follows a long name."""


class ElidedLabel(QLabel):
    """A plain-text, single-line label elided on the right; see the module docstring."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(False)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override.
        self._full = text
        self.setAccessibleName(text)
        self._refresh()
        self.updateGeometry()

    def text(self) -> str:
        """The full text, whatever part of it fits on screen."""
        return self._full

    def is_elided(self) -> bool:
        return QLabel.text(self) != self._full

    def _full_width(self) -> int:
        margins = self.contentsMargins()
        return (self.fontMetrics().horizontalAdvance(self._full) + margins.left()
                + margins.right() + 2 * self.margin() + 2)

    def _refresh(self) -> None:
        margins = self.contentsMargins()
        room = max(0, self.width() - margins.left() - margins.right() - 2 * self.margin())
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, room)
        if self._full and not shown:
            shown = "…"
        if QLabel.text(self) != shown:
            super().setText(shown)
        tip = self._full if shown != self._full else ""
        if self.toolTip() != tip:
            self.setToolTip(tip)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override.
        super().resizeEvent(event)
        self._refresh()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override.
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._refresh()  # A stylesheet or theme changed the font, so the fit.

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override.
        height = super().sizeHint().height()
        return QSize(min(self._full_width(), HINT_MAX_PX), height)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override.
        height = super().minimumSizeHint().height()
        wanted = self.fontMetrics().horizontalAdvance(MIN_CHARS) + 4
        return QSize(min(self._full_width(), wanted), height)
