"""Issue 14 for the headless hub: ``gambiarra serve --mdns`` started before the LAN is up
publishes as soon as an address comes, and says so. A test host in a network namespace
that starts with only ``lo`` (root only; skipped otherwise); nothing leaves it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.netns import skip_unless_netns_possible

ADDRESS = "10.79.0.1"


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, timeout=10)


def read_until(process: subprocess.Popen[str], pattern: str, within_s: float) -> str:
    """The first output line matching ``pattern`` (bounded in time: the process is killed
    by the caller's cleanup if it never comes)."""
    assert process.stdout is not None
    deadline = time.monotonic() + within_s
    seen: list[str] = []
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            time.sleep(0.05)
            continue
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern!r} within {within_s:g} s in:\n"
                         + "".join(seen))


def test_serve_publishes_when_the_lan_comes_up_after_it_started(tmp_path: Path) -> None:
    skip_unless_netns_possible()
    namespace, link = f"gsn{os.getpid() % 100000}", f"gs{os.getpid() % 100000}"
    ip("netns", "add", namespace)
    hub: subprocess.Popen[str] | None = None
    try:
        ip("-n", namespace, "link", "set", "lo", "up")
        # Given a hub started with mDNS on a machine with no LAN yet
        hub = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "gambiarra_desktop.cli",
             "serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path / "hub"),
             "--mdns", "--name", "Late hub"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=Path(__file__).parent.parent)
        port = re.findall(r":(\d+)", read_until(hub, "listening on", 30))[0]
        assert "not published yet" in read_until(hub, "mDNS:", 15)

        # When the LAN comes up (an interface gets an address; a veth pair with both ends in
        # the namespace, so nothing reaches the machine's own network)
        ip("-n", namespace, "link", "add", link, "type", "veth", "peer", "name", f"{link}p")
        ip("-n", namespace, "addr", "add", f"{ADDRESS}/24", "dev", link)
        ip("-n", namespace, "link", "set", f"{link}p", "up")
        ip("-n", namespace, "link", "set", link, "up", "multicast", "on")

        # Then the hub publishes on it by itself, and says where
        line = read_until(hub, "mDNS: .*network changed", 15)
        assert f"advertised as 'Late hub' on {ADDRESS}:{port} ({link})" in line, line
    finally:
        if hub is not None:
            hub.terminate()
            try:
                hub.wait(timeout=10)
            except subprocess.TimeoutExpired:
                hub.kill()
                hub.wait(timeout=5)
        ip("netns", "del", namespace, check=False)
