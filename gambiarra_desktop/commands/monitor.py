"""``gambiarra monitor``: a room's live events in the terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import datetime

from gambiarra_desktop.commands.common import error, find_room_hub, stop_on_signals
from gambiarra_desktop.commands.terminal_text import terminal_safe
from gambiarra_desktop.event_text import describe
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError


async def monitor(args: argparse.Namespace) -> int:
    hub_url = args.hub
    if hub_url is None:
        found = await find_room_hub(args.code, args.interface, args.timeout)
        if found is None:
            return error(f"no hub on the LAN holds room {args.code.upper()}; pass --hub URL")
        hub_url = found[0]
    stop = stop_on_signals()

    async def follow() -> int:
        password = args.password or os.environ.get("GAMBIARRA_ROOM_PASSWORD")
        async with HubClient(hub_url, room_password=password) as hub:
            async for name, data in hub.events(args.code.upper()):
                if args.json:
                    print(json.dumps({"event": name, "data": data}), flush=True)
                else:
                    stamp = datetime.now().strftime("%H:%M:%S")
                    line = f"{name:<20} {describe(name, data)}"
                    print(f"{stamp} {terminal_safe(line)}", flush=True)
        return 0

    watcher = asyncio.ensure_future(follow())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({watcher, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not watcher.done():
        watcher.cancel()
        return 0
    try:
        return watcher.result()
    except HubApiError as exc:
        return error(terminal_safe(exc.message))
    except HubUnreachableError as exc:
        return error(str(exc))
