"""A real ``redis-server`` per test, on a Unix socket (and a loopback TCP port when asked).

Never port 6379: a machine with a Redis service already running would share (and corrupt)
counts with it. Persistence is off, so nothing is written outside the temporary dir.
Tests that need it skip with a clear reason only when ``redis-server`` cannot be found
(``scripts/test.sh`` installs the Debian package).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 10.0


def redis_server_path() -> str:
    path = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if path is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server;"
                    " scripts/test.sh installs it)")
    return path


def free_tcp_port() -> int:
    """A loopback port free right now (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    socket_path: Path
    port: int
    """0 when it listens on the Unix socket only."""
    log_path: Path

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def url(self) -> str:
        """TCP when it has a port (another process can use it just as well), else the socket."""
        return f"redis://127.0.0.1:{self.port}/0" if self.port else self.unix_url

    def kill(self) -> None:
        """Gone at once, as a crash would take it (SIGKILL), and reaped."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def answers(self) -> bool:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(1.0)
            sock.connect(str(self.socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False


def start_redis(directory: Path, tcp: bool = False) -> RedisServer:
    """Start one and wait until it answers PING (bounded); ``directory`` must be short
    (Unix socket paths stay under about 107 bytes)."""
    port = free_tcp_port() if tcp else 0
    socket_path = directory / "r.sock"
    log_path = directory / "redis.log"
    command = [redis_server_path(), "--port", str(port), "--unixsocket", str(socket_path),
               "--save", "", "--appendonly", "no", "--dir", str(directory),
               "--logfile", str(log_path)]
    if tcp:
        command += ["--bind", "127.0.0.1"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(process, socket_path, port, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.answers():
        if process.poll() is not None or time.monotonic() > deadline:
            server.kill()
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            raise RuntimeError(f"redis-server did not start: {log[-2000:]}")
        time.sleep(0.01)
    return server


@contextlib.contextmanager
def running_redis(tcp: bool = False) -> Iterator[RedisServer]:
    redis_server_path()  # Skip before making anything.
    directory = Path(tempfile.mkdtemp(prefix="gam-redis-", dir="/tmp"))
    server = start_redis(directory, tcp)
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)
