"""Keeps keyboard focus away from a dangerous button it was never sent to.

When a focused widget is disabled or hidden (a button that disables itself while its work
runs), Qt hands focus to the next widget in the window's chain, which wraps around to the
sidebar's first button: *Stop hosting*. One stray Space then stops the hub for everyone.
The guard watches focus changes and, when focus lands on a guarded widget only because the
widget that had it went away, gives it back to the nearest usable widget before that one in
the chain (or the page), never a guarded one. A user's own Tab or click is left alone.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QApplication, QWidget

MAX_CHAIN_STEPS = 200
"""How far back along the focus chain to look for a usable widget (bounded walk)."""


class FocusGuard(QObject):
    def __init__(self, app: QApplication, guarded: list[QWidget], fallback: QWidget) -> None:
        super().__init__(fallback)
        self.guarded = guarded
        self.fallback = fallback
        self.redirected = 0
        app.focusChanged.connect(self.on_focus_changed)

    def on_focus_changed(self, old: QWidget | None, new: QWidget | None) -> None:
        if new is None or old is None or not any(new is g for g in self.guarded):
            return
        if old.isEnabled() and old.isVisible():
            return  # The user moved focus there (Tab, a click): theirs to do.
        target = self._before(old)
        if target is not None:
            self.redirected += 1
            target.setFocus(Qt.FocusReason.OtherFocusReason)

    def _before(self, old: QWidget) -> QWidget | None:
        widget = old.previousInFocusChain()
        for _ in range(MAX_CHAIN_STEPS):
            if widget is None or widget is old:
                break
            if (widget.isEnabled() and widget.isVisible()
                    and widget.focusPolicy().value & Qt.FocusPolicy.TabFocus.value
                    and not any(widget is g for g in self.guarded)
                    and self.fallback.isAncestorOf(widget)):
                return widget
            widget = widget.previousInFocusChain()
        return self.fallback if self.fallback.isVisible() else None
