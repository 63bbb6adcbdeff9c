"""Layout of the Terminal page: the two settings, the SSH host keys waiting to be trusted,
the hosted hub's sessions, the selected session's live output and a line to type into it.

Widgets only: ``terminal_controller.py`` fills them and calls the core. The confirmation
before ending a session is opened with ``open()``, never ``exec()`` (a nested loop would
stall the hub sharing this event loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.terminal.manager import SessionInfo, UnknownHostKey

NOT_HOSTING_TEXT = ("Host a hub to use terminal sessions: they run on the hub this app hosts,"
                    " and only this computer can reach them.")
DISABLED_TEXT = ("Terminal sessions are off on the hub you host. "
                 "<a href='#enable'>Turn them on in the settings above</a>.")
ENABLED_HINT = (
    "Sessions open only from this computer: this page, or a program with the gateway's admin"
    " token. Unless you tick the second box, you are asked before each one opens.")
SESSION_COLUMNS = ("Session", "Type", "Target", "Created", "Connected")
SESSION_ID_ROLE = Qt.ItemDataRole.UserRole + 1
KEYS_TITLE = "SSH host keys waiting"
KEYS_HINT = ("A program asked for an SSH session to a server whose key this hub has not seen."
             " Trust a key only if it is the one the server shows.")
TRUST_DETAILS = (
    "Compare it with what the server shows (on the server: ssh-keygen -lf"
    " /etc/ssh/ssh_host_ed25519_key.pub). A program's next request for this host will then"
    " log in.")


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets so the port stays readable."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _fixed_font() -> QFont:
    """Shells line things up in columns: a monospaced font keeps them lined up."""
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


class TerminalPage(QWidget):
    enable_toggled = Signal(bool)
    skip_local_toggled = Signal(bool)
    new_local_clicked = Signal()
    end_confirmed = Signal(str)  # session id, after the host said yes to the question
    trust_confirmed = Signal(str)  # an SSH host key's fingerprint, after the host said yes
    line_submitted = Signal(str)  # what was typed, without the newline
    session_chosen = Signal(str)  # "" when nothing is selected

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("page")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(28, 24, 28, 24)
        title = QLabel("Terminal")
        title.setObjectName("pageTitle")
        outer.addWidget(title)
        self.error = QLabel("")
        self.error.setObjectName("errorText")
        self.error.setTextFormat(Qt.TextFormat.PlainText)  # Hub words, never markup.
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.error)
        outer.addWidget(self._settings_card())
        self.state = QLabel(NOT_HOSTING_TEXT)
        self.state.setObjectName("hint")
        self.state.setWordWrap(True)
        self.state.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.state.setTextFormat(Qt.TextFormat.RichText)
        self.state.linkActivated.connect(lambda _link: self.focus_enable())
        outer.addWidget(self.state, 1)
        self.content = self._sessions_area()
        outer.addWidget(self.content, 1)
        self.confirm_box: QMessageBox | None = None
        self.trust_box: QMessageBox | None = None
        self._shown_keys: tuple[tuple[str, int, str], ...] = ()
        self.show_state(hosting=False, enabled=False)

    def _settings_card(self) -> QFrame:
        card = QFrame()
        card.setObjectName("card")
        layout = QVBoxLayout(card)
        self.enable_box = QCheckBox("Allow terminal sessions (only from this computer)")
        self.enable_box.toggled.connect(self.enable_toggled)
        self.skip_local_box = QCheckBox("Don't ask before local sessions")
        self.skip_local_box.setToolTip("SSH and Telnet sessions are always asked about")
        self.skip_local_box.toggled.connect(self.skip_local_toggled)
        hint = QLabel(ENABLED_HINT)
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        for widget in (self.enable_box, self.skip_local_box, hint):
            layout.addWidget(widget)
        return card

    def _sessions_area(self) -> QWidget:
        area = QWidget()
        layout = QVBoxLayout(area)
        layout.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        self.new_button = QPushButton("New local session")
        self.new_button.setObjectName("primary")
        self.new_button.setToolTip("A shell on this computer, in your home folder")
        self.new_button.clicked.connect(self.new_local_clicked)
        self.end_button = QPushButton("End session")
        self.end_button.setObjectName("danger")
        self.end_button.clicked.connect(self.ask_end)
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.end_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addWidget(self._keys_card())

        self.table = QTableWidget(0, len(SESSION_COLUMNS))
        self.table.setTabKeyNavigation(False)  # Tab leaves; arrows move within.
        self.table.setHorizontalHeaderLabels(SESSION_COLUMNS)
        self.table.setAccessibleName("Terminal sessions")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)  # Whole ids.
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setAccessibleName("Session output")
        self.output.setFont(_fixed_font())
        self.output.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.output.setPlaceholderText("Pick a session to see its output here.")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.output)
        splitter.setStretchFactor(1, 3)
        layout.addWidget(splitter, 1)

        line = QHBoxLayout()
        self.input = QLineEdit()
        self.input.setAccessibleName("Send to the session")
        self.input.setPlaceholderText("Type a line and press Enter")
        self.input.setFont(_fixed_font())
        self.input.returnPressed.connect(self._submit)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self._submit)
        line.addWidget(self.input, 1)
        line.addWidget(self.send_button)
        layout.addLayout(line)
        return area

    def _keys_card(self) -> QFrame:
        """Hidden while no key waits: most hosts never use SSH from a program."""
        self.keys_card = QFrame()
        self.keys_card.setObjectName("card")
        self.keys_card.setAccessibleName(KEYS_TITLE)
        layout = QVBoxLayout(self.keys_card)
        title = QLabel(KEYS_TITLE)
        title.setObjectName("sectionTitle")
        hint = QLabel(KEYS_HINT)
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        layout.addWidget(title)
        layout.addWidget(hint)
        self.keys_rows = QVBoxLayout()
        layout.addLayout(self.keys_rows)
        self.key_labels: list[QLabel] = []
        self.trust_buttons: list[QPushButton] = []
        self.keys_card.setVisible(False)
        return self.keys_card

    # --- state -----------------------------------------------------------------------
    def show_state(self, *, hosting: bool, enabled: bool) -> None:
        """Sessions show only on a hosted hub with them on; otherwise the page says why."""
        usable = hosting and enabled
        self.state.setText(DISABLED_TEXT if hosting else NOT_HOSTING_TEXT)
        self.state.setVisible(not usable)
        self.content.setVisible(usable)
        self._update_buttons()

    def set_settings(self, enabled: bool, skip_local: bool) -> None:
        """The stored settings, shown without emitting (nothing changed)."""
        for box, value in ((self.enable_box, enabled), (self.skip_local_box, skip_local)):
            box.blockSignals(True)
            box.setChecked(value)
            box.blockSignals(False)

    def focus_enable(self) -> None:
        self.enable_box.setFocus(Qt.FocusReason.OtherFocusReason)

    def set_sessions(self, sessions: Sequence[SessionInfo]) -> None:
        """Rows for the given sessions, keeping the selection when that session remains."""
        chosen = self.selected_session()
        self.table.blockSignals(True)
        self.table.setRowCount(len(sessions))
        for row, info in enumerate(sessions):
            created = datetime.fromtimestamp(info.created_at_ms / 1000)
            cells = (info.id, info.type, info.target, created.strftime("%Y-%m-%d %H:%M:%S"),
                     "yes" if info.connected else "no")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(SESSION_ID_ROLE, info.id)
                self.table.setItem(row, column, item)
        self.table.clearSelection()
        for row, info in enumerate(sessions):
            if info.id == chosen:
                self.table.selectRow(row)
        self.table.blockSignals(False)
        if self.selected_session() != chosen:
            self.session_chosen.emit(self.selected_session())
        self._update_buttons()

    def select_session(self, session_id: str) -> None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(SESSION_ID_ROLE) == session_id:
                self.table.selectRow(row)
                return

    def selected_session(self) -> str:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return ""
        item = self.table.item(rows[0].row(), 0)
        return str(item.data(SESSION_ID_ROLE)) if item is not None else ""

    def _on_selection(self) -> None:
        self._update_buttons()
        self.session_chosen.emit(self.selected_session())

    def _update_buttons(self) -> None:
        chosen = bool(self.selected_session())
        self.end_button.setEnabled(chosen)
        self.send_button.setEnabled(chosen)
        self.input.setEnabled(chosen)

    def set_unknown_keys(self, keys: Sequence[UnknownHostKey]) -> None:
        """One row per waiting key; rebuilt only when the list changed, so a row the host
        is about to click does not move under the pointer on every periodic refresh."""
        shown = tuple((key.host, key.port, key.fingerprint) for key in keys)
        if shown == self._shown_keys:
            return
        self._shown_keys = shown
        while (item := self.keys_rows.takeAt(0)) is not None:
            row = item.layout()
            while row is not None and (child := row.takeAt(0)) is not None:
                widget = child.widget()
                if widget is not None:
                    widget.deleteLater()
            if row is not None:
                row.deleteLater()
        self.key_labels, self.trust_buttons = [], []
        for host, port, fingerprint in shown:
            row = QHBoxLayout()
            label = QLabel(f"{host_port(host, port)}  {fingerprint}")
            label.setTextFormat(Qt.TextFormat.PlainText)  # The caller's host name: never markup.
            label.setFont(_fixed_font())
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            button = QPushButton("Trust…")
            button.setToolTip(f"Trust this key for {host_port(host, port)}")
            button.clicked.connect(
                lambda _checked=False, h=host, p=port, f=fingerprint: self.ask_trust(h, p, f))
            row.addWidget(label, 1)
            row.addWidget(button)
            self.keys_rows.addLayout(row)
            self.key_labels.append(label)
            self.trust_buttons.append(button)
        self.keys_card.setVisible(bool(shown))

    def ask_trust(self, host: str, port: int, fingerprint: str) -> None:
        """Trusting a key lets the next program log in there: asked first, Cancel by default
        (a key trusted by accident is what SSH's host keys exist to prevent)."""
        box = QMessageBox(QMessageBox.Icon.Question, "Trust SSH host key",
                          f"Trust the key {fingerprint} for {host_port(host, port)}?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                          self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # The caller's host name: never markup.
        box.setInformativeText(TRUST_DETAILS)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _result: self._on_trust_answer(box, fingerprint))
        self.trust_box = box
        box.open()

    def _on_trust_answer(self, box: QMessageBox, fingerprint: str) -> None:
        self.trust_box = None
        if box.clickedButton() is box.button(QMessageBox.StandardButton.Yes):
            self.trust_confirmed.emit(fingerprint)

    # --- output ----------------------------------------------------------------------
    def show_output(self, text: str) -> None:
        self.output.setPlainText(text)
        self.output.moveCursor(QTextCursor.MoveOperation.End)

    def append_output(self, text: str) -> None:
        """Appended at the end whatever the user clicked, then scrolled into view."""
        cursor = QTextCursor(self.output.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        bar = self.output.verticalScrollBar()
        bar.setValue(bar.maximum())

    def output_chars(self) -> int:
        return self.output.document().characterCount()

    # --- actions ---------------------------------------------------------------------
    def _submit(self) -> None:
        if self.selected_session():
            self.line_submitted.emit(self.input.text())

    def ask_end(self) -> None:
        """Ending kills the shell and whatever runs in it: asked first."""
        session_id = self.selected_session()
        if not session_id:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "End session",
                          f"End the terminal session {session_id}?",
                          QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("Its shell or connection is closed, and anything still"
                               " running in it is stopped.")
        end = box.addButton("End session", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _result: self._on_end_answer(box, end, session_id))
        self.confirm_box = box
        box.open()

    def _on_end_answer(self, box: QMessageBox, end: object, session_id: str) -> None:
        self.confirm_box = None
        if box.clickedButton() is end:
            self.end_confirmed.emit(session_id)
