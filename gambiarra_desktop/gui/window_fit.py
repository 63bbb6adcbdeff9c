"""How the main window fits a small screen: down to 800×600, nothing cut off.

Three things kept the window at about 1,150×705 or more: a QStackedWidget asks for the
largest of *all* its pages (the Agent page is 850 px wide), nothing scrolled, and the
sidebar was 300 px whatever the width. Here:

- the stack asks only for its current page (the other pages' size policy is Ignored, the
  usual Qt recipe), and sits in a scroll area, so a page larger than the window scrolls
  instead of growing the window;
- below ``NARROW_BELOW_PX`` the sidebar is ``SIDEBAR_NARROW_PX`` wide, with its margins
  tightened and its page buttons showing the short name before their colon (the full
  text stays in the button's accessible name, and its tooltip says what it opens).
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QWidget,
)

SIDEBAR_WIDE_PX = 300
SIDEBAR_NARROW_PX = 248
NARROW_BELOW_PX = 1000
"""The window width below which the sidebar narrows."""
WIDE_MARGIN_PX = 18
NARROW_MARGIN_PX = 12
FULL_TEXT = "fullText"
"""The dynamic property that keeps a compacted button's full text."""


def narrow_combo(combo: QComboBox, min_chars: int, tooltip: bool = True) -> None:
    """A combo box as wide as its row allows, never wider than the window: by default a
    combo grows to its longest item, and one long model name or server address pushed a
    whole page past 800 px. The full text stays in the list (and the tooltip)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(min_chars)
    if tooltip:
        combo.currentTextChanged.connect(combo.setToolTip)


def scrolled(page: QWidget) -> QScrollArea:
    """``page`` in a frameless scroll area that resizes it to fit when it can."""
    area = QScrollArea()
    area.setObjectName("pageScroll")
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(page)
    return area


class StackFit(QObject):
    """Makes ``stack`` ask for the size of its current page only (see module docstring)."""

    def __init__(self, stack: QStackedWidget) -> None:
        super().__init__(stack)
        self.stack = stack
        self._policies: dict[int, QSizePolicy] = {}
        stack.currentChanged.connect(self._on_current_changed)
        self._on_current_changed(stack.currentIndex())

    def _on_current_changed(self, current: int) -> None:
        if not shiboken6.isValid(self.stack):  # A tab widget's stack emits as it is deleted.
            return
        for index in range(self.stack.count()):
            page = self.stack.widget(index)
            if page is None:
                continue
            key = id(page)
            if key not in self._policies:
                self._policies[key] = page.sizePolicy()
            if index == current:
                page.setSizePolicy(self._policies[key])
            else:
                page.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
            page.updateGeometry()
        self.stack.updateGeometry()


class SidebarFit(QObject):
    """Narrows ``sidebar`` when ``window`` is narrow, and widens it back (module docstring)."""

    def __init__(self, window: QWidget, sidebar: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self.sidebar = sidebar
        self.narrow: bool | None = None
        window.installEventFilter(self)
        self.apply(window.width())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override.
        if watched is self.window and event.type() == QEvent.Type.Resize:
            self.apply(self.window.width())
        return False

    def apply(self, window_width: int) -> None:
        narrow = window_width < NARROW_BELOW_PX
        if narrow == self.narrow:
            return
        self.narrow = narrow
        self.sidebar.setFixedWidth(SIDEBAR_NARROW_PX if narrow else SIDEBAR_WIDE_PX)
        margin = NARROW_MARGIN_PX if narrow else WIDE_MARGIN_PX
        layout = self.sidebar.layout()
        if layout is not None:
            layout.setContentsMargins(margin, margin, margin, margin)
        for button in self.sidebar.findChildren(QPushButton):
            compact(button, narrow)


def compact(button: QPushButton, narrow: bool) -> None:
    """"Terminal: sessions on this computer" reads "Terminal" in a narrow sidebar."""
    full = button.property(FULL_TEXT)
    if not isinstance(full, str):
        full = button.text()
        if ":" not in full:
            return
        button.setProperty(FULL_TEXT, full)
        if not button.accessibleName():
            button.setAccessibleName(full)
    button.setText(full.split(":", 1)[0] if narrow else full)

