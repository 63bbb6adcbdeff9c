"""The core never imports Qt: the headless hub must run where no Qt is installed."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "gambiarra_desktop.protocol",
    "gambiarra_desktop.events",
    "gambiarra_desktop.hub",
    "gambiarra_desktop.hub.server",
    "gambiarra_desktop.discovery.hosting",
    "gambiarra_desktop.discovery.browser",
    "gambiarra_desktop.share.agent",
    "gambiarra_desktop.share.tunnel_client",
    "gambiarra_desktop.hub_client",
    "gambiarra_desktop.commands.serve",
    "gambiarra_desktop.commands.share",
    "gambiarra_desktop.cli",
    "gambiarra_desktop.devtools.fake_openai",
]


def test_qt_is_installed_so_this_test_means_something() -> None:
    import importlib.util

    assert importlib.util.find_spec("PySide6") is not None


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
