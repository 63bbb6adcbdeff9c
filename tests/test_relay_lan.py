"""From another host, no spelling of "localhost" turns the hub into a relay into its machine.

The hub runs in test host A (10.77.0.1, network namespaces) with a canary HTTP server on A's
loopback (standing in for the private services a real machine has there) and a normal model
server on A's LAN address. From host B a participant joins with every known spelling of
A's loopback, the metadata address, and a name that only A's /etc/hosts maps to 127.0.0.1,
and chats each time. The canary must see nothing; the normal model server must still work.
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

from tests import netns
from tests.test_lan import background

CANARY_PORT = 8080
MODEL_PORT = 8081
HOSTS_NAME = "canary.internal"
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
    for host in ("127.0.0.1", "::1"):
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
hub, hosts, port, lan_endpoint = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
async def main():
    seen = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        async def chat(code):
            payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(f"{hub}/rooms/{code}/v1/chat/completions",
                                 json=payload) as response:
                return response.status, await response.text()
        for host in [*hosts, "LAN"]:
            async with http.post(f"{hub}/rooms", json={"name": "Relay"}) as response:
                code = (await response.json())["room"]["code"]
            endpoint = lan_endpoint if host == "LAN" else f"http://{host}:{port}"
            join = {"id": "peer", "nickname": "Peer", "model": "m", "endpoint": endpoint}
            async with http.post(f"{hub}/rooms/{code}/join", json=join) as response:
                joined = [response.status, await response.text()]
            seen[host] = {"join": joined, "chat": list(await chat(code))}
    print(json.dumps(seen))
asyncio.run(main())
"""


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
            hub_host, f"127.0.0.1 {HOSTS_NAME}"):
        resolved = subprocess.run(
            hub_host.command("getent", "hosts", HOSTS_NAME), capture_output=True, text=True,
            timeout=10, check=False)
        assert "127.0.0.1" in resolved.stdout, "the namespace's hosts file is not in use"
        hub_cmd = hub_host.command(sys.executable, "-m", "gambiarra_desktop.cli", "serve",
                                   "--host", "0.0.0.0", "--port", "3000",
                                   "--data-dir", str(tmp_path / "hub"))
        canary_cmd = hub_host.command(sys.executable, "-c", CANARY, str(canary_log),
                                      str(CANARY_PORT))
        model_cmd = hub_host.command(sys.executable, "-m",
                                     "gambiarra_desktop.devtools.fake_openai", "--host",
                                     hub_host.address, "--port", str(MODEL_PORT),
                                     "--model", "m")
        with background(canary_cmd, "canary ready"), background(model_cmd, "Fake OpenAI"), \
                background(hub_cmd, "listening"):
            result = subprocess.run(
                peer_host.command(sys.executable, "-c", CLIENT,
                                  f"http://{hub_host.address}:3000", json.dumps(REFUSED_HOSTS),
                                  str(CANARY_PORT), f"http://{hub_host.address}:{MODEL_PORT}"),
                capture_output=True, text=True, timeout=120, check=False,
                cwd=Path(__file__).parent.parent)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert canary_log.read_text() == "", "the hub relayed a request into its own loopback"
    for host in REFUSED_HOSTS:
        (join_status, join_body), (chat_status, chat_body) = seen[host]["join"], seen[host]["chat"]
        assert join_status == 400 or chat_status == 502, (host, seen[host])
        assert "PRIVATE" not in chat_body, host
        if join_status == 400:
            assert json.loads(join_body)["error"].startswith("Invalid endpoint: "), host
    assert seen["LAN"]["join"][0] == 201, seen["LAN"]
    assert seen["LAN"]["chat"][0] == 200, seen["LAN"]
