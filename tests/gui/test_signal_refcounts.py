"""The Qt binding must not lose references when the app emits signals from Python.

PySide6 6.12.0's ``SignalInstance.emit()`` returns ``True`` without taking a reference to
it, so each emit from Python takes one reference from ``True`` for good; after some
thousands (the bridge emits once per streamed chunk, room event or terminal output) the
interpreter aborts with "Fatal Python error: bool_dealloc". pyproject.toml keeps that
version out; this test says so if a version with the bug comes back.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

EMITS = 2000


class _Emitter(QObject):
    plain = Signal()
    carrying = Signal(object)


def test_emitting_from_python_keeps_true_and_false_alive() -> None:
    emitter = _Emitter()
    received: list[object] = []
    emitter.plain.connect(lambda: received.append(None))
    emitter.carrying.connect(received.append)
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(EMITS):
        emitter.plain.emit()
        emitter.carrying.emit(False)
    received.clear()
    after = sys.getrefcount(True), sys.getrefcount(False)
    # A few references may come and go elsewhere; a lost one per emit is thousands.
    assert abs(after[0] - before[0]) < EMITS // 10, f"True lost {before[0] - after[0]}"
    assert abs(after[1] - before[1]) < EMITS // 10, f"False lost {before[1] - after[1]}"
