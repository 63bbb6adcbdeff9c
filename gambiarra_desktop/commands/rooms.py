"""``gambiarra create``, ``delete`` and ``list``: rooms on one hub, or on every hub around."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from typing import Any

import aiohttp

from gambiarra_desktop.commands.common import browse_addresses, error
from gambiarra_desktop.commands.terminal_text import terminal_safe
from gambiarra_desktop.commands.web_link import NO_LAN_ADDRESS, print_web_link
from gambiarra_desktop.discovery.browser import discover_hubs, fetch_rooms
from gambiarra_desktop.hub.config import default_data_dir
from gambiarra_desktop.hub.rooms.owner_token import OWNER_TOKEN_FILE
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError
from gambiarra_desktop.web.links import guest_hub_url, lan_hosts, room_page_url


async def create(args: argparse.Namespace) -> int:
    async with HubClient(args.hub) as hub:
        try:
            data = await hub.create_room(args.name, args.password)
        except HubUnreachableError as exc:
            return error(f"Failed to connect to hub at {args.hub}: {exc}")
        except HubApiError as exc:
            return error(terminal_safe(exc.message))
    room = data["room"]
    print("Room created!")
    print(f"  Code: {terminal_safe(room['code'])}")
    print(f"  ID: {terminal_safe(room['id'])}")
    if room.get("hasPassword"):
        print("  Password protected: yes")
    print("\nShare the code with participants to join.")
    print(f"OpenAI base URL: {terminal_safe(hub.openai_base_url(room['code']))}")
    guest_url = guest_hub_url(args.hub, lan_hosts(args.interface))
    print_web_link("Room page (phones and browsers, nothing to install):",
                   guest_url and room_page_url(guest_url, room["code"]), NO_LAN_ADDRESS,
                   room_page_url(args.hub, room["code"]), qr=args.qr, indent="")
    secret = data.get("creatorSecret")
    if isinstance(secret, str):
        print("\nTo delete the room later (keep this to yourself; it is shown only now):")
        print(f"  gambiarra delete --code {terminal_safe(room['code'])} --hub {args.hub}"
              f" --secret={terminal_safe(secret)}")  # "=": a secret may start with "-".
    return 0


async def delete(args: argparse.Namespace) -> int:
    """With the creator secret, or the owner token of a hub whose data dir is on this
    machine (``--data-dir``, or the default one)."""
    credential = args.secret or os.environ.get("GAMBIARRA_ROOM_SECRET")
    if not credential:
        token_file = (args.data_dir or default_data_dir()) / OWNER_TOKEN_FILE
        try:
            credential = token_file.read_text().strip()
        except OSError:
            return error("pass --secret (the creatorSecret printed by create), or run this on"
                         f" the hub's machine (no owner token at {token_file})")
    async with HubClient(args.hub) as hub:
        try:
            await hub.delete_room(args.code.upper(), credential)
        except HubUnreachableError as exc:
            return error(f"Failed to connect to hub at {args.hub}: {exc}")
        except HubApiError as exc:
            return error(terminal_safe(exc.message))
    print(f"Room {terminal_safe(args.code.upper())} deleted.")
    return 0


def _print_rooms(rooms: list[dict[str, Any]], indent: str = "  ") -> None:
    for room in rooms:
        lock = " (password)" if room.get("hasPassword") else ""
        created = datetime.fromtimestamp(room["createdAt"] / 1000).strftime("%Y-%m-%d %H:%M")
        print(f"{indent}{terminal_safe(room['code'])}  {terminal_safe(room['name'])}{lock}")
        print(f"{indent}  Participants: {terminal_safe(room['participantCount'])}")
        print(f"{indent}  Created: {created}\n")


async def list_rooms(args: argparse.Namespace) -> int:
    if args.hub is None:
        return await _list_discovered(args)
    async with HubClient(args.hub) as hub:
        try:
            rooms = await hub.list_rooms()
        except HubUnreachableError as exc:
            return error(f"Failed to connect to hub at {args.hub}: {exc}")
        except HubApiError as exc:
            return error(terminal_safe(exc.message))
    if args.json:
        print(json.dumps(rooms, indent=2))
    elif not rooms:
        print("No rooms available.")
    else:
        print("Available rooms:\n")
        _print_rooms(rooms)
    return 0


async def _list_discovered(args: argparse.Namespace) -> int:
    hubs = await discover_hubs(args.timeout, browse_addresses(args.interface))
    async with aiohttp.ClientSession() as http:
        found = [(hub, await fetch_rooms(http, hub)) for hub in hubs]
    if args.json:
        print(json.dumps([{"name": hub.name, "id": hub.hub_id, "url": hub.url,
                           "addresses": list(hub.addresses), "port": hub.port,
                           "rooms": rooms} for hub, rooms in found], indent=2))
        return 0
    if not found:
        print(f"No hubs found on the LAN within {args.timeout:g} s.")
        print("Check that you are on the same Wi-Fi, that the network allows devices to see"
              " each other (no client isolation), and that the firewall lets mDNS"
              " (UDP 5353) through. Or pass --hub URL.")
        return 0
    for hub, rooms in found:
        print(f"{terminal_safe(hub.name)}  {terminal_safe(hub.url)}")
        if rooms:
            _print_rooms(rooms, indent="    ")
        else:
            print("    No rooms yet.\n")
    return 0
