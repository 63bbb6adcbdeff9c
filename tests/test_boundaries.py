"""The core never imports Qt: the headless hub must run where no Qt is installed.

Every module of the package outside ``gui/`` is imported, found by walking the package, so
a new module is checked the day it is added (no hand-kept list to forget).
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import gambiarra_desktop

QT_PACKAGES = ("PySide6", "PyQt5", "PyQt6", "qasync", "shiboken6")


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(gambiarra_desktop.__path__, "gambiarra_desktop."):
        parts = info.name.split(".")
        if "gui" in parts or parts[-1] == "__main__":
            continue  # The GUI is Qt by design; __main__ starts the GUI.
        names.append(info.name)
    return sorted(names)


def test_qt_is_installed_so_this_test_means_something() -> None:
    import importlib.util

    assert importlib.util.find_spec("PySide6") is not None


def test_the_walk_finds_the_core() -> None:
    modules = core_modules()
    for expected in ("gambiarra_desktop.hub.rooms.lifecycle", "gambiarra_desktop.hub.proxy.forward",
                     "gambiarra_desktop.share.agent", "gambiarra_desktop.cli",
                     "gambiarra_desktop.gateway.completions",
                     "gambiarra_desktop.accounting.service"):
        assert expected in modules
    assert not any(".gui" in name for name in modules)


def test_core_imports_no_qt() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {core_modules()!r}: importlib.import_module(name)\n"
        "import gambiarra_desktop.cli as cli\n"
        "cli.build_parser()\n"
        f"qt = sorted(m for m in sys.modules if m.split('.')[0] in {QT_PACKAGES!r})\n"
        "print(','.join(qt))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "", f"core imported Qt: {result.stdout}"


def test_every_core_module_imports_first() -> None:
    """Each module imports on its own, as the first of the package: an import cycle only
    shows when its modules load in one order (``import gambiarra_desktop.gateway.sizing``
    first once failed, while everything worked when ``hub`` happened to load before)."""
    code = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {core_modules()!r}:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('gambiarra_desktop')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "", f"modules that cannot be imported first:\n{result.stdout}"
