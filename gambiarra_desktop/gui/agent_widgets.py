"""The Agent page's building blocks: an approval card, a tool block and the transcript.

Layout only, like ``agent_view.py`` that assembles them. Every text from a model, a command
or a client is shown as plain text in a selectable box, never as markup.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

MAX_BLOCKS = 400
"""Transcript blocks kept on screen; the oldest go first (a long chat stays light)."""
CARD_TEXT_LINES = 12
BOX_CHROME_PX = 28
"""A text box's frame, document margin and stylesheet padding around its lines."""
SHORT_HINT_PX = 80
"""The height the transcript and the rules list ask for; they grow into any room left.
Qt's default (about 190 px each) made the page taller than an 800×600 window's, so the
prompt sat below the fold."""


def fixed_font() -> QFont:
    """Commands and diffs line up in columns: a monospaced font keeps them readable."""
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def plain_label(text: str, name: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)  # Model, client or command words.
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        label.setObjectName(name)
    return label


def _code_box(text: str, max_lines: int = CARD_TEXT_LINES) -> QPlainTextEdit:
    """Read-only, selectable, monospaced; as tall as its text up to ``max_lines``."""
    box = QPlainTextEdit(text)
    box.setReadOnly(True)
    box.setFont(fixed_font())
    box.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    fit_lines(box, text, max_lines)
    return box


def fit_lines(box: QPlainTextEdit, text: str, max_lines: int) -> None:
    """Tall enough for ``text``, at most ``max_lines``. Longer or wrapped text scrolls
    inside the box, with a scroll bar that says so: an approval never hides the tail of a
    command without a sign."""
    lines = min(text.count("\n") + 1, max_lines)  # A last newline is a block too.
    box.setFixedHeight((box.fontMetrics().lineSpacing() + 1) * lines + BOX_CHROME_PX)


class ApprovalCard(QFrame):
    """One tool call waiting for a yes: what exactly, which tool, whose model proposed it,
    and Allow once / Always allow / Deny. Deny is the default button."""

    answered = Signal(str, str)  # relay id, "once" | "always" | "deny"

    def __init__(self, relay_id: str, heading: str, exact: str, proposed: str, source: str,
                 rule_words: str, can_always: bool) -> None:
        super().__init__()
        self.relay_id = relay_id
        self.setObjectName("card")
        self.setAccessibleName(f"Approval: {heading}")
        layout = QVBoxLayout(self)
        top = QHBoxLayout()  # The buttons first in reading order, never scrolled away.
        title = plain_label(f"The agent asks to {heading}", "sectionTitle")
        top.addWidget(title, 1)
        layout.addLayout(top)
        self.exact = _code_box(exact)
        self.exact.setAccessibleName("Exactly what would run")
        layout.addWidget(self.exact)
        self.proposed = plain_label(f"{proposed} · asked by {source}", "muted")
        layout.addWidget(self.proposed)
        self.rule = plain_label(rule_words, "hint")
        layout.addWidget(self.rule)
        self.deny_button = QPushButton("Deny")
        self.deny_button.setDefault(True)
        self.once_button = QPushButton("Allow once")
        self.always_button = QPushButton("Always allow")
        self.always_button.setToolTip(rule_words)
        self.always_button.setEnabled(can_always)
        for button, choice in ((self.deny_button, "deny"), (self.once_button, "once"),
                               (self.always_button, "always")):
            button.clicked.connect(lambda _=False, c=choice: self.answered.emit(relay_id, c))
            top.addWidget(button)


class ToolBlock(QFrame):
    """A tool call in the transcript: the tool, the exact input, then its output."""

    def __init__(self, heading: str, exact: str) -> None:
        super().__init__()
        self.setObjectName("card")
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.heading = plain_label(heading, "sectionTitle")
        self.status = plain_label("", "muted")
        self.status.setWordWrap(False)
        top.addWidget(self.heading, 1)
        top.addWidget(self.status)
        layout.addLayout(top)
        self.input = _code_box(exact, 8)
        self.input.setAccessibleName("Tool input")
        layout.addWidget(self.input)
        self.output = _code_box("", 14)
        self.output.setAccessibleName("Tool output")
        self.output.hide()
        layout.addWidget(self.output)
        self.result_label = plain_label("")
        self.result_label.hide()
        layout.addWidget(self.result_label)

    def set_waiting(self) -> None:
        self.status.setText("waiting for your answer")

    def set_result(self, kind: str, text: str) -> None:
        """The output (monospaced), or the denial / error as a line of its own."""
        if kind == "ok":
            self.status.setText("done")
            self.output.setPlainText(text)
            fit_lines(self.output, text, 14)
            self.output.show()
            return
        self.status.setText(kind)
        self.result_label.setObjectName("errorText" if kind == "error" else "muted")
        self.result_label.setText(text)
        self.result_label.show()

    def text(self) -> str:
        heading = self.heading.text()
        if self.status.text():
            heading += f" ({self.status.text()})"
        shown = [heading, self.input.toPlainText()]
        if self.output.isVisibleTo(self):
            shown.append(self.output.toPlainText())
        if self.result_label.isVisibleTo(self):
            shown.append(self.result_label.text())
        return "\n".join(shown)


class ShortList(QListWidget):
    """A list that asks for :data:`SHORT_HINT_PX` of height, and takes what is left."""

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override.
        return QSize(super().sizeHint().width(), SHORT_HINT_PX)


class Transcript(QScrollArea):
    """The app's chat: prompts, streamed text (deltas appended to their message's block),
    reasoning in a muted style, tool blocks, errors in red. Kept to :data:`MAX_BLOCKS`."""

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setAccessibleName("Agent transcript")
        inner = QWidget()
        self._layout = QVBoxLayout(inner)
        self._layout.addStretch(1)
        self.setWidget(inner)
        self._blocks: list[QWidget] = []
        self._texts: dict[str, QLabel] = {}
        self._tools: dict[str, ToolBlock] = {}
        self.placeholder = plain_label("Ask the agent something below. Each command or file"
                                        " change waits for your approval.", "hint")
        self._add(self.placeholder)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override.
        """Short, as :class:`ShortList` (see :data:`SHORT_HINT_PX`)."""
        return QSize(super().sizeHint().width(), SHORT_HINT_PX)

    def _add(self, widget: QWidget) -> None:
        bar = self.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self._blocks.append(widget)
        while len(self._blocks) > MAX_BLOCKS:
            old = self._blocks.pop(0)
            self._forget(old)
            old.deleteLater()
        if at_end:
            self._scroll_to_end()

    def _forget(self, widget: QWidget) -> None:
        self._texts = {key: label for key, label in self._texts.items() if label is not widget}
        self._tools = {key: block for key, block in self._tools.items() if block is not widget}

    def _scroll_to_end(self) -> None:
        QTimer.singleShot(0, lambda: self.verticalScrollBar().setValue(
            self.verticalScrollBar().maximum()))

    def clear(self) -> None:
        for widget in self._blocks:
            widget.deleteLater()
        self._blocks, self._texts, self._tools = [], {}, {}
        self.placeholder = plain_label("New chat.", "hint")
        self._add(self.placeholder)

    def add_prompt(self, text: str) -> None:
        label = plain_label(f"You: {text}")
        label.setStyleSheet("font-weight: 600;")
        self._add(label)

    def append_text(self, message_id: str, content: str, *, reasoning: bool) -> None:
        """A streamed delta: the first one of a message makes its block, the rest append."""
        key = ("reasoning:" if reasoning else "text:") + message_id
        label = self._texts.get(key)
        if label is None:
            label = plain_label("", "muted" if reasoning else "")
            if reasoning:
                label.setAccessibleName("Reasoning")
                font = label.font()
                font.setItalic(True)
                label.setFont(font)
            self._texts[key] = label
            self._add(label)
        label.setText(label.text() + content)

    def add_tool(self, call_id: str, heading: str, exact: str) -> ToolBlock:
        block = ToolBlock(heading, exact)
        self._tools[call_id] = block
        self._add(block)
        return block

    def tool(self, call_id: str) -> ToolBlock | None:
        return self._tools.get(call_id)

    def add_error(self, text: str) -> None:
        self._add(plain_label(text, "errorText"))

    def add_note(self, text: str) -> None:
        self._add(plain_label(text, "muted"))

    def plain_text(self) -> str:
        """Everything shown, top to bottom (what a test or a copy would read)."""
        parts = []
        for widget in self._blocks:
            if isinstance(widget, ToolBlock | QLabel):
                parts.append(widget.text())
        return "\n".join(parts)


