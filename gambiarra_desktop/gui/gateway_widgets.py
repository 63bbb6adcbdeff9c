"""The Gateway page's parts: the form for one model entry and one provider's row. Each
fills itself from the API's JSON and reads itself back, so the controller handles none of
the widgets' details."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

LAYER_NAMES = ("L0", "L1", "L2", "L3")
PROVIDER_NAMES = ("gambiarra", "oss-local", "openai", "openrouter", "anthropic")


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

    @property
    def editing(self) -> bool:
        """An existing entry is shown (its id is fixed), not a new one being typed."""
        return self.model_id.isReadOnly()

    def entry(self) -> dict[str, Any]:
        """The form as a ``POST /v1/models`` body; the server checks every field."""
        entry: dict[str, Any] = {
            "id": self.model_id.text().strip(), "provider": self.provider.currentText(),
            "apiModelName": self.api_model_name.text().strip(),
            "layer": self.layer.currentText(), "enabled": self.enabled.isChecked(),
            "priority": self.priority.value(), "relativeCost": self.relative_cost.value(),
            "contextLength": self.context_length.value() or None,
            "supportsTools": self.supports_tools.isChecked(),
            "supportsVision": self.supports_vision.isChecked(),
        }
        if entry["provider"] == "gambiarra":
            entry["room"] = self.room.text().strip().upper() or None
        return entry


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

    def fill(self, provider: dict[str, Any]) -> None:
        """A ``GET /v1/providers`` entry. The key field is emptied: the API never sends a
        stored key, and the placeholder says only whether one is set and where from."""
        healthy = bool(provider.get("healthy"))
        configured = bool(provider.get("hasKey")) or self.provider_id == "oss-local"
        self.health.setProperty("state", "running" if healthy
                                else "failed" if configured else "stopped")
        self.health.style().unpolish(self.health)
        self.health.style().polish(self.health)
        self.health.setToolTip("Answered recently" if healthy
                               else str(provider.get("lastError") or "Not answering"))
        self.base_url.setText(str(provider.get("baseUrl") or ""))
        self.api_key.clear()
        source = provider.get("keySource")
        self.api_key.setPlaceholderText("key set (env)" if source == "env"
                                        else "key set" if provider.get("hasKey") else "API key")
        self.clear_button.setEnabled(source == "admin")
