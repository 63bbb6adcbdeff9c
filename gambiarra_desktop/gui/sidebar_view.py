"""Layout of the left column: hosting a hub, and the hubs found on the network."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.gui.resources import icon

LOOK_AGAIN_TEXT = "Look again"
LOOKING_TEXT = "Looking…"
EMPTY_HUBS_TEXT = (
    "No hubs found yet.\n\nCheck that you are on the same Wi-Fi or LAN as the host, that the"
    " network lets devices see each other (guest networks often isolate clients), and that"
    " your firewall allows mDNS (UDP 5353). You can also add a hub by its address."
)


class SidebarView(QWidget):
    host_clicked = Signal()
    gateway_clicked = Signal()
    usage_clicked = Signal()
    terminal_clicked = Signal()
    agent_clicked = Signal()
    retry_port_clicked = Signal(int)
    add_address_submitted = Signal(str)
    look_again_clicked = Signal()
    remove_hub_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("sidebar")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setFixedWidth(300)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 18, 18, 18)
        layout.setSpacing(10)

        title_row = QHBoxLayout()
        logo = QLabel()
        logo.setPixmap(icon("gambiarra").pixmap(32, 32))
        title = QLabel("Gambiarra")
        title.setObjectName("appTitle")
        title_row.addWidget(logo)
        title_row.addWidget(title, 1)
        layout.addLayout(title_row)
        layout.addSpacing(8)

        layout.addWidget(self._section("YOUR HUB"))
        self.host_button = QPushButton("Host a hub")
        self.host_button.setObjectName("primary")
        self.host_button.setToolTip("Run a hub on this computer and publish it on the LAN")
        self.host_button.clicked.connect(self.host_clicked)
        layout.addWidget(self.host_button)
        self.host_status = QLabel("Not hosting. Anyone on your network can use a hub you host.")
        self.host_status.setObjectName("hint")
        self.host_status.setWordWrap(True)
        self.host_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.host_status)
        self.port_row = QWidget()
        port_layout = QHBoxLayout(self.port_row)
        port_layout.setContentsMargins(0, 0, 0, 0)
        self.port_spin = QSpinBox()
        self.port_spin.setRange(1024, 65535)
        self.port_spin.setAccessibleName("Port for the hub")
        self.retry_button = QPushButton("Use this port")
        self.retry_button.clicked.connect(
            lambda: self.retry_port_clicked.emit(self.port_spin.value()))
        port_layout.addWidget(self.port_spin)
        port_layout.addWidget(self.retry_button)
        self.port_row.hide()
        layout.addWidget(self.port_row)
        self.gateway_button = QPushButton("Gateway: models, keys, auto")
        self.gateway_button.setToolTip("Manage the gateway of the hub you host")
        self.gateway_button.clicked.connect(self.gateway_clicked)
        layout.addWidget(self.gateway_button)
        self.usage_button = QPushButton("Usage: keys, cost, who used what")
        self.usage_button.setToolTip("Charts of the gateway's usage, and its API keys")
        self.usage_button.clicked.connect(self.usage_clicked)
        layout.addWidget(self.usage_button)
        self.terminal_button = QPushButton("Terminal: sessions on this computer")
        self.terminal_button.setToolTip("Shells and SSH/Telnet sessions of the hub you host")
        self.terminal_button.clicked.connect(self.terminal_clicked)
        layout.addWidget(self.terminal_button)
        self.agent_button = QPushButton("Agent: a coding agent you approve")
        self.agent_button.setToolTip("Chat with a coding agent that asks before each command,"
                                     " and the agent API for programs on this computer")
        self.agent_button.clicked.connect(self.agent_clicked)
        layout.addWidget(self.agent_button)
        layout.addSpacing(12)

        hubs_title = QHBoxLayout()
        hubs_title.addWidget(self._section("HUBS NEARBY"), 1)
        self.look_again_button = QPushButton(LOOK_AGAIN_TEXT)
        self.look_again_button.setToolTip(
            "Search the network again now, and drop hubs that no longer answer")
        self.look_again_button.clicked.connect(self.look_again_clicked)
        hubs_title.addWidget(self.look_again_button)
        layout.addLayout(hubs_title)
        self.hub_list = QListWidget()
        self.hub_list.setAccessibleName("Hubs on your network")
        self.hub_list.setWordWrap(True)
        self.hub_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # A hub added by address gets "Remove" on right click (the controller builds it).
        self.hub_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        layout.addWidget(self.hub_list, 1)
        self.empty_label = QLabel(EMPTY_HUBS_TEXT)
        self.empty_label.setObjectName("hint")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.empty_label, 1)
        hub_buttons = QHBoxLayout()
        self.add_hub_button = QPushButton("Add hub by address…")
        self.add_hub_button.clicked.connect(self._show_address_row)
        hub_buttons.addWidget(self.add_hub_button, 1)
        self.remove_hub_button = QPushButton("Remove")
        self.remove_hub_button.setToolTip("Remove the selected hub added by address")
        self.remove_hub_button.setAccessibleName("Remove the selected hub")
        self.remove_hub_button.clicked.connect(self.remove_hub_clicked)
        self.remove_hub_button.hide()
        hub_buttons.addWidget(self.remove_hub_button)
        layout.addLayout(hub_buttons)
        self.address_row = QWidget()
        address_layout = QHBoxLayout(self.address_row)
        address_layout.setContentsMargins(0, 0, 0, 0)
        self.address_edit = QLineEdit()
        self.address_edit.setPlaceholderText("192.168.1.5:3000")
        self.address_edit.setAccessibleName("Hub address")
        self.address_button = QPushButton("Add")
        self.address_button.clicked.connect(self._submit_address)
        self.address_edit.returnPressed.connect(self._submit_address)
        address_layout.addWidget(self.address_edit, 1)
        address_layout.addWidget(self.address_button)
        self.address_row.hide()
        layout.addWidget(self.address_row)
        self.address_error = QLabel("")
        self.address_error.setObjectName("errorText")
        self.address_error.setWordWrap(True)
        self.address_error.hide()
        layout.addWidget(self.address_error)

    @staticmethod
    def _section(text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName("sectionTitle")
        return label

    def _show_address_row(self) -> None:
        self.address_row.show()
        self.address_edit.setFocus()

    def _submit_address(self) -> None:
        if self.address_edit.text().strip():
            self.address_submitted_text = self.address_edit.text().strip()
            self.add_address_submitted.emit(self.address_submitted_text)

    def show_address_error(self, message: str) -> None:
        self.address_error.setText(message)
        self.address_error.setVisible(bool(message))

    def show_hub_list_empty(self, empty: bool) -> None:
        """The empty state takes the list's place and says what to check."""
        self.empty_label.setVisible(empty)
        self.hub_list.setVisible(not empty)

    def show_looking(self, looking: bool) -> None:
        """While a fresh search runs, the button says so and waits."""
        self.look_again_button.setText(LOOKING_TEXT if looking else LOOK_AGAIN_TEXT)
        self.look_again_button.setEnabled(not looking)
