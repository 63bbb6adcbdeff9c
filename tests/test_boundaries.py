"""The core never imports Qt: the headless hub must run where no Qt is installed."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "gambiarra_desktop.protocol",
    "gambiarra_desktop.events",
    "gambiarra_desktop.hub",
    "gambiarra_desktop.hub.server",
    "gambiarra_desktop.cli",
    "gambiarra_desktop.devtools.fake_openai",
]


def test_core_imports_no_qt() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
        "import gambiarra_desktop.cli as cli\n"
        "cli.build_parser()\n"
        "qt = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'PyQt5', 'PyQt6', 'qasync', 'shiboken6'))\n"
        "print(','.join(qt))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "", f"core imported Qt: {result.stdout}"
