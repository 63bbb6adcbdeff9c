"""The check before Qt starts: no display, or the libraries its platform plugin lacks.

The rules are tested as a pure function with a stand-in loader; the app itself is run in
a subprocess with no display, and with two libraries really hidden (root: a private mount
namespace binds /dev/null over them, so the dynamic loader cannot load them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

import pytest

from gambiarra_desktop.qt_libraries import (
    MISSING_LIBRARIES_EXIT_CODE,
    NO_DISPLAY_EXIT_CODE,
    PACKAGES,
    DisplayProblem,
    Loader,
    display_problem,
    install_command,
    load_with_ctypes,
)

REPO = Path(__file__).resolve().parent.parent


def loader_missing(*absent: str, culprit: dict[str, str] | None = None) -> Loader:
    """A loader that cannot load ``absent``; ``culprit`` maps a library to the dependency
    its loading fails on."""
    def load(soname: str) -> str | None:
        if culprit and soname in culprit:
            return culprit[soname]
        return soname if soname in absent else None
    return load


def check(environ: dict[str, str], absent: Iterable[str] = (), platform: str = "linux",
          frozen: bool = False) -> DisplayProblem | None:
    return display_problem(environ, loader_missing(*absent), platform=platform, frozen=frozen,
                           as_root=False)


def test_no_display_points_to_the_headless_hub() -> None:
    problem = check({})
    assert problem is not None and problem.exit_code == NO_DISPLAY_EXIT_CODE == 2
    assert problem.message.startswith("No display found")
    assert "gambiarra serve" in problem.message
    assert check({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}) is not None


@pytest.mark.parametrize("platform_name", ["offscreen", "minimal", "vnc", "offscreen:size=1"])
def test_explicit_headless_platforms_pass(platform_name: str) -> None:
    """--self-test and CI run offscreen with no display and must not be stopped."""
    assert check({"QT_QPA_PLATFORM": platform_name}, absent=PACKAGES) is None


def test_all_libraries_present_passes() -> None:
    assert check({"DISPLAY": ":0"}) is None
    assert check({"WAYLAND_DISPLAY": "wayland-0"}) is None


def test_missing_xcb_libraries_are_named_with_the_apt_line() -> None:
    problem = check({"DISPLAY": ":0"}, absent=["libxcb-icccm.so.4", "libxcb-keysyms.so.1"])
    assert problem is not None and problem.exit_code == MISSING_LIBRARIES_EXIT_CODE
    assert "libxcb-icccm.so.4" in problem.message and "libxcb-keysyms.so.1" in problem.message
    assert "  sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1\n" in problem.message
    assert "cursor" not in problem.message  # Qt's own abort blamed xcb-cursor0.


def test_a_missing_dependency_is_named_not_the_library_that_needs_it() -> None:
    load = loader_missing(culprit={"libxcb-cursor.so.0": "libxcb-render-util.so.0",
                                   "libxcb-render-util.so.0": "libxcb-render-util.so.0"})
    problem = display_problem({"DISPLAY": ":0"}, load, platform="linux", frozen=False,
                              as_root=True)
    assert problem is not None
    assert "libxcb-render-util.so.0  (Debian/Ubuntu package libxcb-render-util0)" in problem.message
    assert "libxcb-cursor.so.0" not in problem.message
    assert "\n  apt-get install -y libxcb-render-util0\n" in problem.message  # Root: no sudo.


def test_wayland_is_checked_and_falls_back_to_x11() -> None:
    wayland = check({"WAYLAND_DISPLAY": "wayland-0"}, absent=["libwayland-cursor.so.0"])
    assert wayland is not None and "Wayland" in wayland.message
    assert "libwayland-cursor0" in wayland.message
    # With X11 too, Qt falls back to xcb (XWayland) when its Wayland plugin cannot load.
    both = {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}
    assert check(both, absent=["libwayland-cursor.so.0"]) is None
    assert check({**both, "QT_QPA_PLATFORM": "wayland"}, absent=["libwayland-cursor.so.0"])


def test_bundled_app_and_other_systems_skip_the_library_check() -> None:
    assert check({"DISPLAY": ":0"}, absent=PACKAGES, frozen=True) is None
    assert check({}, frozen=True) is not None  # Still no display to open a window on.
    assert check({}, absent=PACKAGES, platform="win32") is None
    assert check({}, absent=PACKAGES, platform="darwin") is None


def test_install_command_lists_each_package_once() -> None:
    line = install_command(["libglib-2.0.so.0", "libgthread-2.0.so.0", "libEGL.so.1"], False)
    assert line == "sudo apt-get install -y libegl1 libglib2.0-0"


def test_real_loader() -> None:
    assert load_with_ctypes("libgambiarra-no-such-library.so.0") == (
        "libgambiarra-no-such-library.so.0")
    if sys.platform.startswith("linux"):
        assert load_with_ctypes("libc.so.6") is None


def run_app(
    env: dict[str, str], prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(prefix or []), sys.executable, "-m", "gambiarra_desktop"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def app_env(**extra: str) -> dict[str, str]:
    drop = {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland are Linux's")
def test_app_with_no_display_says_so_instead_of_aborting() -> None:
    result = run_app(app_env())
    assert result.returncode == NO_DISPLAY_EXIT_CODE, result.stderr
    assert "No display found" in result.stderr and "gambiarra serve" in result.stderr
    assert "qt.qpa" not in result.stderr and "Aborted" not in result.stderr


def library_path(soname: str) -> Path | None:
    dirs = [f"/usr/lib/{sysconfig.get_config_var('MULTIARCH') or ''}", "/usr/lib64", "/usr/lib"]
    return next((Path(d, soname) for d in dirs if Path(d, soname).exists()), None)


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                    reason="hides libraries in a private mount namespace (root, Linux)")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_app_names_really_missing_libraries() -> None:
    hidden = ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    paths = [library_path(soname) for soname in hidden]
    if None in paths:
        pytest.skip(f"{hidden} are not installed here")
    mounts = " && ".join(f"mount --bind /dev/null {path}" for path in paths)
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --make-rprivate / && true"],
                           capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr!r}")
    result = run_app(app_env(DISPLAY=":99"),
                     ["unshare", "-m", "sh", "-c", f"{mounts} && exec \"$0\" \"$@\""])
    assert result.returncode == MISSING_LIBRARIES_EXIT_CODE, result.stderr
    assert "libxcb-icccm.so.4  (Debian/Ubuntu package libxcb-icccm4)" in result.stderr
    assert "libxcb-keysyms.so.1  (Debian/Ubuntu package libxcb-keysyms1)" in result.stderr
    assert "apt-get install -y libxcb-icccm4 libxcb-keysyms1\n" in result.stderr
    assert "xcb-cursor0" not in result.stderr and "Aborted" not in result.stderr
    assert all(path and path.stat().st_size > 0 for path in paths)  # Outside: untouched.
