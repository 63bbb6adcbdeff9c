"""Issue 14: a LAN that comes up after the app started is browsed and published to, and
one that goes away is let go. Two test hosts in network namespaces, each starting with
only ``lo``; the test then plugs a virtual cable between them. Everything stays inside
the namespaces this test creates (root only; skipped otherwise)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.netns import skip_unless_netns_possible

NODE = Path(__file__).with_name("discovery_node.py")
SUBNET = "10.78.0"
WITHIN_S = 15.0


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, timeout=10)


@dataclass
class Node:
    """What one test host's discovery said last."""

    process: asyncio.subprocess.Process
    published: list[str] | None = None
    hubs: dict[str, list[str]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    async def read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").strip()
            self.log.append(line)
            try:
                said: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            if "published" in said:
                self.published = said["published"]
            if "hubs" in said:
                self.hubs = said["hubs"]


async def until(what: str, predicate: Callable[[], bool], *nodes: Node) -> None:
    deadline = time.monotonic() + WITHIN_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WITHIN_S:g} s; nodes said "
                                 + " | ".join("\n".join(n.log[-15:]) for n in nodes))
        await asyncio.sleep(0.05)


@asynccontextmanager
async def node(namespace: str, name: str, data_dir: Path) -> AsyncIterator[Node]:
    process = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", namespace, sys.executable, str(NODE), name, str(data_dir),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=Path(__file__).parent.parent, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    found = Node(process)
    reader = asyncio.get_running_loop().create_task(found.read())
    try:
        yield found
    finally:
        assert process.stdin is not None
        process.stdin.close()  # The node says goodbye and exits on EOF.
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
        reader.cancel()


async def test_a_lan_that_comes_up_later_is_browsed_published_to_and_let_go(
    tmp_path: Path,
) -> None:
    skip_unless_netns_possible()
    tag = f"{os.getpid() % 100000}"
    app_ns, other_ns = f"gdn{tag}a", f"gdn{tag}b"
    app_if, other_if = f"gd{tag}a", f"gd{tag}b"
    ip("netns", "add", app_ns)
    try:
        ip("netns", "add", other_ns)
        for ns in (app_ns, other_ns):
            ip("-n", ns, "link", "set", "lo", "up")
        # Given the app and another machine's hub, each started with only loopback
        async with node(app_ns, "App hub", tmp_path / "a") as app, \
                node(other_ns, "Other hub", tmp_path / "b") as other:
            await until("both started unpublished",
                        lambda: app.published == [] and other.published == [], app, other)
            # When a cable joins them (the Wi-Fi comes up)
            ip("link", "add", app_if, "type", "veth", "peer", "name", other_if)
            ip("link", "set", app_if, "netns", app_ns)
            ip("link", "set", other_if, "netns", other_ns)
            ip("-n", app_ns, "addr", "add", f"{SUBNET}.1/24", "dev", app_if)
            ip("-n", other_ns, "addr", "add", f"{SUBNET}.2/24", "dev", other_if)
            ip("-n", app_ns, "link", "set", app_if, "up", "multicast", "on")
            ip("-n", other_ns, "link", "set", other_if, "up", "multicast", "on")
            plugged = time.monotonic()
            # Then the app publishes its hub on the new address, and each side sees the other
            await until("the app's hub published on the new LAN",
                        lambda: app.published == [f"{SUBNET}.1"], app, other)
            await until("the other hub seen by the app",
                        lambda: app.hubs.get("Other hub") == [f"{SUBNET}.2"], app, other)
            await until("the app's hub seen by the other machine",
                        lambda: other.hubs.get("App hub") == [f"{SUBNET}.1"], app, other)
            print(f"seen both ways {time.monotonic() - plugged:.2f} s after the cable")
            # When the cable goes (the Wi-Fi is left), the app lets the other hub go
            ip("-n", app_ns, "link", "del", app_if)
            await until("unpublished and the other hub dropped",
                        lambda: app.published == [] and "Other hub" not in app.hubs,
                        app, other)
    finally:
        for ns in (app_ns, other_ns):
            ip("netns", "del", ns, check=False)
