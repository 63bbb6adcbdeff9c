"""The "Sharing <model> → <room>" strip above every page.

A share runs on while the user looks at other pages or rooms; this strip keeps it in
sight with its live state (sharing, reconnecting, model server not answering), and a
click on it leads back to the room it goes to.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton

from gambiarra_desktop.gui.elided_label import ElidedLabel
from gambiarra_desktop.gui.room_widgets import StatusPill


class ShareBanner(QFrame):
    clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("card")  # Styled as the app's cards, in both themes.
        self.setAccessibleName("Your share")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        # Elided, full text in the tooltip: a long room name or reason must never widen
        # the window (the banner sits above every page).
        self.text = ElidedLabel("")
        self.status = StatusPill()
        self.reason = ElidedLabel("")
        self.reason.setObjectName("hint")
        self.open_button = QPushButton("Open room")
        self.open_button.setToolTip("Go to the room you share with")
        self.open_button.clicked.connect(self.clicked)
        layout.addWidget(self.text)  # Its (capped) full width first: what is shared where.
        layout.addWidget(self.status)
        layout.addWidget(self.reason, 1)
        layout.addWidget(self.open_button)
        self.hide()

    def show_share(self, model: str, room: str, state: str, state_text: str,
                   reason: str = "") -> None:
        """Show the share of ``model`` with ``room``; ``state`` picks the pill's colour.
        A ``reason`` that starts with the pill's own words shows only the rest."""
        self.text.setText(f"Sharing {model} → {room}")
        self.status.set_state(state, state_text)
        if reason.lower().startswith(state_text.lower()):
            reason = reason[len(state_text):].lstrip(" :;,")
            reason = reason[:1].upper() + reason[1:]
        self.reason.setText(reason)
        self.show()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override.
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mouseReleaseEvent(event)
