"""The Connect tab: the room's OpenAI base URL and copy-paste snippets for common clients."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.gui.room_widgets import framed_card


class ConnectTab(QWidget):
    copy_requested = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        card, card_layout = framed_card()
        card_layout.addWidget(QLabel("<b>OpenAI base URL</b> — use it in any OpenAI client"))
        row = QHBoxLayout()
        self.base_url = QLineEdit()
        self.base_url.setReadOnly(True)
        self.base_url.setAccessibleName("OpenAI base URL")
        copy = QPushButton("Copy")
        copy.clicked.connect(lambda: self.copy_requested.emit(self.base_url.text()))
        row.addWidget(self.base_url, 1)
        row.addWidget(copy)
        card_layout.addLayout(row)
        layout.addWidget(card)
        self.snippets: dict[str, QPlainTextEdit] = {}
        for title in ("curl", "Python (openai SDK)", "Open WebUI / Continue"):
            snippet_card, snippet_layout = framed_card()
            head = QHBoxLayout()
            head.addWidget(QLabel(f"<b>{title}</b>"), 1)
            button = QPushButton("Copy")
            head.addWidget(button)
            snippet_layout.addLayout(head)
            text = QPlainTextEdit()
            text.setReadOnly(True)
            text.setFont(QFont("DejaVu Sans Mono", 9))
            text.setMaximumHeight(120)
            text.setAccessibleName(f"{title} snippet")
            snippet_layout.addWidget(text)
            button.clicked.connect(
                lambda _=False, t=text: self.copy_requested.emit(t.toPlainText()))
            self.snippets[title] = text
            layout.addWidget(snippet_card)
        layout.addStretch(1)
