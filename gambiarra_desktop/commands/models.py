"""``gambiarra models list|add|rm``: the gateway's model entries on a hub, from a terminal.

``list`` needs no password (``GET /v1/models`` is public). ``add`` and ``rm`` log in as the
admin with ``GAMBIARRA_ADMIN_PASSWORD`` (scripts, CI) or a prompt that does not echo, so the
password never sits in the shell history or in ``ps`` output as a flag would.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from gambiarra_desktop.commands.terminal_text import terminal_safe
from gambiarra_desktop.gateway.accounts import ADMIN_PASSWORD_ENV
from gambiarra_desktop.gateway_client import GatewayApiError, GatewayClient


def gateway_error(exc: GatewayApiError) -> int:
    """The hub's ``error`` and, on the next line, its ``details``: what to fix."""
    print(f"Error: {terminal_safe(exc.message)}", file=sys.stderr)
    if exc.details:
        print(f"  {terminal_safe(exc.details)}", file=sys.stderr)
    return 1


ROOM_PASSWORD_ENV = "GAMBIARRA_ROOM_PASSWORD"  # noqa: S105 - a variable name.


def admin_password(hub_url: str) -> str | None:
    """From the environment, else asked for without echo; None when none was given."""
    password = os.environ.get(ADMIN_PASSWORD_ENV)
    if password:
        return password
    try:
        return getpass.getpass(f"Admin password for {hub_url}: ") or None
    except (EOFError, KeyboardInterrupt):
        return None


async def models_command(args: argparse.Namespace) -> int:
    async with GatewayClient(args.hub) as client:
        try:
            if args.models_command == "list":
                return _print_models(await client.models(), args.json)
            password = admin_password(args.hub)
            if password is None:
                print(f"Error: no admin password (set {ADMIN_PASSWORD_ENV} or type it at the"
                      " prompt)", file=sys.stderr)
                return 1
            await client.login(password)
            if args.models_command == "add":
                entry = await _add(client, _entry(args))
                print(json.dumps(entry, indent=2))
                return 0
            await client.delete_model(args.id)
        except GatewayApiError as exc:
            return gateway_error(exc)
    print(f"Model {terminal_safe(args.id)} removed.")
    return 0


async def _add(client: GatewayClient, entry: dict[str, Any]) -> dict[str, Any]:
    """Add the entry; a password room's password (the hub asks for it, as it opens the
    room at the hub's root) comes from ``GAMBIARRA_ROOM_PASSWORD`` or a prompt."""
    given = os.environ.get(ROOM_PASSWORD_ENV)
    if given:
        entry = {**entry, "roomPassword": given}
    try:
        return await client.add_model(entry)
    except GatewayApiError as exc:
        if exc.message != "Invalid field: roomPassword" or given:
            raise
        try:
            password = getpass.getpass(f"Password of room {entry.get('room')}: ")
        except (EOFError, KeyboardInterrupt):
            raise exc from None
        if not password:
            raise
        return await client.add_model({**entry, "roomPassword": password})


def _entry(args: argparse.Namespace) -> dict[str, Any]:
    """Only what was given: the hub fills in its documented defaults for the rest."""
    entry: dict[str, Any] = {"id": args.id, "provider": args.provider,
                             "apiModelName": args.model, "layer": args.layer.upper()}
    if args.room is not None:
        entry["room"] = args.room.upper()
    if args.priority is not None:
        entry["priority"] = args.priority
    if args.relative_cost is not None:
        entry["relativeCost"] = args.relative_cost
    if args.disabled:
        entry["enabled"] = False
    return entry


def _print_models(models: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps(models, indent=2))
        return 0
    if not models:
        print("No models yet. Add one with: gambiarra models add --id ID --provider P"
              " --model NAME --layer L0")
        return 0
    rows = [[str(m.get(key, "")) for key in ("layer", "id", "provider", "apiModelName")]
            + [f"priority {m.get('priority')}", _notes(m)] for m in models]
    rows = [[terminal_safe(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    return 0


def _notes(model: dict[str, Any]) -> str:
    notes = [] if model.get("enabled", True) else ["disabled"]
    if model.get("room"):
        notes.append(f"room {model['room']}")
    return ", ".join(notes)
