"""One app per user and data dir: a second launch brings the first window forward and exits.

Two apps on one data dir used to fight over it: the second one's hub found the port taken
and listened on another, its window said "Starting the hub…" for ever, and its mDNS name
clashed (``NonUniqueNameException``). The first app listens on a local socket
(``QLocalServer``: a Unix socket only this user may open, or a named pipe on Windows) whose
name is made from the user and the data dir; a second launch that can connect to it sends
"show" and exits. A socket file left by a crash is recognised (nobody answers on it) and
replaced; two launches at the same instant cannot both win, because the loser of the
``listen`` race tries to connect again before it removes anything.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

log = logging.getLogger(__name__)

CONNECT_MS = 500
SHOW = b"show\n"


def server_name(data_dir: Path) -> str:
    """Stable per user and data dir, short enough for a Unix socket path."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # No name for this uid (a container): the dir still tells.
        user = "user"
    digest = hashlib.sha256(f"{user}\0{data_dir.resolve()}".encode()).hexdigest()[:16]
    return f"gambiarra-desktop-{digest}"


class SingleInstance(QObject):
    activated = Signal()
    """Another launch asked this app to show its window."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.name = server_name(data_dir)
        self._server: QLocalServer | None = None

    def claim(self) -> bool:
        """True when this is the first app (it now listens); False when another app runs
        and was asked to come forward."""
        if self._ask_running_app():
            return False
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            if self._ask_running_app():  # Lost a race with a launch at the same instant.
                return False
            QLocalServer.removeServer(self.name)  # A crashed app's socket: nobody answers.
            if not server.listen(self.name):
                log.warning("cannot make sure only one Gambiarra Desktop runs: %s",
                            server.errorString())
                return True
        server.newConnection.connect(self._on_connection)
        self._server = server
        return True

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _ask_running_app(self) -> bool:
        probe = QLocalSocket()
        probe.connectToServer(self.name)
        if not probe.waitForConnected(CONNECT_MS):
            return False
        probe.write(SHOW)
        probe.waitForBytesWritten(CONNECT_MS)
        probe.disconnectFromServer()
        return True

    def _on_connection(self) -> None:
        server = self._server
        while server is not None and server.hasPendingConnections():
            connection = server.nextPendingConnection()
            connection.disconnected.connect(connection.deleteLater)
            connection.close()
            self.activated.emit()
