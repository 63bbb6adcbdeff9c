"""Layout of the Agent page: the agent API's switch, the model and workspace, the approval
cards, the transcript of the app's own chat, the stored "always" rules and the prompt.

Widgets only: ``agent_controller.py`` fills them and calls the core. Every text that comes
from a model, a command or a client is shown as plain text (never markup), and the folder
picker is opened with ``open()``, never ``exec()`` (a nested loop would stall the agent and
the hub sharing this event loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.agent.permissions import Rule
from gambiarra_desktop.gui.agent_widgets import ApprovalCard, ShortList, Transcript, plain_label
from gambiarra_desktop.gui.window_fit import narrow_combo

NOTE_TEXT = ("Files the agent reads and command output are sent to whichever machine serves"
             " the model (in a room: a participant's computer).")
OFF_TEXT = ("Off. Turn it on to chat with the agent here, or to let programs on this computer"
            " use it.")
NO_RULES_TEXT = "No \"always\" rules for this workspace: every tool call asks."
RULE_ROLE = Qt.ItemDataRole.UserRole + 1
APPROVALS_MAX_PX = 420
"""The approval cards' area grows to fit its cards up to this height, then scrolls."""


class AgentPage(QWidget):
    enable_toggled = Signal(bool)
    port_chosen = Signal(int)
    base_url_edited = Signal(str)
    models_refresh_clicked = Signal()
    model_chosen = Signal(str)
    workspace_edited = Signal(str)
    prompt_submitted = Signal(str)
    stop_clicked = Signal()
    new_chat_clicked = Signal()
    relay_answered = Signal(str, str)  # relay id, "once" | "always" | "deny"
    rule_remove_clicked = Signal(object)  # Rule

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("page")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(20, 16, 20, 16)  # Fits 800x600 beside the sidebar.
        title = QLabel("Agent")
        title.setObjectName("pageTitle")
        outer.addWidget(title)
        self.note = plain_label(NOTE_TEXT, "hint")
        self.note.setAccessibleName("Where your files go")
        outer.addWidget(self.note)
        self.error = plain_label("", "errorText")
        outer.addWidget(self.error)
        outer.addWidget(self._server_card())
        outer.addLayout(self._chat_settings())
        self.approvals_area = self._approvals_area()
        outer.addWidget(self.approvals_area)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.transcript = Transcript()
        splitter.addWidget(self.transcript)
        splitter.addWidget(self._rules_panel())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        outer.addWidget(splitter, 1)
        outer.addLayout(self._prompt_row())
        self.folder_dialog: QFileDialog | None = None
        self.cards: dict[str, ApprovalCard] = {}
        self._shown_rules: tuple[str, tuple[Rule, ...]] = ("", ())
        self.set_running(False)

    # --- building --------------------------------------------------------------------
    def _server_card(self) -> QFrame:
        card = QFrame()
        card.setObjectName("card")
        layout = QVBoxLayout(card)
        top = QHBoxLayout()
        self.switch = QPushButton("Agent API on 127.0.0.1:4000")
        self.switch.setObjectName("switch")
        self.switch.setCheckable(True)
        self.switch.setToolTip("Runs the agent in this app; programs on this computer reach"
                               " it with the token in the file named below")
        self.switch.toggled.connect(self.enable_toggled)
        self.state = plain_label(OFF_TEXT, "muted")
        self.state.setAccessibleName("Agent API state")
        top.addWidget(self.switch)
        top.addWidget(self.state, 1)
        layout.addLayout(top)
        self.port_row = QWidget()
        port_layout = QHBoxLayout(self.port_row)
        port_layout.setContentsMargins(0, 0, 0, 0)
        port_layout.addWidget(QLabel("Another port:"))
        self.port_spin = QSpinBox()
        self.port_spin.setRange(1024, 65535)
        self.port_spin.setAccessibleName("Port for the agent API")
        self.port_button = QPushButton("Use this port")
        self.port_button.clicked.connect(lambda: self.port_chosen.emit(self.port_spin.value()))
        port_layout.addWidget(self.port_spin)
        port_layout.addWidget(self.port_button)
        port_layout.addStretch(1)
        self.port_row.hide()
        layout.addWidget(self.port_row)
        url_row = QHBoxLayout()
        url_row.addWidget(QLabel("Models from:"))
        self.base_url = QLineEdit()
        self.base_url.setAccessibleName("Model server address")
        self.base_url.setPlaceholderText("http://127.0.0.1:3000/v1")
        self.base_url.editingFinished.connect(
            lambda: self.base_url_edited.emit(self.base_url.text().strip()))
        url_row.addWidget(self.base_url, 1)
        layout.addLayout(url_row)
        self.config_hint = plain_label("", "hint")
        self.config_hint.hide()
        layout.addWidget(self.config_hint)
        return card

    def _chat_settings(self) -> QVBoxLayout:
        """The model row, then the workspace row under it: side by side they asked for
        about 800 px, and the page scrolled sideways in an 800-px window."""
        rows = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(QLabel("Model:"))
        self.model = QComboBox()
        self.model.setEditable(True)
        narrow_combo(self.model, 12, tooltip=False)
        self.model.setAccessibleName("Model")
        self.model.addItem("auto")
        self.model.currentTextChanged.connect(self.model_chosen)
        row.addWidget(self.model, 1)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("List the models the model server offers")
        self.refresh_button.clicked.connect(self.models_refresh_clicked)
        row.addWidget(self.refresh_button)
        self.model_error = plain_label("", "errorText")
        row.addWidget(self.model_error, 1)
        rows.addLayout(row)
        workspace_row = QHBoxLayout()
        workspace_row.addWidget(QLabel("Workspace:"))
        self.workspace = QLineEdit()
        self.workspace.setAccessibleName("Workspace folder")
        self.workspace.setPlaceholderText("The folder the agent works in")
        self.workspace.setMinimumWidth(160)
        self.workspace.editingFinished.connect(
            lambda: self.workspace_edited.emit(self.workspace.text().strip()))
        workspace_row.addWidget(self.workspace, 1)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self.browse)
        workspace_row.addWidget(self.browse_button)
        rows.addLayout(workspace_row)
        return rows

    def _approvals_area(self) -> QScrollArea:
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setAccessibleName("Waiting for your approval")
        inner = QWidget()
        self.approvals = QVBoxLayout(inner)
        self.approvals.setContentsMargins(0, 0, 0, 0)
        self.approvals.addStretch(1)
        area.setWidget(inner)
        area.hide()
        return area

    def _rules_panel(self) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(8, 0, 0, 0)
        title = QLabel("ALWAYS ALLOWED HERE")
        title.setObjectName("sectionTitle")
        title.setWordWrap(True)  # The panel may be narrow in a small window.
        layout.addWidget(title)
        self.rules_hint = plain_label(NO_RULES_TEXT, "hint")
        layout.addWidget(self.rules_hint)
        self.rules = ShortList()
        self.rules.setAccessibleName("Always-allow rules of this workspace")
        self.rules.setWordWrap(True)
        self.rules.itemSelectionChanged.connect(self._on_rule_selection)
        layout.addWidget(self.rules, 1)
        self.remove_rule_button = QPushButton("Remove")
        self.remove_rule_button.setToolTip("The next such call asks again")
        self.remove_rule_button.setEnabled(False)
        self.remove_rule_button.clicked.connect(self._remove_selected_rule)
        layout.addWidget(self.remove_rule_button)
        return panel

    def _prompt_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.prompt = QLineEdit()
        self.prompt.setAccessibleName("Prompt")
        self.prompt.setPlaceholderText("Ask the agent, then press Enter")
        self.prompt.returnPressed.connect(self._submit)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primary")
        self.send_button.clicked.connect(self._submit)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("danger")
        self.stop_button.setToolTip("Stop the agent: a running command is killed")
        self.stop_button.clicked.connect(self.stop_clicked)
        self.new_button = QPushButton("New chat")
        self.new_button.clicked.connect(self.new_chat_clicked)
        self.status = plain_label("", "muted")
        self.status.setWordWrap(False)
        row.addWidget(self.prompt, 1)
        row.addWidget(self.send_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.new_button)
        row.addWidget(self.status)
        return row

    # --- state -----------------------------------------------------------------------
    def set_switch(self, on: bool, port: int) -> None:
        """The state as it is, shown without emitting (nothing was clicked)."""
        with QSignalBlocker(self.switch):
            self.switch.setChecked(on)
        self.switch.setText(f"Agent API on 127.0.0.1:{port}")

    def set_state(self, text: str) -> None:
        self.state.setText(text)

    def show_port_row(self, suggested: int | None) -> None:
        self.port_row.setVisible(suggested is not None)
        if suggested is not None:
            self.port_spin.setValue(suggested)

    def set_base_url(self, url: str, *, editable: bool, why: str = "") -> None:
        self.base_url.setText(url)
        self.base_url.setReadOnly(not editable)
        self.base_url.setToolTip(why)

    def set_config_hint(self, text: str) -> None:
        self.config_hint.setText(text)
        self.config_hint.setVisible(bool(text))

    def set_models(self, models: Sequence[str], current: str) -> None:
        with QSignalBlocker(self.model):
            self.model.clear()
            self.model.addItems(list(models))
            self.model.setCurrentText(current)

    def set_running(self, running: bool) -> None:
        self.send_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.new_button.setEnabled(not running)
        self.status.setText("Working…" if running else "")

    # --- approvals -------------------------------------------------------------------
    def add_approval(self, card: ApprovalCard) -> None:
        if card.relay_id in self.cards:
            return
        card.answered.connect(self.relay_answered)
        self.cards[card.relay_id] = card
        self.approvals.insertWidget(self.approvals.count() - 1, card)
        self._fit_approvals()

    def _fit_approvals(self) -> None:
        """As tall as the cards (a diff is seen whole), at most :data:`APPROVALS_MAX_PX`:
        more cards scroll, and the transcript keeps its room."""
        self.approvals_area.setVisible(bool(self.cards))
        inner = self.approvals_area.widget()
        if self.cards and inner is not None:
            wanted = inner.sizeHint().height() + 4
            self.approvals_area.setFixedHeight(min(wanted, APPROVALS_MAX_PX))

    def remove_approval(self, relay_id: str) -> None:
        card = self.cards.pop(relay_id, None)
        if card is not None:
            self.approvals.removeWidget(card)
            card.hide()
            card.deleteLater()
        self._fit_approvals()

    # --- rules -----------------------------------------------------------------------
    def set_rules(self, workspace: str, rules: Sequence[tuple[Rule, float]]) -> None:
        """Rebuilt only when changed, so a row about to be clicked does not move."""
        shown = (workspace, tuple(rule for rule, _ in rules))
        if shown == self._shown_rules:
            return
        self._shown_rules = shown
        self.rules.clear()
        for rule, created in rules:
            when = datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M")
            item = QListWidgetItem(f"{rule.tool}: {rule.words} (since {when})")
            item.setData(RULE_ROLE, rule)
            item.setToolTip(rule.words)
            self.rules.addItem(item)
        self.rules_hint.setText(NO_RULES_TEXT if workspace else
                                "Choose a workspace to see its rules.")
        self.rules_hint.setVisible(not rules)
        self.remove_rule_button.setEnabled(False)

    def rule_texts(self) -> list[str]:
        return [self.rules.item(row).text() for row in range(self.rules.count())]

    def _on_rule_selection(self) -> None:
        self.remove_rule_button.setEnabled(bool(self.rules.selectedItems()))

    def _remove_selected_rule(self) -> None:
        for item in self.rules.selectedItems():
            self.rule_remove_clicked.emit(item.data(RULE_ROLE))

    # --- actions ---------------------------------------------------------------------
    def _submit(self) -> None:
        text = self.prompt.text().strip()
        if text and self.send_button.isEnabled():
            self.prompt_submitted.emit(text)

    def browse(self) -> None:
        dialog = QFileDialog(self, "The agent's workspace", self.workspace.text())
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(self._folder_chosen)
        self.folder_dialog = dialog
        dialog.open()

    def _folder_chosen(self, folder: str) -> None:
        self.folder_dialog = None
        if folder:
            self.workspace.setText(folder)
            self.workspace_edited.emit(folder)
