"""Layout of a room: its code, and tabs for who is in it, sharing, connecting, a playground."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.gui.connect_view import ConnectTab
from gambiarra_desktop.gui.copy_feedback import flash_copied
from gambiarra_desktop.gui.elided_label import ElidedLabel
from gambiarra_desktop.gui.participants_view import ParticipantsTab
from gambiarra_desktop.gui.playground_view import PlaygroundTab
from gambiarra_desktop.gui.room_notice_view import RoomNotice
from gambiarra_desktop.gui.share_view import ShareTab
from gambiarra_desktop.gui.window_fit import StackFit


class RoomPage(QWidget):
    copy_code_clicked = Signal()
    leave_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("page")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 16)  # Fits 800x600 beside the sidebar.
        header = QHBoxLayout()
        titles = QVBoxLayout()
        self.title = ElidedLabel("Room")  # A 96-character name must not widen the window.
        self.title.setObjectName("pageTitle")
        self.subtitle = ElidedLabel("")
        self.subtitle.setObjectName("muted")
        titles.addWidget(self.title)
        titles.addWidget(self.subtitle)
        header.addLayout(titles, 1)
        code_box = QVBoxLayout()
        code_caption = QLabel("ROOM CODE")
        code_caption.setObjectName("sectionTitle")
        code_caption.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.code = QLabel("------")
        self.code.setObjectName("roomCode")
        self.code.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.code.setAccessibleName("Room code")
        code_box.addWidget(code_caption)
        code_box.addWidget(self.code)
        header.addLayout(code_box)
        buttons = QVBoxLayout()
        self.copy_code = QPushButton("Copy code")
        self.copy_code.clicked.connect(self.copy_code_clicked)
        self.copy_code.clicked.connect(lambda: flash_copied(self.copy_code))
        self.leave = QPushButton("Back to hub")
        self.leave.clicked.connect(self.leave_clicked)
        buttons.addWidget(self.copy_code)
        buttons.addWidget(self.leave)
        header.addLayout(buttons)
        layout.addLayout(header)
        self.notice = RoomNotice()  # The hub's answers, said in place (room_access.py).
        layout.addWidget(self.notice)
        self.tabs = QTabWidget()
        self.participants = ParticipantsTab()
        self.share = ShareTab()
        self.connect_tab = ConnectTab()
        self.playground = PlaygroundTab()
        self.tabs.addTab(self.participants, "Participants")
        self.tabs.addTab(self.share, "Share my model")
        self.tabs.addTab(self.connect_tab, "Connect")
        self.tabs.addTab(self.playground, "Playground")
        layout.addWidget(self.tabs, 1)
        # A tab widget asks for the widest of all its tabs, so one wide tab once widened
        # them all past an 800-px window: it asks for the tab on screen only.
        stack = self.tabs.findChild(QStackedWidget)
        if stack is not None:
            self._tabs_fit = StackFit(stack)
        self.tabs.currentChanged.connect(lambda _index: self.tabs.updateGeometry())
