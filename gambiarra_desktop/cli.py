"""The ``gambiarra`` command: a headless hub, and the client side of the LAN pool.

It imports no Qt, so it runs on servers with no screen. The flags of ``create``, ``list``
and ``join`` are those of the TypeScript Gambiarra CLI, so its scripts keep working.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gambiarra_desktop import __version__
from gambiarra_desktop.accounting.rate_limits import REDIS_SCHEMES
from gambiarra_desktop.agent.config import DEFAULT_HOST as AGENT_DEFAULT_HOST
from gambiarra_desktop.agent.config import DEFAULT_HUB_BASE_URL, RELAY_TIMEOUT_S
from gambiarra_desktop.agent.config import DEFAULT_PORT as AGENT_DEFAULT_PORT
from gambiarra_desktop.commands.exit_codes import SERVE_EPILOG
from gambiarra_desktop.commands.keys_args import add_commands as add_keys_commands
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.protocol import DEFAULT_HOST, DEFAULT_PORT

DEFAULT_HUB_URL = f"http://localhost:{DEFAULT_PORT}"
BROWSE_SECONDS = 3.0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _redis_url(text: str) -> str:
    """Checked here, so a typo stops ``serve`` at once instead of every count going to
    memory with a warning."""
    if urlsplit(text).scheme not in REDIS_SCHEMES or len(text) > 2048:
        raise argparse.ArgumentTypeError(
            "not a Redis URL (redis://HOST:PORT/DB, rediss://... or unix://PATH)")
    return text


def _add_discovery_options(parser: argparse.ArgumentParser, hub_default: str | None) -> None:
    parser.add_argument("--hub", "-H", default=hub_default,
                        help="hub URL (default: find it on the LAN by mDNS)")
    parser.add_argument("--interface", metavar="NAME|IP",
                        help="network interface to search the LAN on")
    parser.add_argument("--timeout", type=_positive_seconds, default=BROWSE_SECONDS,
                        metavar="S", help="seconds to search the LAN (%(default)g)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gambiarra", description="Pool the LLM servers on your LAN behind one API."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run a hub (headless)", epilog=SERVE_EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind ({DEFAULT_HOST})")
    serve.add_argument("--port", "-p", type=int, default=DEFAULT_PORT, help="port (3000)")
    serve.add_argument("--data-dir", type=Path, help="where the hub keeps its database")
    serve.add_argument("--mdns", action="store_true", help="publish the hub on the LAN")
    serve.add_argument("--name", help="the hub's name on the LAN (default: <host>'s hub)")
    serve.add_argument("--interface", metavar="NAME|IP",
                       help="advertise this interface only (default: every real LAN one)")
    serve.add_argument("--no-qr", dest="qr", action="store_false",
                       help="do not draw the web page's QR code")
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
    serve.add_argument("--redis-url", type=_redis_url, metavar="URL",
                       default=os.environ.get("GAMBIARRA_REDIS_URL") or None,
                       help="keep rate-limit counters in this Redis, shared by every hub"
                            " that uses it (default: $GAMBIARRA_REDIS_URL, else in memory;"
                            " the variable keeps a password out of the process list)")
    serve.add_argument("--enable-terminal", action="store_true",
                       help="allow terminal sessions (seed 002's /v1/terminal): only the admin,"
                            " only from this machine; off by default")
    serve.add_argument("--terminal-workdir", type=Path, metavar="DIR", default=None,
                       help="folder local terminal commands start in (default: your home)")

    _add_agent_command(commands)

    create = commands.add_parser("create", help="create a room on a hub")
    create.add_argument("--name", "-n", required=True, help="room name")
    create.add_argument("--password", "-p", help="protect the room with a password")
    create.add_argument("--hub", "-H", default=DEFAULT_HUB_URL, help="hub URL")
    create.add_argument("--interface", metavar="NAME|IP",
                        help="which of this computer's addresses the room's web link names,"
                             " for a hub on this computer (default: the first LAN one)")
    create.add_argument("--no-qr", dest="qr", action="store_false",
                        help="do not draw the room page's QR code")

    delete = commands.add_parser(
        "delete", help="delete a room (its creator, or the hub's owner on its machine)")
    delete.add_argument("--code", "-c", required=True, help="room code")
    delete.add_argument("--hub", "-H", default=DEFAULT_HUB_URL, help="hub URL")
    delete.add_argument("--secret", "-s",
                        help="the creatorSecret printed by create (or $GAMBIARRA_ROOM_SECRET);"
                             " default: this machine's hub owner token")
    delete.add_argument("--data-dir", type=Path, default=None,
                        help="the hub's data dir, where its owner token is")

    list_rooms = commands.add_parser("list", help="list the hubs on the LAN and their rooms")
    _add_discovery_options(list_rooms, None)
    list_rooms.add_argument("--json", "-j", action="store_true", help="print JSON")

    join = commands.add_parser("join", help="share a local model with a room")
    join.add_argument("--code", "-c", required=True, help="room code")
    join.add_argument("--model", "-m", required=True, help="model name, as the server names it")
    join.add_argument("--endpoint", "-e",
                      help="model server URL (default: found on this machine)")
    join.add_argument("--nickname", "-n", help="your name in the room (default: host name)")
    join.add_argument("--password", "-p", help="the room's password")
    join.add_argument("--no-specs", action="store_true", help="do not tell the room your specs")
    join.add_argument("--max-concurrent", type=int, default=None, metavar="N",
                      help="requests your model server takes at once (default: what"
                           " llama.cpp says, else the hub learns it)")
    join.add_argument("--direct", action="store_true",
                      help="let the hub dial the endpoint instead of using the tunnel")
    _add_discovery_options(join, None)

    monitor = commands.add_parser("monitor", help="watch a room's live events")
    monitor.add_argument("--code", "-c", required=True, help="room code")
    monitor.add_argument("--json", "-j", action="store_true", help="one JSON object per line")
    monitor.add_argument("--password", "-p",
                         help="a password room's password (or $GAMBIARRA_ROOM_PASSWORD)")
    _add_discovery_options(monitor, None)
    _add_gateway_commands(commands)
    add_keys_commands(commands, DEFAULT_HUB_URL)
    return parser


def _add_gateway_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """``models`` (the gateway's entries on a hub) and ``admin`` (its admin account)."""
    models = commands.add_parser("models", help="list, add or remove the gateway's models")
    actions = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    hub_help = "hub URL (admin password: $GAMBIARRA_ADMIN_PASSWORD, else a prompt)"
    listed = actions.add_parser("list", help="the model entries by layer (no password)")
    listed.add_argument("--json", "-j", action="store_true", help="print JSON")
    add = actions.add_parser("add", help="add a model entry (admin)")
    add.add_argument("--id", required=True, help="the entry's id, as clients name it")
    add.add_argument("--provider", required=True,
                     help="gambiarra, oss-local, openai, openrouter or anthropic")
    add.add_argument("--model", required=True, help="the model's name at the provider")
    add.add_argument("--layer", required=True, help="L0, L1, L2 or L3")
    add.add_argument("--room", metavar="CODE", help="the room (provider gambiarra)")
    add.add_argument("--priority", type=int, help="lower is tried first (0)")
    add.add_argument("--relative-cost", type=float, metavar="X", help="breaks priority ties")
    add.add_argument("--disabled", action="store_true", help="add it switched off")
    remove = actions.add_parser("rm", help="remove a model entry (admin)")
    remove.add_argument("id", help="the entry's id")
    for action in (listed, add, remove):
        action.add_argument("--hub", "-H", default=DEFAULT_HUB_URL, help=hub_help)

    admin = commands.add_parser("admin", help="the gateway's admin account")
    admin_actions = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    password = admin_actions.add_parser(
        "set-password", help="change the admin password (on the hub's machine)")
    password.add_argument("--data-dir", type=Path, default=None,
                          help="the hub's data dir (default: this user's)")
    password.add_argument("--password-stdin", action="store_true",
                          help="read the password as one line from stdin (no prompts)")


def _port_from_env() -> int:
    """Seed 004: ``PORT`` sets the agent's port; a value that is not a port is ignored."""
    value = os.environ.get("PORT", "")
    return int(value) if value.isdigit() and 0 < int(value) < 65536 else AGENT_DEFAULT_PORT


def _add_agent_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``agent``: seed 004's agent API (tools that run commands, behind approvals)."""
    agent = commands.add_parser(
        "agent", help="run the agent API (seed 004) on this machine's loopback",
        description="The agent API: POST /chat streams an agent's events over SSE; every"
                    " tool call waits for POST /chat/relay/:id (or a stored rule). Callers"
                    " send the token from the agent-token file in the data dir.")
    agent.add_argument("--host", default=AGENT_DEFAULT_HOST,
                       help="loopback address to bind (%(default)s); nothing else is allowed")
    agent.add_argument("--port", "-p", type=int, default=_port_from_env(),
                       help="port (default: $PORT, else %(default)s)")
    agent.add_argument("--base-url", default=DEFAULT_HUB_BASE_URL, metavar="URL",
                       help="the OpenAI-compatible API the models are called at: the local"
                            " hub's gateway (%(default)s) or a room's"
                            " http://HUB:3000/rooms/CODE/v1")
    agent.add_argument("--workspace", type=Path, default=None, metavar="DIR",
                       help="the folder the tools work in (default: the current folder)")
    agent.add_argument("--model", default=os.environ.get("DEFAULT_MODEL") or None,
                       help="model used when a request names none (default: $DEFAULT_MODEL)")
    agent.add_argument("--relay-timeout", type=_positive_seconds, default=RELAY_TIMEOUT_S,
                       metavar="S", help="seconds a permission waits before it counts as"
                                         " denied (%(default)g)")
    agent.add_argument("--data-dir", type=Path, help="where the token, rules and audit live")
    agent.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from gambiarra_desktop.commands.serve import serve

        return _run(serve(args))
    if args.command == "agent":
        from gambiarra_desktop.commands.agent import run_agent

        return _run(run_agent(args))
    if args.command == "create":
        from gambiarra_desktop.commands.rooms import create

        return _run(create(args))
    if args.command == "delete":
        from gambiarra_desktop.commands.rooms import delete

        return _run(delete(args))
    if args.command == "list":
        from gambiarra_desktop.commands.rooms import list_rooms

        return _run(list_rooms(args))
    if args.command == "join":
        from gambiarra_desktop.commands.share import join

        return _run(join(args))
    if args.command == "models":
        from gambiarra_desktop.commands.models import models_command

        return _run(models_command(args))
    if args.command in ("keys", "usage"):
        from gambiarra_desktop.commands.keys import keys_command, usage_command

        return _run(keys_command(args) if args.command == "keys" else usage_command(args))
    if args.command == "admin":
        from gambiarra_desktop.commands.admin import set_password

        return _run(set_password(args))
    from gambiarra_desktop.commands.monitor import monitor

    return _run(monitor(args))


def _run(coroutine: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it exists: it makes the proxy's per-request overhead smaller."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


if __name__ == "__main__":
    sys.exit(main())
