"""The Share my model tab: pick a model server and a model, and one switch to share it.

The switch shows the truth for the room on screen. A share that goes to another room is
said in the "elsewhere" notice, with Move it here and Stop sharing: never stopped
silently because the user looked at another room."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.gui.room_widgets import StatusPill, framed_card
from gambiarra_desktop.gui.window_fit import narrow_combo


class ShareTab(QWidget):
    detect_clicked = Signal()
    check_clicked = Signal()
    share_toggled = Signal(bool)
    move_clicked = Signal()
    stop_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        card, card_layout = framed_card()
        form = QFormLayout()
        self.server_combo = QComboBox()
        self.server_combo.setAccessibleName("Model server")
        narrow_combo(self.server_combo, 16)
        self.detect_button = QPushButton("Look again")
        self.detect_button.clicked.connect(self.detect_clicked)
        server_row = QHBoxLayout()
        server_row.addWidget(self.server_combo, 1)
        server_row.addWidget(self.detect_button)
        form.addRow("Model server", server_row)
        self.endpoint = QLineEdit()
        self.endpoint.setPlaceholderText("http://127.0.0.1:11434")
        self.endpoint.setAccessibleName("Model server address")
        self.check_button = QPushButton("Check")
        self.check_button.clicked.connect(self.check_clicked)
        self.endpoint.returnPressed.connect(self.check_clicked)
        endpoint_row = QHBoxLayout()
        endpoint_row.addWidget(self.endpoint, 1)
        endpoint_row.addWidget(self.check_button)
        form.addRow("Address", endpoint_row)
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.setAccessibleName("Model to share")
        narrow_combo(self.model_combo, 16)
        form.addRow("Model", self.model_combo)
        self.nickname = QLineEdit()
        self.nickname.setAccessibleName("Your nickname")
        form.addRow("Your name", self.nickname)
        card_layout.addLayout(form)
        self.detect_hint = QLabel("")
        self.detect_hint.setObjectName("hint")
        self.detect_hint.setWordWrap(True)
        card_layout.addWidget(self.detect_hint)
        switch_row = QHBoxLayout()
        self.share_switch = QPushButton("Share my model")
        self.share_switch.setObjectName("switch")
        self.share_switch.setCheckable(True)
        self.share_switch.toggled.connect(self.share_toggled)
        self.status = StatusPill()
        switch_row.addWidget(self.share_switch)
        switch_row.addWidget(self.status)
        switch_row.addStretch(1)
        card_layout.addLayout(switch_row)
        self.reason = QLabel("Sharing goes through an outbound tunnel: no port to open.")
        self.reason.setObjectName("hint")
        self.reason.setWordWrap(True)
        card_layout.addWidget(self.reason)
        self.elsewhere = QFrame()
        self.elsewhere.setObjectName("shareElsewhere")
        elsewhere_row = QHBoxLayout(self.elsewhere)
        elsewhere_row.setContentsMargins(0, 0, 0, 0)
        self.elsewhere_text = QLabel("")
        self.elsewhere_text.setWordWrap(True)
        self.move_button = QPushButton("Move it here")
        self.move_button.setToolTip("Stop sharing with the other room and share with this one")
        self.move_button.clicked.connect(self.move_clicked)
        self.stop_button = QPushButton("Stop sharing")
        self.stop_button.clicked.connect(self.stop_clicked)
        elsewhere_row.addWidget(self.elsewhere_text, 1)
        elsewhere_row.addWidget(self.move_button)
        elsewhere_row.addWidget(self.stop_button)
        self.elsewhere.hide()
        card_layout.addWidget(self.elsewhere)
        layout.addWidget(card)
        layout.addStretch(1)
