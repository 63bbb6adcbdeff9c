"""What the app tells a host about the firewall, per platform and per Linux firewall."""

from __future__ import annotations

import stat
from pathlib import Path

from gambiarra_desktop.firewall import (
    firewall_advice,
    firewalld_running,
    reachable_from_lan,
    ufw_enabled,
)
from tests.platforms import posix_only


def executable(path: Path, script: str) -> str:
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_every_platform_names_the_hub_port_and_mdns(tmp_path: Path) -> None:
    for platform in ("win32", "darwin", "linux"):
        advice = firewall_advice(3456, platform, ufw_config=tmp_path / "none.conf",
                                 firewall_cmd=str(tmp_path / "missing"))
        assert "TCP port 3456" in advice.why and "UDP port 5353" in advice.why
        assert advice.what_happens
    assert "Windows" in firewall_advice(3000, "win32").what_happens
    assert "macOS" in firewall_advice(3000, "darwin").what_happens


@posix_only
def test_linux_without_an_active_firewall_needs_no_commands(tmp_path: Path) -> None:
    conf = tmp_path / "ufw.conf"
    conf.write_text("# /etc/ufw/ufw.conf\nENABLED=no\nLOGLEVEL=low\n")
    stopped = executable(tmp_path / "firewall-cmd", "echo 'not running'; exit 252")
    advice = firewall_advice(3000, "linux", ufw_config=conf, firewall_cmd=stopped)
    assert advice.commands == ()
    assert not ufw_enabled(conf) and not firewalld_running(stopped)


def test_linux_with_ufw_on_gets_the_exact_commands(tmp_path: Path) -> None:
    conf = tmp_path / "ufw.conf"
    conf.write_text("ENABLED=yes\nLOGLEVEL=low\n")
    advice = firewall_advice(3001, "linux", ufw_config=conf,
                             firewall_cmd=str(tmp_path / "missing"))
    assert advice.commands == ("sudo ufw allow 3001/tcp", "sudo ufw allow 5353/udp")


@posix_only
def test_linux_with_firewalld_running_gets_its_commands(tmp_path: Path) -> None:
    running = executable(tmp_path / "firewall-cmd", 'test "$1" = --state && echo running')
    advice = firewall_advice(3000, "linux", ufw_config=tmp_path / "none.conf",
                             firewall_cmd=running)
    assert "sudo firewall-cmd --permanent --add-port=3000/tcp" in advice.commands
    assert "sudo firewall-cmd --permanent --add-service=mdns" in advice.commands


@posix_only
def test_a_hanging_firewall_cmd_does_not_hang_the_app(tmp_path: Path) -> None:
    stuck = executable(tmp_path / "firewall-cmd", "exec sleep 30")
    assert firewalld_running(stuck) is False


def test_only_a_hub_bound_beyond_loopback_needs_the_firewall() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert not reachable_from_lan(host), host
    for host in ("0.0.0.0", "::", "192.168.1.5", "my-laptop.local"):
        assert reachable_from_lan(host), host
