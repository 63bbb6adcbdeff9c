"""``gambiarra join``: share a local model with a room until Ctrl+C."""

from __future__ import annotations

import argparse
import asyncio
import socket

from gambiarra_desktop.commands.common import error, find_room_hub, stop_on_signals
from gambiarra_desktop.share.agent import AgentStatus, ShareAgent, ShareSettings
from gambiarra_desktop.share.local_servers import detect_local_servers
from gambiarra_desktop.share.specs import machine_specs


async def _pick_endpoint(model: str) -> str | None:
    servers = await detect_local_servers()
    for server in servers:
        if model in server.models:
            print(f"Found {model} on {server.name} at {server.endpoint}", flush=True)
            return server.endpoint
    if servers:
        listing = "; ".join(f"{s.name} ({s.endpoint}): {', '.join(s.models)}" for s in servers)
        print(f"Local model servers found, none serving {model}: {listing}", flush=True)
    else:
        print("No local model server found on the usual ports (Ollama 11434, LM Studio 1234,"
              " llama.cpp 8080, vLLM 8000).", flush=True)
    return None


async def join(args: argparse.Namespace) -> int:
    endpoint = args.endpoint or await _pick_endpoint(args.model)
    if endpoint is None:
        return error("pass --endpoint URL of the model server to share")
    hub_url = args.hub
    if hub_url is None:
        print(f"Looking for the hub of room {args.code.upper()} on the LAN…", flush=True)
        found = await find_room_hub(args.code, args.interface, args.timeout)
        if found is None:
            return error(f"no hub on the LAN holds room {args.code.upper()}; pass --hub URL")
        hub_url, hub = found
        print(f"Found it on {hub.name} at {hub_url}", flush=True)
    settings = ShareSettings(
        room_code=args.code.upper(), model=args.model, endpoint=endpoint,
        nickname=args.nickname or socket.gethostname().split(".")[0],
        password=args.password, transport="direct" if args.direct else "tunnel",
        specs={} if args.no_specs else await machine_specs(),
        config={} if args.max_concurrent is None else {"maxConcurrent": args.max_concurrent},
    )

    def report(status: AgentStatus) -> None:
        print(f"[{status.state}] {status.reason}", flush=True)

    agent = ShareAgent(hub_url, settings, report)
    stop = stop_on_signals()
    await agent.start()
    failed = False
    while not stop.is_set():
        if not agent.running:
            failed = agent.status.state == "failed"
            break
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            continue
    await agent.stop()
    if failed:
        return error(agent.status.reason)
    print(f"Left room {settings.room_code}.", flush=True)
    return 0
