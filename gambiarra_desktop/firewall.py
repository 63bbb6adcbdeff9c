"""What the machine's firewall will do to a hosted hub, and what to tell the user about it.

Hosting opens two doors: the hub's HTTP port (TCP, 3000 by default), where everyone in a
room sends requests, and mDNS (UDP 5353), where other apps find the hub. Each platform
handles that differently, and a silent firewall is the first reason "nobody sees my hub":

* Windows asks once per app, in a "Windows Security Alert", when it first listens; the
  installer already adds an allow rule when it runs with administrator rights.
* macOS asks "accept incoming network connections?" for an app that is not signed by a
  known developer, and separately for access to the local network.
* Linux never asks. If ufw or firewalld is on, the ports stay closed until someone
  opens them, so the advice carries the exact commands.

No Qt here: the window and ``gambiarra serve`` show the same words.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gambiarra_desktop.protocol import DEFAULT_PORT

MDNS_PORT = 5353
UFW_CONFIG = Path("/etc/ufw/ufw.conf")


@dataclass(frozen=True, slots=True)
class FirewallAdvice:
    why: str
    """One sentence: which ports hosting uses and what for."""
    what_happens: str
    """What this platform's firewall does about it, and what to answer."""
    commands: tuple[str, ...] = ()
    """Commands that open the ports, where the user must run them (Linux firewalls)."""


def reachable_from_lan(bind_host: str) -> bool:
    """Whether a hub bound to ``bind_host`` is for other machines, so the firewall matters."""
    if bind_host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(bind_host).is_loopback
    except ValueError:
        return True  # A host name: assume it resolves to a LAN address.


def ufw_enabled(config: Path = UFW_CONFIG) -> bool:
    """ufw keeps its on/off switch in a world-readable file; ``ufw status`` needs root."""
    try:
        text = config.read_text(encoding="utf-8")
    except OSError:
        return False
    return any(line.strip().replace(" ", "").lower() == "enabled=yes"
               for line in text.splitlines())


def firewalld_running(firewall_cmd: str | None = None) -> bool:
    command = firewall_cmd or shutil.which("firewall-cmd")
    if command is None:
        return False
    try:
        result = subprocess.run([command, "--state"], capture_output=True,  # noqa: S603
                                text=True, timeout=2, check=False)  # Fixed, read-only query.
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == "running"


def firewall_advice(
    port: int = DEFAULT_PORT,
    platform: str = sys.platform,
    ufw_config: Path = UFW_CONFIG,
    firewall_cmd: str | None = None,
) -> FirewallAdvice:
    """The advice for hosting on ``port`` on ``platform`` (``sys.platform`` spelling).

    Blocking for up to 2 s on Linux (it may run ``firewall-cmd``): call it off the event
    loop, e.g. with ``asyncio.to_thread``.
    """
    why = (f"Hosting lets people on your network reach this computer on TCP port {port} "
           f"(the hub's API) and find it through mDNS on UDP port {MDNS_PORT}.")
    if platform == "win32":
        return FirewallAdvice(why, "If Windows asks, allow Gambiarra Desktop on private "
                                   "networks (not public ones).")
    if platform == "darwin":
        return FirewallAdvice(why, "If macOS asks whether Gambiarra Desktop may accept "
                                   "incoming connections or find devices on your local "
                                   "network, choose Allow.")
    commands: list[str] = []
    if ufw_enabled(ufw_config):
        commands += [f"sudo ufw allow {port}/tcp", f"sudo ufw allow {MDNS_PORT}/udp"]
    if firewalld_running(firewall_cmd):
        commands += [f"sudo firewall-cmd --permanent --add-port={port}/tcp",
                     "sudo firewall-cmd --permanent --add-service=mdns",
                     "sudo firewall-cmd --reload"]
    if commands:
        return FirewallAdvice(why, "Your firewall is on and does not ask: open the ports "
                                   "with", tuple(commands))
    return FirewallAdvice(why, "No firewall that blocks them is active on this computer.")
