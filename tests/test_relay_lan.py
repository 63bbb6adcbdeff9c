"""From another host, no address of the hub's machine turns the hub into a relay into it.

The hub runs in test host A (10.77.0.1, network namespaces), which also has a second
interface (172.31.0.1 and fd31::1, like a docker bridge), with a canary HTTP server on A's
loopback, LAN and second-interface addresses (standing in for the private services a real
machine has there, trusting local connections). From host B a participant joins with every
known spelling of A's loopback, the metadata address, a name that only A's /etc/hosts maps
to 127.0.0.1, and A's own non-loopback addresses on the canary's port, and chats each time.
The canary must see nothing; B's own model server must still work. Then a participant on A
itself uses A's LAN and second-interface addresses: that is its own machine, so it works.
Skipped with a reason when not root.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests import netns
from tests.test_lan import background

CANARY_PORT = 8080
MODEL_PORT = 8081
HOSTS_NAME = "canary.internal"
BRIDGE_NAME = "bridge.internal"
BRIDGE_V4, BRIDGE_V6 = "172.31.0.1", "fd31::1"
OWN_HOSTS = (f"{netns.SUBNET_PREFIX}.1", BRIDGE_V4, f"[{BRIDGE_V6}]", BRIDGE_NAME,
             f"[::ffff:{netns.SUBNET_PREFIX}.1]")
"""Host A's own addresses other than loopback: only a participant on A may use them."""
REFUSED_HOSTS = (
    "2130706433", "127.1", "0x7f000001", "0177.0.0.1", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]", "0", "0.0.0.0", "[::]", "localhost", "LOCALHOST",
    "localhost.", "127.0.0.1", "127.0.0.2", "[::1]", "169.254.169.254", HOSTS_NAME,
)

CANARY = """
import asyncio, sys
from aiohttp import web
log = sys.argv[1]
async def hit(request):
    with open(log, "a") as f:
        f.write(f"{request.method} {request.host} {request.path}\\n")
    return web.json_response({"object": "chat.completion", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "PRIVATE"}, "finish_reason": "stop"}]})
async def main():
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hit)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for host in ("127.0.0.1", "::1", *sys.argv[3:]):
        try:
            await web.TCPSite(runner, host, int(sys.argv[2])).start()
        except OSError:
            pass
    print("canary ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

CLIENT = """
import asyncio, json, sys
import aiohttp
hub, endpoints = sys.argv[1], json.loads(sys.argv[2])
async def main():
    seen = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        async def chat(code):
            payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(f"{hub}/rooms/{code}/v1/chat/completions",
                                 json=payload) as response:
                return response.status, await response.text()
        for host, endpoint in endpoints.items():
            async with http.post(f"{hub}/rooms", json={"name": "Relay"}) as response:
                code = (await response.json())["room"]["code"]
            join = {"id": "peer", "nickname": "Peer", "model": "m", "endpoint": endpoint}
            async with http.post(f"{hub}/rooms/{code}/join", json=join) as response:
                joined = [response.status, await response.text()]
            seen[host] = {"join": joined, "chat": list(await chat(code))}
    print(json.dumps(seen))
asyncio.run(main())
"""


def add_second_interface(host: netns.TestHost) -> None:
    """A veth pair wholly inside ``host``'s namespace carrying 172.31.0.1 and fd31::1: an
    interface of the hub's machine that other hosts have no route to, like a docker bridge.
    It goes when the namespace is deleted."""
    for args in (("link", "add", "gbr0", "type", "veth", "peer", "name", "gbr1"),
                 ("addr", "add", f"{BRIDGE_V4}/16", "dev", "gbr0"),
                 ("-6", "addr", "add", f"{BRIDGE_V6}/64", "dev", "gbr0", "nodad"),
                 ("link", "set", "gbr0", "up"), ("link", "set", "gbr1", "up")):
        subprocess.run(["ip", "-n", host.namespace, *args], check=True, capture_output=True,
                       timeout=10)


def run_client(host: netns.TestHost, hub_url: str, endpoints: dict[str, str]) -> Any:
    """Join and chat once per endpoint from ``host``; what the hub answered, by label."""
    result = subprocess.run(
        host.command(sys.executable, "-c", CLIENT, hub_url, json.dumps(endpoints)),
        capture_output=True, text=True, timeout=120, check=False,
        cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@contextmanager
def hosts_file_for(host: netns.TestHost, line: str) -> Iterator[None]:
    """An /etc/hosts seen only inside ``host``'s namespace: ``ip netns exec`` bind-mounts
    /etc/netns/<namespace>/hosts over /etc/hosts. Removed afterwards."""
    folder = Path("/etc/netns") / host.namespace
    created_parent = not folder.parent.exists()
    folder.mkdir(parents=True, exist_ok=False)
    try:
        (folder / "hosts").write_text(f"127.0.0.1 localhost\n::1 localhost\n{line}\n")
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if created_parent:
            shutil.rmtree(folder.parent, ignore_errors=True)


def test_no_spelling_of_the_hubs_loopback_is_relayed_from_another_host(tmp_path: Path) -> None:
    canary_log = tmp_path / "canary.log"
    canary_log.touch()
    with netns.two_hosts() as (hub_host, peer_host), hosts_file_for(
            hub_host, f"127.0.0.1 {HOSTS_NAME}\n{BRIDGE_V4} {BRIDGE_NAME}"):
        add_second_interface(hub_host)
        resolved = subprocess.run(
            hub_host.command("getent", "hosts", HOSTS_NAME), capture_output=True, text=True,
            timeout=10, check=False)
        assert "127.0.0.1" in resolved.stdout, "the namespace's hosts file is not in use"
        hub_cmd = hub_host.command(sys.executable, "-m", "gambiarra_desktop.cli", "serve",
                                   "--host", "0.0.0.0", "--port", "3000",
                                   "--data-dir", str(tmp_path / "hub"))
        canary_cmd = hub_host.command(sys.executable, "-c", CANARY, str(canary_log),
                                      str(CANARY_PORT), hub_host.address, BRIDGE_V4,
                                      BRIDGE_V6)
        # The participant's model server is on the participant's own machine, B.
        model_cmd = peer_host.command(sys.executable, "-m",
                                      "gambiarra_desktop.devtools.fake_openai", "--host",
                                      peer_host.address, "--port", str(MODEL_PORT),
                                      "--model", "m")
        hub_url = f"http://{hub_host.address}:3000"
        own = {host: f"http://{host}:{CANARY_PORT}" for host in OWN_HOSTS}
        with background(canary_cmd, "canary ready"), background(model_cmd, "Fake OpenAI"), \
                background(hub_cmd, "listening"):
            seen = run_client(peer_host, hub_url, {
                **{host: f"http://{host}:{CANARY_PORT}" for host in REFUSED_HOSTS}, **own,
                "LAN": f"http://{peer_host.address}:{MODEL_PORT}"})
            relayed = canary_log.read_text()
            # A participant on the hub's machine (joined by its LAN address) may use them.
            local = run_client(hub_host, hub_url, own)
    assert relayed == "", "the hub relayed a request into its own machine"
    for host in OWN_HOSTS:
        (join_status, join_body), (chat_status, chat_body) = seen[host]["join"], seen[host]["chat"]
        assert join_status == 400, (host, seen[host])
        assert "an address of the hub's own machine" in json.loads(join_body)["error"], host
        assert "PRIVATE" not in chat_body, host
        assert local[host]["join"][0] == 201, (host, local[host])
        assert local[host]["chat"][0] == 200 and "PRIVATE" in local[host]["chat"][1], host
    assert len(canary_log.read_text().splitlines()) == len(OWN_HOSTS)
    for host in REFUSED_HOSTS:
        (join_status, join_body), (chat_status, chat_body) = seen[host]["join"], seen[host]["chat"]
        assert join_status == 400 or chat_status == 502, (host, seen[host])
        assert "PRIVATE" not in chat_body, host
        if join_status == 400:
            assert json.loads(join_body)["error"].startswith("Invalid endpoint: "), host
    assert seen["LAN"]["join"][0] == 201, seen["LAN"]
    assert seen["LAN"]["chat"][0] == 200, seen["LAN"]
