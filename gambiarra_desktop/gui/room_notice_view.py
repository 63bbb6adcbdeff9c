"""The room page's notice bar: what stands between the user and a live room, said in
place (never by switching pages): the hub is not answering, the hub is back, or the room
wants its password, with a field and a button to type it again right there."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout

RECONNECTING_TEXT = "Hub not answering — reconnecting…"
BACK_TEXT = "The hub is back: the room is live again."


class RoomNotice(QFrame):
    password_entered = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("card")
        self.setAccessibleName("Room notice")
        layout = QVBoxLayout(self)
        self.message = QLabel("")
        self.message.setObjectName("noticeText")
        self.message.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setObjectName("muted")
        self.detail.setWordWrap(True)
        layout.addWidget(self.message)
        layout.addWidget(self.detail)
        row = QHBoxLayout()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("The room's password")
        self.password.setAccessibleName("Room password")
        self.password.returnPressed.connect(self._submit)
        self.unlock = QPushButton("Open room")
        self.unlock.setObjectName("primary")
        self.unlock.clicked.connect(self._submit)
        row.addWidget(self.password, 1)
        row.addWidget(self.unlock)
        layout.addLayout(row)
        self.clear()

    def _submit(self) -> None:
        if self.password.text():
            self.password_entered.emit(self.password.text())

    def _say(self, message: str, detail: str, asking: bool) -> None:
        self.message.setText(message)
        self.detail.setText(detail)
        self.detail.setVisible(bool(detail))
        self.password.setVisible(asking)
        self.unlock.setVisible(asking)
        self.unlock.setEnabled(True)
        self.show()

    def reconnecting(self, detail: str) -> None:
        self._say(RECONNECTING_TEXT, detail, asking=False)

    def back(self) -> None:
        self._say(BACK_TEXT, "", asking=False)

    def gone(self, detail: str) -> None:
        self._say("This room is no longer on the hub.",
                  f"{detail} Go back to the hub to pick another room.", asking=False)

    def ask_password(self, message: str, detail: str = "") -> None:
        """Ask (again) with the field focused and its text selected, so typing replaces it."""
        self._say(message, detail, asking=True)
        self.password.setFocus()
        self.password.selectAll()

    def checking(self) -> None:
        self.unlock.setEnabled(False)
        self.detail.setText("Checking…")
        self.detail.show()

    def clear(self) -> None:
        self.password.clear()
        self.hide()
