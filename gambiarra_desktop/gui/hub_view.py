"""Layout of a hub's page: its rooms, and a form to create one."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.gui.elided_label import ElidedLabel


class HubPage(QWidget):
    join_clicked = Signal()
    create_clicked = Signal()
    delete_clicked = Signal()
    retry_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("page")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 24, 28, 24)
        layout.setSpacing(12)
        self.title = ElidedLabel("Hub")  # Hub names and addresses come from the network.
        self.title.setObjectName("pageTitle")
        self.address = ElidedLabel("")
        self.address.setObjectName("muted")
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.title)
        layout.addWidget(self.address)
        # A hub that does not answer says so here, with a way to try again.
        self.unreachable = QFrame()
        self.unreachable.setObjectName("card")
        self.unreachable.setAccessibleName("Hub not answering")
        unreachable_row = QHBoxLayout(self.unreachable)
        self.unreachable_text = QLabel("")
        self.unreachable_text.setObjectName("errorText")
        self.unreachable_text.setWordWrap(True)
        self.retry_button = QPushButton("Retry")
        self.retry_button.clicked.connect(self.retry_clicked)
        unreachable_row.addWidget(self.unreachable_text, 1)
        unreachable_row.addWidget(self.retry_button)
        self.unreachable.hide()
        layout.addWidget(self.unreachable)

        rooms_card = QFrame()
        rooms_card.setObjectName("card")
        rooms_layout = QVBoxLayout(rooms_card)
        rooms_layout.addWidget(QLabel("<b>Rooms</b>"))
        self.room_list = QListWidget()
        self.room_list.setAccessibleName("Rooms on this hub")
        self.room_list.itemActivated.connect(lambda _item: self.join_clicked.emit())
        rooms_layout.addWidget(self.room_list, 1)
        self.no_rooms = QLabel("No rooms yet: create the first one below.")
        self.no_rooms.setObjectName("hint")
        rooms_layout.addWidget(self.no_rooms)
        row = QHBoxLayout()
        self.join_password = QLineEdit()
        self.join_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.join_password.setPlaceholderText("This room has a password")
        self.join_password.setAccessibleName("Room password")
        self.join_password.returnPressed.connect(self.join_clicked)
        self.join_password.hide()
        row.addWidget(self.join_password, 1)
        row.addStretch(1)
        self.delete_button = QPushButton("Delete room…")
        self.delete_button.setToolTip(
            "Only for rooms you created, or any room of the hub you host")
        self.delete_button.clicked.connect(self.delete_clicked)
        self.delete_button.setEnabled(False)
        row.addWidget(self.delete_button)
        self.join_button = QPushButton("Join room")
        self.join_button.setObjectName("primary")
        self.join_button.clicked.connect(self.join_clicked)
        row.addWidget(self.join_button)
        rooms_layout.addLayout(row)
        layout.addWidget(rooms_card, 1)
        # Between the two cards, next to both Join room and Create room: what went wrong
        # with either (a wrong password is said right under its field).
        self.error = QLabel("")
        self.error.setObjectName("errorText")
        self.error.setWordWrap(True)
        self.error.setAccessibleName("Problem")

        create_card = QFrame()
        create_card.setObjectName("card")
        form = QFormLayout(create_card)
        form.addRow(QLabel("<b>Create a room</b>"))
        self.room_name = QLineEdit()
        self.room_name.setPlaceholderText("Friday hack")
        self.room_name.setAccessibleName("New room name")
        self.room_password = QLineEdit()
        self.room_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.room_password.setPlaceholderText("Optional")
        self.room_password.setAccessibleName("New room password")
        form.addRow("Name", self.room_name)
        form.addRow("Password", self.room_password)
        self.create_button = QPushButton("Create room")
        self.create_button.clicked.connect(self.create_clicked)
        self.room_name.returnPressed.connect(self.create_clicked)
        form.addRow("", self.create_button)
        layout.addWidget(self.error)
        layout.addWidget(create_card)

    def show_unreachable(self, text: str) -> None:
        """The hub did not answer: its rooms are not shown as if they were there."""
        self.unreachable_text.setText(text)
        self.unreachable.show()
        self.room_list.clear()
        self.no_rooms.hide()
        self.join_button.setEnabled(False)
        self.retry_button.setEnabled(True)

    def show_reachable(self) -> None:
        self.unreachable.hide()
