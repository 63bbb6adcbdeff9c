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
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.gui.gateway_widgets import LAYER_NAMES, ModelForm, ProviderRow

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
        self.tree.setColumnWidth(0, 300)
        self.tree.setColumnWidth(2, 200)
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
        self.room_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.add_room_button = QPushButton("Add this room's models")
        self.add_room_button.clicked.connect(self.add_room_clicked)
        self.room_password = QLineEdit()
        self.room_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.room_password.setPlaceholderText("Room password")
        self.room_password.setAccessibleName("Password of the chosen room")
        self.room_password.setToolTip("The entries open the room to everyone at the hub's"
                                      " /v1, so the hub asks for its password once (and"
                                      " does not keep it).")
        self.room_password.hide()
        rooms.addWidget(self.room_combo)
        rooms.addWidget(self.room_password)
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

    def show_models(self, models: list[dict[str, Any]], selected: str | None) -> None:
        """The entries under their layers, in the server's order (layer, priority, cost,
        id: the order ``auto`` tries them), ``selected`` kept selected."""
        tree = self.tree
        tree.blockSignals(True)  # Filling the Enabled boxes is not the user toggling them.
        tree.clear()
        layers = {name: QTreeWidgetItem([name, "", "", "", ""]) for name in LAYER_NAMES}
        for item in layers.values():
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            tree.addTopLevelItem(item)
        for model in models:
            item = QTreeWidgetItem([model["id"], model["provider"], model["apiModelName"],
                                    str(model["priority"]), ""])
            item.setData(0, ID_ROLE, model["id"])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(ENABLED_COLUMN, Qt.CheckState.Checked if model["enabled"]
                               else Qt.CheckState.Unchecked)
            layers.get(model["layer"], layers["L3"]).addChild(item)
            if model["id"] == selected:
                tree.setCurrentItem(item)
        for name, item in layers.items():
            count = item.childCount()
            item.setText(0, f"{name} · {count} model" + ("" if count == 1 else "s"))
            item.setExpanded(True)
        tree.blockSignals(False)

    def show_config(self, config: dict[str, Any]) -> None:
        self.default_layer.setCurrentText(str(config.get("defaultLayer", "L0")))
        self.max_layer.setCurrentText(str(config.get("maxEscalationLayer", "L3")))
        self.cross_check.setChecked(bool(config.get("enableCrossCheck")))
        self.auto_escalate.setChecked(bool(config.get("enableAutoEscalate")))
        self.cost_tracking.setChecked(bool(config.get("enableCostTracking")))
        self.cost_alert.setValue(float(config.get("costAlertThreshold", 0.0)))

    def config_changes(self) -> dict[str, Any]:
        """The switches as a ``PUT /v1/config`` body."""
        return {
            "defaultLayer": self.default_layer.currentText(),
            "maxEscalationLayer": self.max_layer.currentText(),
            "enableCrossCheck": self.cross_check.isChecked(),
            "enableAutoEscalate": self.auto_escalate.isChecked(),
            "enableCostTracking": self.cost_tracking.isChecked(),
            "costAlertThreshold": self.cost_alert.value(),
        }
