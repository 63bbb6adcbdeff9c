"""``gambiarra-desktop``: Qt and asyncio in one qasync loop, the window, and a clean exit.

``--self-test`` runs the real app path with nothing left behind: it opens the window,
clicks **Host a hub** (bound to 127.0.0.1, mDNS on loopback, data in a temporary dir),
calls the hub's ``/health`` and prints one JSON line. The packaged builds are
smoke-tested with it, offscreen and under Xvfb.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gambiarra_desktop import __version__
from gambiarra_desktop.qt_libraries import display_problem

os.environ.setdefault("QT_API", "pyside6")

if TYPE_CHECKING:
    from gambiarra_desktop.gui.main_window import MainWindow

SELF_TEST_TIMEOUT_S = 30.0
log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gambiarra-desktop",
                                     description="Pool the LLM servers on your LAN.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="open the window, host a hub on 127.0.0.1, check /health, exit")
    parser.add_argument("--data-dir", type=Path, help="where the hosted hub keeps its data")
    parser.add_argument("--port", type=int, help="port to host on (default: 3000)")
    parser.add_argument("--interface", help="network interface for discovery")
    parser.add_argument("--log-dir", type=Path,
                        help="where to write the log file (default: the user's log dir)")
    return parser.parse_args(argv)


async def host_and_check(window: MainWindow) -> dict[str, Any]:
    """Click Host like a user would, then ask the new hub for ``/health``."""
    import aiohttp

    window.sidebar.host_button.click()
    deadline = time.monotonic() + SELF_TEST_TIMEOUT_S
    while window.host.hosted is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no hub after {SELF_TEST_TIMEOUT_S:g} s: "
                               f"{window.sidebar.host_status.text()}")
        await asyncio.sleep(0.05)
    url = f"http://127.0.0.1:{window.host.hosted.port}/health"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        health = await response.json()
    return {"window": window.windowTitle(), "visible": window.isVisible(), "hub": url,
            "health": health, "hostStatus": window.sidebar.host_status.text(),
            # The icon is an SVG: it only draws when Qt's SVG plugins made it into a build.
            "iconDrawn": not window.windowIcon().pixmap(64, 64).isNull()}


def quit_on_signals(window: MainWindow) -> None:
    """SIGTERM (logout, ``kill``) and Ctrl+C close the app as the Quit menu does.

    Python runs signal handlers only between bytecodes, and Qt's loop may sit in C++ for
    a long time, so a slow no-op timer gives the interpreter a turn now and then.
    """
    from PySide6.QtCore import QTimer

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: loop.call_soon_threadsafe(window.quit_requested.set))
    ticker = QTimer(window)
    ticker.timeout.connect(lambda: None)
    ticker.start(250)


def configure_logging(to_file: bool, log_dir: Path | None = None) -> Path | None:
    """Log to the terminal when there is one, and to a small rotating file in the user's
    log dir (or ``log_dir``): a windowed app started from a menu (or a Windows .exe built
    without a console, where ``sys.stderr`` is ``None``) has nowhere else to say what
    went wrong. Returns the log file, created now, or ``None`` when there is none.

    ``force``: a library that logged before this (and so set up the root logger) must
    not leave the app without its file: Help → Open log folder has to find it."""
    from logging.handlers import RotatingFileHandler

    from gambiarra_desktop.gui.about_dialog import LOG_FILE_NAME, user_log_path

    handlers: list[logging.Handler] = []
    if sys.stderr is not None:
        handlers.append(logging.StreamHandler())
    log_file = None
    if to_file:
        directory = log_dir or user_log_path()
        with contextlib.suppress(OSError):  # A read-only home still gets a working app.
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            handlers.append(RotatingFileHandler(directory / LOG_FILE_NAME,
                                                maxBytes=1_000_000, backupCount=3,
                                                encoding="utf-8"))
            log_file = directory / LOG_FILE_NAME
    logging.basicConfig(level=logging.INFO, handlers=handlers or [logging.NullHandler()],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    return log_file


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    # Before Qt loads: its own abort for a missing library names the wrong one.
    problem = display_problem()
    if problem is not None:
        print(problem.message, file=sys.stderr)
        return problem.exit_code
    # The self-test leaves nothing behind unless asked where to log.
    log_file = configure_logging(to_file=not args.self_test or args.log_dir is not None,
                                 log_dir=args.log_dir)
    import qasync
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gambiarra_desktop.gui.config import GuiConfig
    from gambiarra_desktop.gui.main_window import MainWindow
    from gambiarra_desktop.gui.settings import AppSettings
    from gambiarra_desktop.gui.single_instance import SingleInstance

    app = QApplication(sys.argv[:1])
    app.setApplicationName("Gambiarra Desktop")
    app.setOrganizationName("Gambiarra")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("gambiarra-desktop")  # Wayland app id; matches the .desktop file.
    app.setQuitOnLastWindowClosed(False)
    scratch = tempfile.TemporaryDirectory(prefix="gambiarra-self-test-") if args.self_test else None
    config = GuiConfig.default()
    settings = None
    if scratch is not None:
        config = GuiConfig(data_dir=Path(scratch.name) / "data", host_bind="127.0.0.1",
                           host_port=0, mdns_interface="127.0.0.1", cooperating_mdns=True)
        settings = AppSettings(QSettings(str(Path(scratch.name) / "settings.ini"),
                                         QSettings.Format.IniFormat))
    else:
        config.host_port = args.port
        config.mdns_interface = args.interface
    if args.data_dir:
        config.data_dir = args.data_dir
    try:
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        print(f"gambiarra-desktop: cannot create the data dir {config.data_dir}: {exc}",
              file=sys.stderr)
        return 1
    instance = SingleInstance(config.data_dir)
    if not instance.claim():
        print("Gambiarra Desktop is already running with this data dir; its window was"
              " brought forward.", flush=True)
        return 0
    log.info("Gambiarra Desktop %s on %s; data in %s", __version__, app.platformName(),
             config.data_dir)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    async def run() -> int:
        window = MainWindow(config, settings)
        if log_file is not None:  # Help → Open log folder shows the folder really used.
            window.log_dir = log_file.parent
        instance.activated.connect(window.bring_back)
        quit_on_signals(window)
        window.show()
        await window.start()
        status = 0
        if args.self_test:
            try:
                report = await host_and_check(window)
            except Exception as exc:  # Any failure is the answer a smoke test needs.
                print(f"self-test failed: {exc!r}", file=sys.stderr, flush=True)
                status = 1
            else:
                report["platform"] = app.platformName()
                print("self-test: " + json.dumps(report), flush=True)
                status = 0 if report["health"].get("status") == "ok" else 1
            window.quit_requested.set()
        await window.quit_requested.wait()
        await window.shutdown()
        log.info("Gambiarra Desktop closed")
        return status

    try:
        with loop:
            return loop.run_until_complete(run())
    finally:
        instance.release()
        if scratch is not None:
            scratch.cleanup()


if __name__ == "__main__":
    sys.exit(main())
