"""Can Qt open a window on this machine? Checked before Qt is imported.

When a library that Qt's platform plugin links against is missing, Qt aborts with "could
not load the Qt platform plugin xcb … xcb-cursor0 or libxcb-cursor0 is needed", even
when that library is installed and another one is the gap; with no display at all it
aborts the same way. This module finds the real cause first, without Qt (the core never
imports it), so the app can name every missing library and the exact ``apt-get`` line,
or send a machine with no screen to the headless hub.

The library lists were read with ``ldd`` off PySide6 6.12's ``plugins/platforms/libqxcb.so``,
``libqwayland.so`` and ``Qt/lib/libQt6{Core,Gui,Widgets,DBus,XcbQpa,WaylandClient}.so.6``;
the package names are Debian 12's (``dpkg -S``), which Ubuntu shares.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

NO_DISPLAY_EXIT_CODE = 2
MISSING_LIBRARIES_EXIT_CODE = 3

COMMON_LIBRARIES: dict[str, str] = {
    # QtCore, QtGui, QtWidgets and QtDBus, whichever platform draws the window.
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
}
XCB_LIBRARIES: dict[str, str] = {
    # The X11 platform plugin (libqxcb.so and libQt6XcbQpa.so.6).
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}
WAYLAND_LIBRARIES: dict[str, str] = {
    # The Wayland platform plugin (libqwayland.so and libQt6WaylandClient.so.6).
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
}
PACKAGES: dict[str, str] = {**COMMON_LIBRARIES, **XCB_LIBRARIES, **WAYLAND_LIBRARIES}

Loader = Callable[[str], str | None]
"""Tries to load a library by soname; returns None, or the soname that could not be found
(the library itself or one it depends on)."""


@dataclass(frozen=True, slots=True)
class DisplayProblem:
    """Why Qt cannot open a window here: what to print and the exit code to use."""

    message: str
    exit_code: int


def load_with_ctypes(soname: str) -> str | None:
    """Load ``soname`` as Qt would (the dynamic loader's own search path and cache).

    A library whose own dependency is missing fails too; the loader's message starts with
    the name it could not open, so the culprit is named rather than the library asked for.
    """
    try:
        ctypes.CDLL(soname)
    except OSError as exc:
        culprit = str(exc).split(":", 1)[0].strip()
        return os.path.basename(culprit) if culprit else soname
    return None


def missing_libraries(sonames: Iterable[str], loader: Loader) -> list[str]:
    """The sonames that cannot be loaded, each once, in the order first found."""
    missing: list[str] = []
    for soname in sonames:
        culprit = loader(soname)
        if culprit is not None and culprit not in missing:
            missing.append(culprit)
    return missing


def install_command(sonames: Iterable[str], as_root: bool) -> str:
    """The ``apt-get`` line that installs the packages holding ``sonames``."""
    packages = sorted({PACKAGES.get(soname, soname) for soname in sonames})
    sudo = "" if as_root else "sudo "
    return f"{sudo}apt-get install -y {' '.join(packages)}"


def _platform_name(environ: Mapping[str, str]) -> str:
    """The platform Qt will try first: ``QT_QPA_PLATFORM`` may list several
    (``wayland;xcb``) and carry options (``xcb:option``)."""
    requested = environ.get("QT_QPA_PLATFORM", "").strip()
    return requested.split(";", 1)[0].split(":", 1)[0].strip().lower()


def _missing_message(kind: str, missing: list[str], as_root: bool) -> DisplayProblem:
    listed = "\n".join(f"  {soname}  (Debian/Ubuntu package {PACKAGES.get(soname, '?')})"
                       for soname in missing)
    return DisplayProblem(
        f"gambiarra-desktop cannot open a window: Qt's {kind} platform needs these"
        f" libraries, which are missing:\n{listed}\n"
        f"Install them, then start the app again:\n"
        f"  {install_command(missing, as_root)}\n"
        f"To run only the hub, with no window: gambiarra serve",
        MISSING_LIBRARIES_EXIT_CODE,
    )


def display_problem(
    environ: Mapping[str, str] | None = None,
    loader: Loader = load_with_ctypes,
    platform: str | None = None,
    frozen: bool | None = None,
    as_root: bool | None = None,
) -> DisplayProblem | None:
    """None when Qt can open its window here, else what stops it.

    Only Linux's own window systems are checked: ``offscreen`` (the self-test, CI) and
    other explicit platforms pass through, as do Windows and macOS, where Qt's wheels
    carry everything. A bundled (PyInstaller) app ships these libraries itself, so only
    the display is checked there.
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    as_root = (hasattr(os, "geteuid") and os.geteuid() == 0) if as_root is None else as_root
    if not platform.startswith("linux"):
        return None
    requested = _platform_name(environ)
    if requested not in ("", "xcb", "wayland", "wayland-egl"):
        return None
    has_x11 = bool(environ.get("DISPLAY"))
    has_wayland = bool(environ.get("WAYLAND_DISPLAY"))
    if requested == "xcb" and not has_x11 or requested == "" and not (has_x11 or has_wayland):
        return DisplayProblem(
            "No display found: DISPLAY and WAYLAND_DISPLAY are not set, so there is no screen"
            " for the window (a server, or an SSH session without -X).\n"
            "Run the hub alone instead, with no window: gambiarra serve"
            " (add --mdns to publish it on the LAN).\n"
            "From this checkout: .venv/bin/gambiarra serve --mdns",
            NO_DISPLAY_EXIT_CODE,
        )
    if frozen:
        return None
    if requested.startswith("wayland") or requested == "" and has_wayland:
        missing = missing_libraries([*COMMON_LIBRARIES, *WAYLAND_LIBRARIES], loader)
        if not missing:
            return None
        if requested.startswith("wayland") or not has_x11:
            return _missing_message("Wayland", missing, as_root)
        # Qt falls back to X11 (XWayland) when its Wayland plugin cannot load.
    missing = missing_libraries([*COMMON_LIBRARIES, *XCB_LIBRARIES], loader)
    return _missing_message("X11 (xcb)", missing, as_root) if missing else None
