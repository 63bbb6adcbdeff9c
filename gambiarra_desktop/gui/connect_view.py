"""The Connect tab: the room's web address for guests (a QR code and a link), its OpenAI
base URL and copy-paste snippets for common clients.

The QR code is drawn by segno at a whole number of pixels per module and shown unscaled:
a smoothed QR code blurs, and phone cameras read a crisp one from further away.

Each snippet box is as tall as its text (the Python snippet's last line used to be cut at
a fixed 120 px), and the tab scrolls when the window is too short for all three.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.gui.copy_feedback import flash_copied
from gambiarra_desktop.gui.room_widgets import framed_card
from gambiarra_desktop.web.qr import qr_png_near

GUEST_TITLE = "Open in a browser (phones, no install)"
GUEST_HINT = ("Scan it with a phone on the same network, or send the link: the room opens in"
              " the browser, with nothing to install.")
QR_ACCESSIBLE_NAME = "QR code of the room's web address"
QR_TARGET_PX = 200
"""About how wide the QR code is drawn, quiet zone included (within 180-220 px)."""


def qr_pixmap(url: str, target_px: int = QR_TARGET_PX) -> QPixmap:
    """``url`` as a QR code about ``target_px`` wide, a whole number of pixels a module."""
    pixmap = QPixmap()
    pixmap.loadFromData(qr_png_near(url, target_px), "PNG")
    return pixmap


class SnippetBox(QPlainTextEdit):
    """A read-only code box whose height fits all its lines (long lines scroll sideways)."""

    def __init__(self) -> None:
        super().__init__()
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().blockCountChanged.connect(lambda _count: self.updateGeometry())

    def _fit_height(self) -> int:
        lines = max(1, self.document().blockCount())
        margins = self.contentsMargins()
        viewport = self.viewportMargins()
        return (lines * self.fontMetrics().lineSpacing()
                + int(2 * self.document().documentMargin())
                + margins.top() + margins.bottom() + viewport.top() + viewport.bottom()
                + self.horizontalScrollBar().sizeHint().height() + 2)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override.
        return QSize(super().sizeHint().width(), self._fit_height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override.
        return QSize(super().minimumSizeHint().width(), self._fit_height())


class ConnectTab(QScrollArea):
    copy_requested = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        body.setObjectName("page")
        layout = QVBoxLayout(body)
        layout.addWidget(self._guest_card())
        card, card_layout = framed_card()
        card_layout.addWidget(QLabel("<b>OpenAI base URL</b> — use it in any OpenAI client"))
        row, self.base_url, self.copy_url = self._copy_row(
            "OpenAI base URL", "Copy", "Copy the OpenAI base URL")
        card_layout.addLayout(row)
        layout.addWidget(card)
        self.snippets: dict[str, QPlainTextEdit] = {}
        self.copy_buttons: dict[str, QPushButton] = {}
        for title in ("curl", "Python (openai SDK)", "Open WebUI / Continue"):
            snippet_card, snippet_layout = framed_card()
            head = QHBoxLayout()
            head.addWidget(QLabel(f"<b>{title}</b>"), 1)
            button = QPushButton("Copy")
            button.setAccessibleName(f"Copy the {title} snippet")
            head.addWidget(button)
            snippet_layout.addLayout(head)
            text = SnippetBox()
            text.setFont(QFont("DejaVu Sans Mono", 9))
            text.setAccessibleName(f"{title} snippet")
            snippet_layout.addWidget(text)
            button.clicked.connect(
                lambda _=False, b=button, t=text: self._copy(b, t.toPlainText()))
            self.snippets[title] = text
            self.copy_buttons[title] = button
            layout.addWidget(snippet_card)
        layout.addStretch(1)
        self.setWidget(body)

    def _guest_card(self) -> QFrame:
        """The room's web address for guests: a QR code and a link, or why there is none."""
        card, card_layout = framed_card()
        card_layout.addWidget(QLabel(f"<b>{GUEST_TITLE}</b>"))
        self.guest_link_box = QWidget()
        row = QHBoxLayout(self.guest_link_box)
        row.setContentsMargins(0, 0, 0, 0)
        self.qr = QLabel()
        self.qr.setAccessibleName(QR_ACCESSIBLE_NAME)
        self.qr.setScaledContents(False)  # Never smoothed: drawn at its own pixels.
        self.qr.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.qr, 0, Qt.AlignmentFlag.AlignTop)
        side = QVBoxLayout()
        hint = QLabel(GUEST_HINT)
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        side.addWidget(hint)
        link_row, self.guest_url, self.copy_link = self._copy_row(
            "The room's web address", "Copy link", "Copy the room's web address")
        side.addLayout(link_row)
        side.addStretch(1)
        row.addLayout(side, 1)
        card_layout.addWidget(self.guest_link_box)
        self.guest_unavailable = QLabel()
        self.guest_unavailable.setWordWrap(True)
        self.guest_unavailable.setAccessibleName("Why guests cannot open this room in a browser")
        self.guest_unavailable.hide()
        card_layout.addWidget(self.guest_unavailable)
        self.show_guest_link(None, "")
        return card

    def show_guest_link(self, url: str | None, reason: str) -> None:
        """The room's web address as a QR code and a link; with ``url`` ``None``, neither:
        ``reason`` says why instead."""
        if url:
            pixmap = qr_pixmap(url)
            self.qr.setPixmap(pixmap)
            self.qr.setFixedSize(pixmap.size())
            self.qr.setAccessibleDescription(url)
            self.qr.setToolTip(url)
            self.guest_url.setText(url)
            self.guest_url.setToolTip(url)  # Whole, where a narrow window cuts the box.
            self.guest_url.setCursorPosition(0)
        else:
            self.qr.clear()
            self.qr.setAccessibleDescription("")
            self.qr.setToolTip("")
            self.guest_url.clear()
            self.guest_url.setToolTip("")
        self.guest_link_box.setVisible(bool(url))
        self.guest_unavailable.setText("" if url else reason)
        self.guest_unavailable.setVisible(not url and bool(reason))

    def _copy_row(self, field_name: str, button_text: str,
                  button_name: str) -> tuple[QHBoxLayout, QLineEdit, QPushButton]:
        """A read-only address and the button that copies it."""
        row = QHBoxLayout()
        field = QLineEdit()
        field.setReadOnly(True)
        field.setAccessibleName(field_name)
        button = QPushButton(button_text)
        button.setAccessibleName(button_name)
        button.clicked.connect(lambda: self._copy(button, field.text()))
        row.addWidget(field, 1)
        row.addWidget(button)
        return row, field, button

    def _copy(self, button: QPushButton, text: str) -> None:
        self.copy_requested.emit(text)
        flash_copied(button)
