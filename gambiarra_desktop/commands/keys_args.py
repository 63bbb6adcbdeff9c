"""The arguments of ``gambiarra keys`` and ``gambiarra usage``, apart from the commands
themselves so that building the parser imports no HTTP client (``--help`` stays quick)."""

from __future__ import annotations

import argparse

API_KEY_ENV = "GAMBIARRA_API_KEY"
GROUP_BYS = ("key", "model", "participant", "room", "day")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser],
                 hub_default: str) -> None:
    """The ``keys`` and ``usage`` commands' arguments."""
    hub_help = "hub URL (admin password: $GAMBIARRA_ADMIN_PASSWORD, else a prompt)"
    keys = commands.add_parser("keys", help="list, create or revoke the gateway's API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    listed = actions.add_parser("list", help="every key with its limits and usage (no secrets)")
    listed.add_argument("--json", "-j", action="store_true", help="print JSON")
    create = actions.add_parser("create", help="make a key; it is printed this once")
    create.add_argument("--name", required=True, help="who or what uses it (1-64 characters)")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    create.add_argument("--budget", type=float, metavar="USD", help="spend cap per period")
    create.add_argument("--budget-period", choices=("day", "month"), help="default: month")
    create.add_argument("--rooms", metavar="CODES",
                        help="comma-separated room codes it is limited to (default: all)")
    create.add_argument("--priority", type=int, help="0-10, higher is served first")
    create.add_argument("--json", "-j", action="store_true", help="print the reply as JSON")
    create.add_argument("--quiet", "-q", action="store_true", help="print only the key")
    revoke = actions.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("id", help="the key's id (as `keys list` shows after gk-)")
    for action in (listed, create, revoke):
        action.add_argument("--hub", "-H", default=hub_default, help=hub_help)

    usage = commands.add_parser("usage", help="the gateway's usage ledger, summed")
    usage.add_argument("--group-by", "-g", choices=GROUP_BYS, default="key",
                       help="one line per key (else client address), model, ... (key)")
    usage.add_argument("--from", dest="start", metavar="WHEN",
                       help="epoch ms or ISO-8601 date/time, UTC (default: 30 days ago)")
    usage.add_argument("--to", dest="end", metavar="WHEN", help="as --from (default: now)")
    usage.add_argument("--json", "-j", action="store_true", help="print the reply as JSON")
    usage.add_argument("--hub", "-H", default=hub_default,
                       help=f"{hub_help}; or an API key in ${API_KEY_ENV} for its own usage")
