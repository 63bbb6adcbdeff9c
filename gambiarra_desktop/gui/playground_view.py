"""The Playground tab: a conversation with the room's models. Earlier turns sit in the
transcript; the latest reply streams below it, with who answered and how fast; while the
request waits in the room's queue, its place in line shows."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.gui.window_fit import narrow_combo


class PlaygroundTab(QWidget):
    send_clicked = Signal()
    stop_clicked = Signal()
    new_chat_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Model"))
        self.model_combo = QComboBox()
        self.model_combo.setAccessibleName("Model for the playground")
        narrow_combo(self.model_combo, 10)
        row.addWidget(self.model_combo, 1)
        self.refresh_button = QPushButton("Refresh")
        row.addWidget(self.refresh_button)
        self.new_chat_button = QPushButton("New chat")
        self.new_chat_button.setToolTip("Forget this conversation and start a new one")
        self.new_chat_button.clicked.connect(self.new_chat_clicked)
        row.addWidget(self.new_chat_button)
        layout.addLayout(row)
        self.cross_check = QCheckBox("Cross-check the answer")  # A line of its own.
        self.cross_check.setToolTip("auto only: a second model reviews the answer first")
        self.cross_check.hide()
        layout.addWidget(self.cross_check)
        self.transcript = QTextBrowser()
        self.transcript.setObjectName("transcript")
        self.transcript.setAccessibleName("Conversation so far")
        self.transcript.setPlaceholderText("Earlier turns of this conversation show here.")
        self.transcript.setMinimumHeight(60)  # Both text areas give way on small screens.
        self.transcript.hide()  # Shown once there is an earlier turn.
        layout.addWidget(self.transcript, 1)
        self.answered_by = QLabel("")
        self.answered_by.setObjectName("muted")
        self.answered_by.setWordWrap(True)
        self.answered_by.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.answered_by.hide()  # Each of these lines shows only when it says something.
        layout.addWidget(self.answered_by)
        self.reply_numbers = QLabel("")
        self.reply_numbers.setObjectName("muted")
        self.reply_numbers.setAccessibleName("Time to first token and tokens per second")
        self.reply_numbers.setWordWrap(True)
        self.reply_numbers.hide()
        layout.addWidget(self.reply_numbers)
        self.waiting = QLabel("")
        self.waiting.setObjectName("hint")
        self.waiting.setAccessibleName("Place in the room's queue")
        self.waiting.hide()
        layout.addWidget(self.waiting)
        self.output = QPlainTextEdit()
        self.output.setObjectName("reply")
        self.output.setReadOnly(True)
        self.output.setAccessibleName("Reply")
        self.output.setPlaceholderText("The reply streams here.")
        self.output.setMinimumHeight(60)
        layout.addWidget(self.output, 1)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Ask the room something… (Ctrl+Enter to send)")
        self.prompt.setMaximumHeight(90)
        self.prompt.setAccessibleName("Prompt")
        layout.addWidget(self.prompt)
        buttons = QHBoxLayout()
        self.error = QLabel("")
        self.error.setObjectName("errorText")
        self.error.setWordWrap(True)
        buttons.addWidget(self.error, 1)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop_clicked)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primary")
        self.send_button.clicked.connect(self.send_clicked)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        layout.addLayout(buttons)
        self.send_shortcut = QShortcut(QKeySequence("Ctrl+Return"), self.prompt)
        self.send_shortcut.activated.connect(self.send_clicked)
