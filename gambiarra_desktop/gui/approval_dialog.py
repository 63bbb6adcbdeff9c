"""The host's yes or no before a terminal session opens on the hub this app hosts.

Modeless (shown with ``show()``, never ``exec()``): a nested loop would stall the hub, and
the request it answers must keep its own 60 s clock. Deny is the default: Esc, the close
button and Enter (Deny is the default button) all say no. When the request is settled
elsewhere (the caller's timeout, or it went away) the controller calls :meth:`settle` and
the dialog closes without answering.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.terminal.approvals import ApprovalRequest

WHY_TEXT = (
    "Only allow it if you just started this yourself (a script, the CLI, an editor"
    " plug-in). A session can run any command as you. If you do nothing, it is refused.")


class ApprovalDialog(QDialog):
    answered = Signal(str, bool)  # request id, allow

    def __init__(self, request: ApprovalRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self._done = False
        self.setObjectName("approvalDialog")
        self.setWindowTitle("Allow a terminal session?")
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(self)
        self.message = QLabel(request.words)
        self.message.setObjectName("approvalMessage")
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # The target is the caller's text.
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        where = QLabel(f"Asked from {request.peer or 'this computer'}.")
        where.setObjectName("muted")
        layout.addWidget(where)
        why = QLabel(WHY_TEXT)
        why.setObjectName("hint")
        why.setWordWrap(True)
        layout.addWidget(why)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.deny_button = QPushButton("Deny")
        self.deny_button.setDefault(True)
        self.deny_button.setAutoDefault(True)
        self.deny_button.clicked.connect(self.reject)
        self.allow_button = QPushButton("Allow")
        self.allow_button.setObjectName("danger")
        self.allow_button.setAutoDefault(False)
        self.allow_button.clicked.connect(self.accept)
        buttons.addWidget(self.deny_button)
        buttons.addWidget(self.allow_button)
        layout.addLayout(buttons)
        self.setMinimumWidth(420)

    def accept(self) -> None:
        self._answer(True)
        super().accept()

    def reject(self) -> None:  # Esc and the Deny button.
        self._answer(False)
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override.
        self._answer(False)  # The window's close button: no.
        super().closeEvent(event)

    def settle(self) -> None:
        """Settled elsewhere (timed out, withdrawn): close, saying nothing more."""
        self._done = True
        self.close()

    def _answer(self, allow: bool) -> None:
        if not self._done:
            self._done = True
            self.answered.emit(self.request.id, allow)
