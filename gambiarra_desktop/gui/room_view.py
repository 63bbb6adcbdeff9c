"""Layout of a room: its code, who is in it, sharing, connecting and a chat playground."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

PARTICIPANT_COLUMNS = ["Nickname", "Model", "Status", "Transport", "Machine", "Served",
                       "Last tok/s"]
SERVED_BY_ME_COLUMNS = ["Person", "Requests", "Tokens"]


def _card() -> tuple[QFrame, QVBoxLayout]:
    frame = QFrame()
    frame.setObjectName("card")
    return frame, QVBoxLayout(frame)


class StatusPill(QLabel):
    """A coloured status word; the colour comes from the stylesheet's ``state`` property."""

    def set_state(self, state: str, text: str) -> None:
        self.setText(text)
        self.setProperty("state", state)
        self.style().unpolish(self)
        self.style().polish(self)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("statusPill")
        self.set_state("stopped", "Stopped")


class ParticipantsTab(QWidget):
    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(PARTICIPANT_COLUMNS))
        self.table.setHorizontalHeaderLabels(PARTICIPANT_COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setAccessibleName("Participants")
        self.empty = QLabel("Nobody shares a model in this room yet. Open “Share my model”.")
        self.empty.setObjectName("hint")
        activity_card, activity_layout = _card()
        activity_layout.addWidget(QLabel("<b>Activity</b>"))
        self.activity = QListWidget()
        self.activity.setObjectName("activity")
        self.activity.setAccessibleName("Room activity")
        activity_layout.addWidget(self.activity)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.table)
        top_layout.addWidget(self.empty)
        self.served_panel = QWidget()  # Shown while this machine shares into the room.
        served_layout = QVBoxLayout(self.served_panel)
        served_layout.setContentsMargins(0, 0, 0, 0)
        served_layout.addWidget(QLabel("<b>Served by my machine</b>"))
        self.served = QTableWidget(0, len(SERVED_BY_ME_COLUMNS))
        self.served.setHorizontalHeaderLabels(SERVED_BY_ME_COLUMNS)
        self.served.setAccessibleName("People served by my machine")
        self.served.verticalHeader().hide()
        self.served.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.served.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.served.setMaximumHeight(150)
        served_layout.addWidget(self.served)
        self.served_hint = QLabel("")
        self.served_hint.setObjectName("hint")
        self.served_hint.setWordWrap(True)
        served_layout.addWidget(self.served_hint)
        self.served_panel.hide()
        top_layout.addWidget(self.served_panel)
        splitter.addWidget(top)
        splitter.addWidget(activity_card)
        splitter.setSizes([300, 200])
        layout.addWidget(splitter)


class ShareTab(QWidget):
    detect_clicked = Signal()
    check_clicked = Signal()
    share_toggled = Signal(bool)

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        card, card_layout = _card()
        form = QFormLayout()
        self.server_combo = QComboBox()
        self.server_combo.setAccessibleName("Model server")
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
        layout.addWidget(card)
        layout.addStretch(1)


class ConnectTab(QWidget):
    copy_requested = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        card, card_layout = _card()
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
            snippet_card, snippet_layout = _card()
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


class PlaygroundTab(QWidget):
    send_clicked = Signal()
    stop_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Model"))
        self.model_combo = QComboBox()
        self.model_combo.setAccessibleName("Model for the playground")
        self.model_combo.setMinimumWidth(260)
        row.addWidget(self.model_combo)
        self.refresh_button = QPushButton("Refresh")
        row.addWidget(self.refresh_button)
        self.cross_check = QCheckBox("Cross-check the answer")
        self.cross_check.setToolTip("auto only: a second model reviews the answer first")
        self.cross_check.hide()
        row.addWidget(self.cross_check)
        row.addStretch(1)
        layout.addLayout(row)
        self.answered_by = QLabel("")
        self.answered_by.setObjectName("muted")
        self.answered_by.setWordWrap(True)
        self.answered_by.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.answered_by)
        self.output = QPlainTextEdit()
        self.output.setObjectName("reply")
        self.output.setReadOnly(True)
        self.output.setAccessibleName("Reply")
        self.output.setPlaceholderText("The reply streams here.")
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


class RoomPage(QWidget):
    copy_code_clicked = Signal()
    leave_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("page")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 20, 28, 20)
        header = QHBoxLayout()
        titles = QVBoxLayout()
        self.title = QLabel("Room")
        self.title.setObjectName("pageTitle")
        self.subtitle = QLabel("")
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
        self.leave = QPushButton("Back to hub")
        self.leave.clicked.connect(self.leave_clicked)
        buttons.addWidget(self.copy_code)
        buttons.addWidget(self.leave)
        header.addLayout(buttons)
        layout.addLayout(header)
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
