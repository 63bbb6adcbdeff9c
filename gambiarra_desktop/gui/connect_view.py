"""The Connect tab: the room's OpenAI base URL and copy-paste snippets for common clients.

Each snippet box is as tall as its text (the Python snippet's last line used to be cut at
a fixed 120 px), and the tab scrolls when the window is too short for all three.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.gui.copy_feedback import flash_copied
from gambiarra_desktop.gui.room_widgets import framed_card


class SnippetBox(QPlainTextEdit):
    """A read-only code box whose height fits all its lines (long lines scroll sideways)."""

    def __init__(self) -> None:
        super().__init__()
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().blockCountChanged.connect(lambda _count: self.updateGeometry())

    def _fit_height(self) -> int:
        lines = max(1, self.document().blockCount())
        margins = self.contentsMargins()
        viewport = self.viewportMargins()
        return (lines * self.fontMetrics().lineSpacing()
                + int(2 * self.document().documentMargin())
                + margins.top() + margins.bottom() + viewport.top() + viewport.bottom()
                + self.horizontalScrollBar().sizeHint().height() + 2)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override.
        return QSize(super().sizeHint().width(), self._fit_height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override.
        return QSize(super().minimumSizeHint().width(), self._fit_height())


class ConnectTab(QScrollArea):
    copy_requested = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        body.setObjectName("page")
        layout = QVBoxLayout(body)
        card, card_layout = framed_card()
        card_layout.addWidget(QLabel("<b>OpenAI base URL</b> — use it in any OpenAI client"))
        row = QHBoxLayout()
        self.base_url = QLineEdit()
        self.base_url.setReadOnly(True)
        self.base_url.setAccessibleName("OpenAI base URL")
        self.copy_url = QPushButton("Copy")
        self.copy_url.setAccessibleName("Copy the OpenAI base URL")
        self.copy_url.clicked.connect(lambda: self._copy(self.copy_url, self.base_url.text()))
        row.addWidget(self.base_url, 1)
        row.addWidget(self.copy_url)
        card_layout.addLayout(row)
        layout.addWidget(card)
        self.snippets: dict[str, QPlainTextEdit] = {}
        self.copy_buttons: dict[str, QPushButton] = {}
        for title in ("curl", "Python (openai SDK)", "Open WebUI / Continue"):
            snippet_card, snippet_layout = framed_card()
            head = QHBoxLayout()
            head.addWidget(QLabel(f"<b>{title}</b>"), 1)
            button = QPushButton("Copy")
            button.setAccessibleName(f"Copy the {title} snippet")
            head.addWidget(button)
            snippet_layout.addLayout(head)
            text = SnippetBox()
            text.setFont(QFont("DejaVu Sans Mono", 9))
            text.setAccessibleName(f"{title} snippet")
            snippet_layout.addWidget(text)
            button.clicked.connect(
                lambda _=False, b=button, t=text: self._copy(b, t.toPlainText()))
            self.snippets[title] = text
            self.copy_buttons[title] = button
            layout.addWidget(snippet_card)
        layout.addStretch(1)
        self.setWidget(body)

    def _copy(self, button: QPushButton, text: str) -> None:
        self.copy_requested.emit(text)
        flash_copied(button)
