"""``gambiarra-desktop``: Qt and asyncio in one qasync loop, the window, and a clean exit.

``--self-test`` starts the app's hub on 127.0.0.1:0, calls ``/health`` and exits 0, so
packaged builds can be smoke-tested without a screen.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gambiarra-desktop",
                                     description="Pool the LLM servers on your LAN.")
    parser.add_argument("--self-test", action="store_true",
                        help="start a hub on 127.0.0.1, check /health, exit")
    parser.add_argument("--data-dir", type=Path, help="where the hosted hub keeps its data")
    parser.add_argument("--port", type=int, help="port to host on (default: 3000)")
    parser.add_argument("--interface", help="network interface for discovery")
    return parser.parse_args(argv)


async def self_test() -> int:
    import aiohttp

    from gambiarra_desktop.hub import HubServer

    with tempfile.TemporaryDirectory() as data_dir:
        async with (
            HubServer(Path(data_dir)) as hub,
            aiohttp.ClientSession() as session,
            session.get(f"{hub.url}/health") as response,
        ):
            body = await response.json()
    ok = body.get("status") == "ok"
    print(f"self-test: hub /health answered {body}", flush=True)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if args.self_test:
        return asyncio.run(self_test())
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import qasync
    from PySide6.QtWidgets import QApplication

    from gambiarra_desktop.gui.config import GuiConfig
    from gambiarra_desktop.gui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    app.setApplicationName("Gambiarra Desktop")
    app.setOrganizationName("Gambiarra")
    app.setQuitOnLastWindowClosed(False)
    config = GuiConfig.default()
    if args.data_dir:
        config.data_dir = args.data_dir
    config.host_port = args.port
    config.mdns_interface = args.interface
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    async def run() -> int:
        window = MainWindow(config)
        window.show()
        await window.start()
        await window.quit_requested.wait()
        await window.shutdown()
        return 0

    with loop:
        return loop.run_until_complete(run())


if __name__ == "__main__":
    sys.exit(main())
