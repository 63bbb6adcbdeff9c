"""Layout of the Usage page: period, charts, the API keys, and the dialogs to make a key.

Widgets only: the controller fills them and reacts to their signals. Dialogs are shown
with ``open()``, never ``exec()``: a nested modal loop would stall the hub and every
transfer sharing this event loop.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.gui.usage_charts import UsageChart
from gambiarra_desktop.usage_text import KEY_COLUMNS, PERIODS, key_row

LOGGED_OUT_TEXT = (
    "Log in on the Gateway page first: this page uses its admin login to read the usage"
    " ledger and manage API keys. (The Gateway page logs in by itself for the hub you host.)")
SHOWN_ONCE_TEXT = (
    "Copy this key now. It is shown only this once: the hub keeps only a hash of it, so"
    " nobody can show it again. Lost keys are revoked and replaced.")
KEY_ID_ROLE = Qt.ItemDataRole.UserRole + 1
REVOKED_COLUMN = KEY_COLUMNS.index("Revoked")


class CreateKeyDialog(QDialog):
    """Name, limits, budget, rooms and priority of a new key. ``submitted`` leaves the
    dialog open: it closes only once the hub made the key, or shows the hub's words."""

    submitted = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New API key")
        self.setObjectName("createKeyDialog")
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setPlaceholderText("alice-laptop")
        self.name.setMaxLength(64)
        self.rpm = QLineEdit()
        self.rpm.setPlaceholderText("no limit of its own")
        self.tpm = QLineEdit()
        self.tpm.setPlaceholderText("no limit")
        self.budget = QLineEdit()
        self.budget.setPlaceholderText("no budget (USD)")
        self.period = QComboBox()
        self.period.addItem("per month", "month")
        self.period.addItem("per day", "day")
        self.rooms = QLineEdit()
        self.rooms.setPlaceholderText("every open room and the gateway (or codes: ABC123, …)")
        self.priority = QSpinBox()
        self.priority.setRange(0, 10)
        self.priority.setToolTip("Higher is served first when a room's queue is busy")
        for label, widget in (("Name", self.name), ("Requests per minute", self.rpm),
                              ("Tokens per minute", self.tpm), ("Budget (USD)", self.budget),
                              ("Budget period", self.period), ("Rooms", self.rooms),
                              ("Priority", self.priority)):
            widget.setAccessibleName(label)
            form.addRow(label, widget)
        layout.addLayout(form)
        self.error = QLabel("")
        self.error.setObjectName("errorText")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        self.create_button = QPushButton("Create key")
        self.create_button.setObjectName("primary")
        self.create_button.setDefault(True)
        self.create_button.clicked.connect(self.submitted)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.create_button)
        layout.addLayout(buttons)

    def fields(self) -> dict[str, Any]:
        """The raw fields, for ``usage_text.key_request`` to check."""
        return {"name": self.name.text(), "rpm": self.rpm.text(), "tpm": self.tpm.text(),
                "budget": self.budget.text(), "period": self.period.currentData(),
                "rooms": self.rooms.text(), "priority": self.priority.value()}


class KeyShownDialog(QDialog):
    """The new key's text, read-only, with a Copy button and the warning that it is the
    only time it is shown."""

    copy_clicked = Signal()

    def __init__(self, name: str, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"API key “{name}”")
        self.setObjectName("keyShownDialog")
        layout = QVBoxLayout(self)
        self.warning = QLabel(SHOWN_ONCE_TEXT)
        self.warning.setObjectName("warningText")
        self.warning.setWordWrap(True)
        layout.addWidget(self.warning)
        row = QHBoxLayout()
        self.key = QLineEdit(key)
        self.key.setReadOnly(True)
        self.key.setAccessibleName("The new API key")
        self.key.setMinimumWidth(460)
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_clicked)
        row.addWidget(self.key, 1)
        row.addWidget(self.copy_button)
        layout.addLayout(row)
        self.copied = QLabel("")
        self.copied.setObjectName("hint")
        layout.addWidget(self.copied)
        done = QPushButton("Done")
        done.clicked.connect(self.accept)
        layout.addWidget(done, alignment=Qt.AlignmentFlag.AlignRight)


class UsagePage(QWidget):
    period_changed = Signal(str)
    refresh_clicked = Signal()
    create_clicked = Signal()
    revoke_clicked = Signal()
    gateway_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("page")
        outer = QVBoxLayout(self)
        title = QLabel("<h2>Usage</h2>")
        outer.addWidget(title)
        self.logged_out = QWidget()
        logged_out_layout = QVBoxLayout(self.logged_out)
        self.logged_out_text = QLabel(LOGGED_OUT_TEXT)
        self.logged_out_text.setWordWrap(True)
        self.gateway_button = QPushButton("Open the Gateway page")
        self.gateway_button.clicked.connect(self.gateway_requested)
        logged_out_layout.addWidget(self.logged_out_text)
        logged_out_layout.addWidget(self.gateway_button, alignment=Qt.AlignmentFlag.AlignLeft)
        logged_out_layout.addStretch(1)
        outer.addWidget(self.logged_out)

        self.content = QWidget()
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.period = QComboBox()
        self.period.setAccessibleName("Period")
        for value, (label, _days) in PERIODS.items():
            self.period.addItem(label, value)
        self.period.setCurrentIndex(1)
        self.period.currentIndexChanged.connect(
            lambda _i: self.period_changed.emit(self.period.currentData()))
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh_clicked)
        self.busy = QLabel("")
        self.busy.setObjectName("hint")
        bar.addWidget(QLabel("Period"))
        bar.addWidget(self.period)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.busy, 1)
        layout.addLayout(bar)
        self.alert = QLabel("")
        self.alert.setObjectName("warningText")
        self.alert.setWordWrap(True)
        self.alert.hide()
        layout.addWidget(self.alert)
        self.error = QLabel("")
        self.error.setObjectName("errorText")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        charts = QGridLayout()
        self.per_day = UsageChart("Tokens and cost per day")
        self.per_person = UsageChart("Per person (API key, else address)")
        self.per_model = UsageChart("Per model")
        charts.addWidget(self.per_day, 0, 0, 1, 2)
        charts.addWidget(self.per_person, 1, 0)
        charts.addWidget(self.per_model, 1, 1)
        layout.addLayout(charts)
        keys_title = QHBoxLayout()
        keys_title.addWidget(QLabel("<b>API keys</b>"), 1)
        self.create_button = QPushButton("Create key…")
        self.create_button.clicked.connect(self.create_clicked)
        self.revoke_button = QPushButton("Revoke…")
        self.revoke_button.clicked.connect(self.revoke_clicked)
        keys_title.addWidget(self.create_button)
        keys_title.addWidget(self.revoke_button)
        layout.addLayout(keys_title)
        self.keys = QTableWidget(0, len(KEY_COLUMNS))
        self.keys.setTabKeyNavigation(False)  # Tab leaves; arrows move within.
        self.keys.setHorizontalHeaderLabels(KEY_COLUMNS)
        self.keys.setAccessibleName("API keys")
        self.keys.verticalHeader().hide()
        self.keys.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.keys.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.keys.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.keys.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.keys.horizontalHeader().setStretchLastSection(True)
        self.keys.setMinimumHeight(160)
        layout.addWidget(self.keys)
        self.keys_hint = QLabel("")
        self.keys_hint.setObjectName("hint")
        self.keys_hint.setWordWrap(True)
        layout.addWidget(self.keys_hint)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.content)
        self.scroll_area = scroll
        outer.addWidget(scroll, 1)
        self.show_logged_in(False)

    def show_logged_in(self, logged_in: bool) -> None:
        self.logged_out.setVisible(not logged_in)
        self.scroll_area.setVisible(logged_in)

    def show_keys(self, keys: list[dict[str, Any]]) -> None:
        selected = self.selected_key_id()
        self.keys.setRowCount(len(keys))
        for row, key in enumerate(keys):
            for column, text in enumerate(key_row(key)):
                item = QTableWidgetItem(text)
                item.setData(KEY_ID_ROLE, key.get("id"))
                self.keys.setItem(row, column, item)
            if key.get("id") == selected:
                self.keys.selectRow(row)
        self.keys_hint.setText("" if keys else
                               "No API keys yet. Create one per person or app to see who"
                               " used what, and to give each its own limits and budget.")

    def selected_key_id(self) -> str | None:
        rows = self.keys.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.keys.item(rows[0].row(), 0)
        return None if item is None else item.data(KEY_ID_ROLE)
