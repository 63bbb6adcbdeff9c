"""``gambiarra keys list|create|revoke`` and ``gambiarra usage``: API keys and the usage
ledger of a hub's gateway, from a terminal.

The admin logs in as ``gambiarra models`` does (``GAMBIARRA_ADMIN_PASSWORD`` or a prompt
without echo). ``usage`` also takes an API key in ``GAMBIARRA_API_KEY`` instead: the hub
then answers with that key's own rows only. ``create`` prints the new key once, on its own
line on stdout (so ``KEY=$(gambiarra keys create --name ci -q)`` works); it is never
shown again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from gambiarra_desktop.commands.keys_args import API_KEY_ENV
from gambiarra_desktop.commands.models import admin_password, gateway_error
from gambiarra_desktop.commands.terminal_text import terminal_safe
from gambiarra_desktop.gateway.accounts import ADMIN_PASSWORD_ENV
from gambiarra_desktop.gateway_client import GatewayApiError, GatewayClient
from gambiarra_desktop.usage_text import (
    KEY_COLUMNS,
    key_row,
    room_codes,
    table_lines,
    usage_rows,
)

SHOWN_ONCE = "This key is shown only now: store it somewhere safe (the hub keeps only a hash)."


async def _log_in(client: GatewayClient, hub_url: str, allow_key: bool = False) -> bool:
    key = os.environ.get(API_KEY_ENV) if allow_key else None
    if key:
        client.token = key
        return True
    password = admin_password(hub_url)
    if password is None:
        print(f"Error: no admin password (set {ADMIN_PASSWORD_ENV} or type it at the prompt)",
              file=sys.stderr)
        return False
    await client.login(password)
    return True


async def keys_command(args: argparse.Namespace) -> int:
    async with GatewayClient(args.hub) as client:
        try:
            if not await _log_in(client, args.hub):
                return 1
            if args.keys_command == "list":
                return _print_keys(await client.keys(), args.json)
            if args.keys_command == "create":
                created = await client.create_key(
                    args.name, rpm=args.rpm, tpm=args.tpm, budget=args.budget,
                    budget_period=args.budget_period,
                    rooms=room_codes(args.rooms) if args.rooms else None,
                    priority=args.priority)
                return _print_created(created, args.json, args.quiet)
            await client.revoke_key(args.id)
        except GatewayApiError as exc:
            return gateway_error(exc)
    print(f"Key {terminal_safe(args.id)} revoked: requests with it are refused from now on.")
    return 0


async def usage_command(args: argparse.Namespace) -> int:
    async with GatewayClient(args.hub) as client:
        try:
            if not await _log_in(client, args.hub, allow_key=True):
                return 1
            reply = await client.usage(args.group_by, args.start, args.end)
        except GatewayApiError as exc:
            return gateway_error(exc)
    if args.json:
        print(json.dumps(reply, indent=2))
        return 0
    rows: list[dict[str, Any]] = reply["data"]
    if not rows:
        print("No usage in this period.")
        return 0
    for line in table_lines(usage_rows(rows, args.group_by)):
        print(terminal_safe(line))
    return 0


def _print_keys(keys: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps(keys, indent=2))
        return 0
    if not keys:
        print("No API keys yet. Make one with: gambiarra keys create --name NAME")
        return 0
    for line in table_lines([KEY_COLUMNS, *(key_row(k) for k in keys)]):
        print(terminal_safe(line))
    return 0


def _print_created(created: dict[str, Any], as_json: bool, quiet: bool) -> int:
    if as_json:
        print(json.dumps(created, indent=2))
    elif quiet:
        print(created["key"])
    else:
        print(f"Created key {terminal_safe(str(created.get('name')))}"
              f" ({terminal_safe(str(created.get('prefix')))}):")
        print(created["key"])
    print(SHOWN_ONCE, file=sys.stderr)
    return 0
