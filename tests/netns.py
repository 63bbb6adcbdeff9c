"""Two test hosts on a private virtual LAN, made of Linux network namespaces.

Only for tests run as root; everything stays inside namespaces this process creates, and
they are deleted afterwards. Addresses are in 10.77.0.0/24 on a veth pair.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

SUBNET_PREFIX = "10.77.0"


def skip_unless_netns_possible() -> None:
    if sys.platform != "linux":
        pytest.skip("network namespaces are Linux only")
    if os.geteuid() != 0:
        pytest.skip("network namespace tests need root (ip netns add)")
    if shutil.which("ip") is None:
        pytest.skip("the ip command (iproute2) is not installed")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass(frozen=True)
class TestHost:
    namespace: str
    address: str
    interface: str

    def command(self, *args: str) -> list[str]:
        """``args`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *args]


@contextmanager
def two_hosts() -> Iterator[tuple[TestHost, TestHost]]:
    skip_unless_netns_possible()
    tag = f"{os.getpid() % 100000}"
    a, b = f"gam{tag}a", f"gam{tag}b"
    veth_a, veth_b = f"vg{tag}a", f"vg{tag}b"
    _ip("netns", "add", a)
    try:
        _ip("netns", "add", b)
        _ip("link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        _ip("link", "set", veth_a, "netns", a)
        _ip("link", "set", veth_b, "netns", b)
        _ip("-n", a, "addr", "add", f"{SUBNET_PREFIX}.1/24", "dev", veth_a)
        _ip("-n", b, "addr", "add", f"{SUBNET_PREFIX}.2/24", "dev", veth_b)
        for ns, veth in ((a, veth_a), (b, veth_b)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", veth, "up", "multicast", "on")
        yield (TestHost(a, f"{SUBNET_PREFIX}.1", veth_a),
               TestHost(b, f"{SUBNET_PREFIX}.2", veth_b))
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10,
                           check=False)
