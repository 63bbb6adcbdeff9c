"""Layout of the Gateway page: the hosted hub's models by layer, its providers, the
configuration switches and the admin password. Layout only; gateway_controller wires it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

LAYER_NAMES = ("L0", "L1", "L2", "L3")
PROVIDER_NAMES = ("gambiarra", "oss-local", "openai", "openrouter", "anthropic")
NOT_HOSTING_TEXT = "Host a hub to manage its gateway."
ID_ROLE = Qt.ItemDataRole.UserRole
ENABLED_COLUMN = 4


def _card(title: str) -> tuple[QFrame, QVBoxLayout]:
    card = QFrame()
    card.setObjectName("card")
    layout = QVBoxLayout(card)
    layout.addWidget(QLabel(f"<b>{title}</b>"))
    return card, layout


def _label(name: str) -> QLabel:
    label = QLabel("")
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class ModelForm(QWidget):
    """Add or edit one model entry; ``id`` and ``provider`` are fixed once it exists."""

    def __init__(self) -> None:
        super().__init__()
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.model_id = QLineEdit()
        self.model_id.setPlaceholderText("e.g. my-llama")
        self.provider = QComboBox()
        self.provider.addItems(PROVIDER_NAMES)
        self.api_model_name = QLineEdit()
        self.api_model_name.setPlaceholderText("The model's name at the provider")
        self.layer = QComboBox()
        self.layer.addItems(LAYER_NAMES)
        self.room = QLineEdit()
        self.room.setPlaceholderText("Room code (gambiarra models only)")
        self.priority = QSpinBox()
        self.priority.setRange(-1_000_000, 1_000_000)
        self.relative_cost = QDoubleSpinBox()
        self.relative_cost.setRange(0, 1_000_000)
        self.relative_cost.setDecimals(3)
        self.context_length = QSpinBox()
        self.context_length.setRange(0, 100_000_000)
        self.context_length.setSpecialValueText("unknown")
        self.enabled = QCheckBox("Enabled")
        self.supports_tools = QCheckBox("Takes tools")
        self.supports_vision = QCheckBox("Takes images")
        for text, widget in (("Id", self.model_id), ("Provider", self.provider),
                             ("Model name", self.api_model_name), ("Layer", self.layer),
                             ("Room", self.room), ("Priority (lower first)", self.priority),
                             ("Relative cost", self.relative_cost),
                             ("Context length", self.context_length)):
            widget.setAccessibleName(text)
            form.addRow(text, widget)
        checks = QHBoxLayout()
        for box in (self.enabled, self.supports_tools, self.supports_vision):
            checks.addWidget(box)
        form.addRow("", checks)
        self.provider.currentTextChanged.connect(
            lambda name: self.room.setEnabled(name == "gambiarra"))
        self.clear()

    def clear(self) -> None:
        self.fill({"id": "", "provider": "gambiarra", "apiModelName": "", "layer": "L0",
                   "enabled": True, "priority": 0, "relativeCost": 0.0, "contextLength": None,
                   "supportsTools": True, "supportsVision": False})

    def fill(self, entry: dict[str, Any]) -> None:
        editing = bool(entry.get("id"))
        self.model_id.setText(str(entry.get("id", "")))
        self.model_id.setReadOnly(editing)
        self.provider.setCurrentText(str(entry.get("provider", "gambiarra")))
        self.provider.setEnabled(not editing)
        self.room.setEnabled(self.provider.currentText() == "gambiarra")
        self.api_model_name.setText(str(entry.get("apiModelName", "")))
        self.layer.setCurrentText(str(entry.get("layer", "L0")))
        self.room.setText(str(entry.get("room") or ""))
        self.priority.setValue(int(entry.get("priority", 0)))
        self.relative_cost.setValue(float(entry.get("relativeCost", 0.0)))
        self.context_length.setValue(int(entry.get("contextLength") or 0))
        self.enabled.setChecked(bool(entry.get("enabled", True)))
        self.supports_tools.setChecked(bool(entry.get("supportsTools", True)))
        self.supports_vision.setChecked(bool(entry.get("supportsVision", False)))


class ProviderRow(QWidget):
    """One provider: health dot, base URL, and a key field that never shows a stored key."""

    save_clicked = Signal(str)
    clear_key_clicked = Signal(str)

    def __init__(self, provider_id: str) -> None:
        super().__init__()
        self.provider_id = provider_id
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.health = QLabel("●")
        self.health.setObjectName("statusPill")
        self.name = QLabel(f"<b>{provider_id}</b>")
        self.name.setMinimumWidth(90)
        self.base_url = QLineEdit()
        self.base_url.setAccessibleName(f"{provider_id} base URL")
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setAccessibleName(f"{provider_id} API key")
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(lambda: self.save_clicked.emit(provider_id))
        self.clear_button = QPushButton("Clear key")
        self.clear_button.clicked.connect(lambda: self.clear_key_clicked.emit(provider_id))
        for widget, stretch in ((self.health, 0), (self.name, 0), (self.base_url, 2),
                                (self.api_key, 1), (self.save_button, 0),
                                (self.clear_button, 0)):
            row.addWidget(widget, stretch)


class GatewayPage(QWidget):
    refresh_clicked = Signal()
    login_clicked = Signal()
    copy_clicked = Signal()
    model_chosen = Signal(str)
    new_clicked = Signal()
    save_model_clicked = Signal()
    delete_clicked = Signal()
    move_clicked = Signal(int)  # -1 up (runs earlier), +1 down
    enabled_toggled = Signal(str, bool)
    add_room_clicked = Signal()
    apply_config_clicked = Signal()
    provider_save = Signal(str)
    provider_clear = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("page")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(28, 24, 28, 24)
        head = QHBoxLayout()
        title = QLabel("Gateway")
        title.setObjectName("pageTitle")
        head.addWidget(title, 1)
        self.busy = _label("muted")
        head.addWidget(self.busy)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh_clicked)
        head.addWidget(self.refresh_button)
        outer.addLayout(head)
        self.address = _label("muted")
        outer.addWidget(self.address)
        self.error = _label("errorText")
        outer.addWidget(self.error)
        self.not_hosting = QLabel(NOT_HOSTING_TEXT)
        self.not_hosting.setObjectName("hint")
        self.not_hosting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(self.not_hosting, 1)
        self.content = QWidget()
        body = QVBoxLayout(self.content)
        body.setContentsMargins(0, 0, 0, 0)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setWidget(self.content)
        outer.addWidget(self.scroll_area, 1)
        for card in (self._admin_card(), self._models_card(), self._providers_card(),
                     self._config_card()):
            body.addWidget(card)
        body.addStretch(1)
        self.show_hosting(False)

    def _admin_card(self) -> QFrame:
        card, layout = _card("Admin password")
        row = QHBoxLayout()
        self.password = QLineEdit()
        self.password.setReadOnly(True)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Admin password")
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_clicked)
        row.addWidget(self.password, 1)
        row.addWidget(self.copy_button)
        layout.addLayout(row)
        self.password_hint = _label("hint")
        layout.addWidget(self.password_hint)
        self.login_row = QWidget()
        login = QHBoxLayout(self.login_row)
        login.setContentsMargins(0, 0, 0, 0)
        self.login_password = QLineEdit()
        self.login_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.login_password.setPlaceholderText("Admin password")
        self.login_password.setAccessibleName("Admin password to log in")
        self.login_password.returnPressed.connect(self.login_clicked)
        self.login_button = QPushButton("Log in")
        self.login_button.clicked.connect(self.login_clicked)
        login.addWidget(self.login_password, 1)
        login.addWidget(self.login_button)
        layout.addWidget(self.login_row)
        return card

    def _models_card(self) -> QFrame:
        card, layout = _card("Models by layer")
        hint = _label("hint")
        hint.setText("<code>auto</code> tries the enabled models of its starting layer, lowest"
                     " priority first, then the next layer up. Untick a model to keep"
                     " <code>auto</code> off it.")
        layout.addWidget(hint)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Model", "Provider", "Model name", "Priority", "Enabled"])
        self.tree.setAccessibleName("Models by layer")
        self.tree.setMinimumHeight(220)
        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.currentItemChanged.connect(self._on_current_changed)
        layout.addWidget(self.tree)
        buttons = QHBoxLayout()
        self.up_button = QPushButton("Up")
        self.up_button.setToolTip("Tried earlier in its layer (lower priority)")
        self.up_button.clicked.connect(lambda: self.move_clicked.emit(-1))
        self.down_button = QPushButton("Down")
        self.down_button.clicked.connect(lambda: self.move_clicked.emit(1))
        self.delete_button = QPushButton("Delete")
        self.delete_button.setObjectName("danger")
        self.delete_button.clicked.connect(self.delete_clicked)
        self.new_button = QPushButton("New model")
        self.new_button.clicked.connect(self.new_clicked)
        for button in (self.up_button, self.down_button, self.delete_button, self.new_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.form = ModelForm()
        layout.addWidget(self.form)
        self.save_button = QPushButton("Add model")
        self.save_button.setObjectName("primary")
        self.save_button.clicked.connect(self.save_model_clicked)
        layout.addWidget(self.save_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.form_error = _label("errorText")
        layout.addWidget(self.form_error)
        rooms = QHBoxLayout()
        self.room_combo = QComboBox()
        self.room_combo.setAccessibleName("Room whose models to add")
        self.room_combo.setMinimumWidth(220)
        self.add_room_button = QPushButton("Add this room's models")
        self.add_room_button.clicked.connect(self.add_room_clicked)
        rooms.addWidget(self.room_combo)
        rooms.addWidget(self.add_room_button)
        rooms.addStretch(1)
        layout.addLayout(rooms)
        self.room_result = _label("hint")
        layout.addWidget(self.room_result)
        return card

    def _providers_card(self) -> QFrame:
        card, layout = _card("Providers")
        self.providers_box = QVBoxLayout()
        layout.addLayout(self.providers_box)
        self.provider_rows: dict[str, ProviderRow] = {}
        self.provider_error = _label("errorText")
        layout.addWidget(self.provider_error)
        return card

    def _config_card(self) -> QFrame:
        card, layout = _card("Configuration")
        form = QFormLayout()
        self.default_layer = QComboBox()
        self.default_layer.addItems(LAYER_NAMES)
        self.max_layer = QComboBox()
        self.max_layer.addItems(LAYER_NAMES)
        self.cross_check = QCheckBox("Cross-check answers when a request asks")
        self.auto_escalate = QCheckBox("Escalate to the next model or layer on failure")
        self.cost_tracking = QCheckBox("Track costs")
        self.cost_alert = QDoubleSpinBox()
        self.cost_alert.setRange(0, 1_000_000)
        self.cost_alert.setPrefix("$ ")
        form.addRow("auto starts at", self.default_layer)
        form.addRow("Escalate up to", self.max_layer)
        form.addRow("", self.cross_check)
        form.addRow("", self.auto_escalate)
        form.addRow("", self.cost_tracking)
        form.addRow("Cost alert at", self.cost_alert)
        layout.addLayout(form)
        self.apply_config_button = QPushButton("Apply")
        self.apply_config_button.clicked.connect(self.apply_config_clicked)
        layout.addWidget(self.apply_config_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.config_error = _label("errorText")
        layout.addWidget(self.config_error)
        return card

    def show_hosting(self, hosting: bool) -> None:
        self.not_hosting.setVisible(not hosting)
        self.scroll_area.setVisible(hosting)
        self.refresh_button.setEnabled(hosting)

    def provider_row(self, provider_id: str) -> ProviderRow:
        row = self.provider_rows.get(provider_id)
        if row is None:
            row = self.provider_rows[provider_id] = ProviderRow(provider_id)
            row.save_clicked.connect(self.provider_save)
            row.clear_key_clicked.connect(self.provider_clear)
            self.providers_box.addWidget(row)
        return row

    def model_items(self) -> list[QTreeWidgetItem]:
        """Every model's row, layer by layer, in the order shown."""
        items = []
        for top in range(self.tree.topLevelItemCount()):
            layer = self.tree.topLevelItem(top)
            if layer is not None:
                items += [c for i in range(layer.childCount()) if (c := layer.child(i))]
        return items

    def selected_id(self) -> str | None:
        item = self.tree.currentItem()
        value = item.data(0, ID_ROLE) if item is not None else None
        return str(value) if value else None

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        model_id = item.data(0, ID_ROLE)
        if column == ENABLED_COLUMN and model_id:
            checked = item.checkState(ENABLED_COLUMN) == Qt.CheckState.Checked
            self.enabled_toggled.emit(str(model_id), checked)

    def _on_current_changed(self, item: QTreeWidgetItem | None, _previous: object) -> None:
        model_id = item.data(0, ID_ROLE) if item is not None else None
        if model_id:
            self.model_chosen.emit(str(model_id))
