"""``gambiarra agent``: seed 004's agent API, headless, on this machine's loopback."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import sys
from pathlib import Path

from gambiarra_desktop.agent.config import AgentConfig
from gambiarra_desktop.agent.server import AgentServer, NotLoopbackError
from gambiarra_desktop.commands import exit_codes
from gambiarra_desktop.commands.common import stop_on_signals
from gambiarra_desktop.hub import default_data_dir
from gambiarra_desktop.hub.rooms.store_errors import StoreError

API_KEY_ENV = "GAMBIARRA_AGENT_API_KEY"
"""A key for the base URL (a hub API key, a room password), kept out of the process list."""
BAD_WORKSPACE = 8


async def run_agent(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workspace: Path = (args.workspace or Path.cwd()).expanduser()
    if not await asyncio.to_thread(workspace.is_dir):
        print(f"Error: the workspace {workspace} is not a folder", file=sys.stderr)
        return BAD_WORKSPACE
    config = AgentConfig(workspace=workspace, data_dir=args.data_dir or default_data_dir(),
                         base_url=args.base_url, default_model=args.model,
                         api_key=os.environ.get(API_KEY_ENV) or None,
                         relay_timeout_s=args.relay_timeout)
    try:
        server = AgentServer(config, args.host, args.port)
        await server.start()
    except NotLoopbackError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exit_codes.STORAGE_ERROR
    except OSError as exc:
        print(f"Error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return exit_codes.PORT_IN_USE if exc.errno == errno.EADDRINUSE \
            else exit_codes.CANNOT_LISTEN
    print(f"Gambiarra agent API on {server.url}", flush=True)
    print(f"  Models:    {config.base_url}"
          f" (default model: {config.default_model or 'none; requests name one'})", flush=True)
    print(f"  Workspace: {config.workspace.resolve()}", flush=True)
    print(f"  Token:     in {server.token_file} (send Authorization: Bearer <token>)",
          flush=True)
    print(f"  Approvals: every tool call waits for POST /chat/relay/:id; unanswered for"
          f" {config.relay_timeout_s:g} s means denied", flush=True)
    stop = stop_on_signals()
    try:
        await stop.wait()
    finally:
        print("Stopping the agent API…", flush=True)
        await server.stop()
    return 0
