"""The ``gambiarra`` command: a headless hub and a small client of any hub's API.

It imports no Qt, so it runs on servers with no screen. The flags of ``create`` and
``list`` are those of the TypeScript Gambiarra CLI, so scripts written for it keep working.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from gambiarra_desktop import __version__
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.protocol import DEFAULT_HOST, DEFAULT_PORT

DEFAULT_HUB_URL = f"http://localhost:{DEFAULT_PORT}"
CLIENT_TIMEOUT_S = 15.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gambiarra", description="Pool the LLM servers on your LAN behind one API."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run a hub (headless)")
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind ({DEFAULT_HOST})")
    serve.add_argument("--port", "-p", type=int, default=DEFAULT_PORT, help="port (3000)")
    serve.add_argument("--data-dir", type=Path, help="where the hub keeps its database")
    serve.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"])
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request")
    defaults = HubConfig()
    serve.add_argument("--connect-timeout", type=_positive_seconds,
                       default=defaults.upstream_connect_timeout_s, metavar="S",
                       help="seconds to connect to a model server (%(default)g)")
    serve.add_argument("--first-byte-timeout", type=_positive_seconds,
                       default=defaults.upstream_first_byte_timeout_s, metavar="S",
                       help="seconds for a model server to start answering (%(default)g)")
    serve.add_argument("--idle-timeout", type=_positive_seconds,
                       default=defaults.upstream_idle_timeout_s, metavar="S",
                       help="longest silence inside a streamed answer (%(default)g)")

    create = commands.add_parser("create", help="create a room on a hub")
    create.add_argument("--name", "-n", required=True, help="room name")
    create.add_argument("--password", "-p", help="protect the room with a password")
    create.add_argument("--hub", "-H", default=DEFAULT_HUB_URL, help="hub URL")

    list_rooms = commands.add_parser("list", help="list the rooms of a hub")
    list_rooms.add_argument("--hub", "-H", default=DEFAULT_HUB_URL, help="hub URL")
    list_rooms.add_argument("--json", "-j", action="store_true", help="print JSON")
    return parser


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _run(_serve(args))
    if args.command == "create":
        return _run(_create(args))
    return _run(_list(args))


def _run(coroutine: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it exists: it makes the proxy's per-request overhead smaller."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


async def _serve(args: argparse.Namespace) -> int:
    from gambiarra_desktop.hub import HubServer, default_data_dir

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    data_dir = args.data_dir or default_data_dir()
    config = HubConfig(
        upstream_connect_timeout_s=args.connect_timeout,
        upstream_first_byte_timeout_s=args.first_byte_timeout,
        upstream_idle_timeout_s=args.idle_timeout,
    )
    server = HubServer(data_dir, args.host, args.port, config=config, access_log=args.access_log)
    try:
        await server.start()
    except OSError as exc:
        print(f"Error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        print("Is another hub running? Try another port with --port.", file=sys.stderr)
        return 1
    print(f"Gambiarra hub listening on {args.host}:{server.port}", flush=True)
    print(f"  Local API: {server.url}", flush=True)
    print(f"  Data dir:  {data_dir}", flush=True)
    print(f"  Rooms:     {len(server.registry)} restored", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Windows has no add_signal_handler; Ctrl+C still raises KeyboardInterrupt there.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        print("Stopping hub…", flush=True)
        await server.stop()
    return 0


async def _request(method: str, url: str, payload: dict[str, Any] | None = None) -> Any:
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.request(method, url, json=payload) as response,
    ):
        try:
            data = await response.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            data = None
        if response.status >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise HubError(message or f"hub answered HTTP {response.status}")
        return data


class HubError(Exception):
    pass


async def _call_hub(hub: str, method: str, path: str, payload: dict[str, Any] | None) -> Any:
    try:
        return await _request(method, hub.rstrip("/") + path, payload)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise HubError(f"Failed to connect to hub at {hub}: {exc or type(exc).__name__}") from exc


async def _create(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"name": args.name}
    if args.password:
        payload["password"] = args.password
    try:
        data = await _call_hub(args.hub, "POST", "/rooms", payload)
    except HubError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    room = data["room"]
    print("Room created!")
    print(f"  Code: {room['code']}")
    print(f"  ID: {room['id']}")
    if room.get("hasPassword"):
        print("  Password protected: yes")
    print("\nShare the code with participants to join.")
    print(f"OpenAI base URL: {args.hub.rstrip('/')}/rooms/{room['code']}/v1")
    return 0


async def _list(args: argparse.Namespace) -> int:
    try:
        data = await _call_hub(args.hub, "GET", "/rooms", None)
    except HubError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    rooms = data.get("rooms", [])
    if args.json:
        print(json.dumps(rooms, indent=2))
    elif not rooms:
        print("No rooms available.")
    else:
        print("Available rooms:\n")
        for room in rooms:
            lock = " (password)" if room.get("hasPassword") else ""
            created = datetime.fromtimestamp(room["createdAt"] / 1000).strftime("%Y-%m-%d %H:%M")
            print(f"  {room['code']}  {room['name']}{lock}")
            print(f"    Participants: {room['participantCount']}")
            print(f"    Created: {created}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
