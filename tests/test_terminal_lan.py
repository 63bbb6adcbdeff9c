"""Terminal sessions answer only the hub's own machine: the same admin token that works on
the hub host's loopback gets 403 from a second host on the LAN (two network namespaces;
the check is on the socket's peer address, so no header can change it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import netns
from tests.gateway_testkit import ADMIN_PASSWORD
from tests.test_lan import background

CLIENT = """
import asyncio, json, sys
import aiohttp
hub, password = sys.argv[1], sys.argv[2]
async def main():
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{hub}/v1/auth/login",
                          json={"username": "admin", "password": password}) as r:
            token = (await r.json())["token"]
        auth = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "127.0.0.1"}
        seen = {}
        async with s.get(f"{hub}/v1/terminal/sessions", headers=auth) as r:
            seen["list"] = [r.status, await r.json()]
        async with s.post(f"{hub}/v1/terminal/sessions", headers=auth,
                          json={"type": "local"}) as r:
            seen["create"] = [r.status, await r.json()]
        print(json.dumps(seen))
asyncio.run(main())
"""


def run_client(host: netns.TestHost, hub_url: str) -> dict[str, list[object]]:
    result = subprocess.run(host.command(sys.executable, "-c", CLIENT, hub_url, ADMIN_PASSWORD),
                            capture_output=True, text=True, timeout=60, check=False,
                            cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    seen: dict[str, list[object]] = json.loads(result.stdout)
    return seen


def test_a_second_host_is_refused_with_the_admin_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    with netns.two_hosts() as (hub_host, peer_host):
        hub_cmd = hub_host.command(sys.executable, "-m", "gambiarra_desktop.cli", "serve",
                                   "--host", "0.0.0.0", "--port", "3000", "--enable-terminal",
                                   "--terminal-workdir", str(tmp_path),
                                   "--data-dir", str(tmp_path / "hub"))
        with background(hub_cmd, "listening"):
            remote = run_client(peer_host, f"http://{hub_host.address}:3000")
            local = run_client(hub_host, "http://127.0.0.1:3000")
    for step in ("list", "create"):
        status, body = remote[step]
        assert status == 403, (step, remote)
        assert body["error"] == "Terminal sessions are only for the hub's own machine"  # type: ignore[index]
    assert local["list"] == [200, {"sessions": []}], local
    assert local["create"][0] == 201, local
