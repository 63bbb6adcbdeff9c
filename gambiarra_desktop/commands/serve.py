"""``gambiarra serve``: a headless hub, optionally published on the LAN."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import sys

from gambiarra_desktop.accounting.rate_limits import shown_redis_url
from gambiarra_desktop.commands import exit_codes
from gambiarra_desktop.commands.common import stop_on_signals
from gambiarra_desktop.commands.web_link import LOOPBACK_ONLY, NO_LAN_ADDRESS, print_web_link
from gambiarra_desktop.firewall import firewall_advice, reachable_from_lan
from gambiarra_desktop.gateway.accounts import password_file_notice
from gambiarra_desktop.hub import HubConfig, HubServer, default_data_dir
from gambiarra_desktop.hub.rooms.store_errors import (
    DatabaseCorruptError,
    DataDirNotWritableError,
    DiskFullError,
    ForeignDatabaseError,
    StoreError,
)
from gambiarra_desktop.web.links import guest_hub_url, hub_page_url, lan_hosts

log = logging.getLogger(__name__)

STORE_EXIT_CODES: dict[type[StoreError], int] = {
    DataDirNotWritableError: exit_codes.DATA_DIR_NOT_WRITABLE,
    DatabaseCorruptError: exit_codes.DATABASE_UNUSABLE,
    ForeignDatabaseError: exit_codes.DATABASE_UNUSABLE,
    DiskFullError: exit_codes.DISK_FULL,
}


async def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    data_dir = args.data_dir or default_data_dir()
    config = HubConfig(
        upstream_connect_timeout_s=args.connect_timeout,
        upstream_first_byte_timeout_s=args.first_byte_timeout,
        upstream_idle_timeout_s=args.idle_timeout,
        redis_url=args.redis_url,
        enable_terminal=args.enable_terminal,
        terminal_workdir=str(args.terminal_workdir) if args.terminal_workdir else None,
    )
    server = HubServer(data_dir, args.host, args.port, config=config, access_log=args.access_log)
    try:
        await server.start()
    except StoreError as exc:  # Raised while the app starts, before the port is bound.
        print(f"Error: {exc}", file=sys.stderr)
        return STORE_EXIT_CODES.get(type(exc), exit_codes.STORAGE_ERROR)
    except OSError as exc:
        print(f"Error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        if exc.errno == errno.EADDRINUSE:
            print("Is another hub running? Try another port with --port.", file=sys.stderr)
            return exit_codes.PORT_IN_USE
        return exit_codes.CANNOT_LISTEN
    print(f"Gambiarra hub listening on {args.host}:{server.port}", flush=True)
    print(f"  Local API: {server.url}", flush=True)
    print(f"  Data dir:  {data_dir}", flush=True)
    print(f"  Rooms:     {len(server.registry)} restored", flush=True)
    if args.redis_url:
        print(f"  Limits:    counted in Redis at {shown_redis_url(args.redis_url)}", flush=True)
    print(f"  Gateway:   {server.url}/v1 (model \"auto\"; admin user \"admin\")", flush=True)
    if args.enable_terminal:
        print("  Terminal:  on, for the admin from this machine only", flush=True)
    if (password_file := server.new_admin_password_file) is not None:
        print(f"  Admin:     new account; its password is in {password_file}", flush=True)
        log.info(password_file_notice(password_file))
    presence = None
    if args.mdns:
        from gambiarra_desktop.commands.serve_mdns import LanPresence

        presence = LanPresence(server, args.name, args.interface)
        await presence.start()
    if reachable_from_lan(args.host):
        advice = await asyncio.to_thread(firewall_advice, server.port)
        if advice.commands:  # Only Linux firewalls stay silent; say what to run.
            print(f"  Firewall:  {advice.what_happens}", flush=True)
            for command in advice.commands:
                print(f"               {command}", flush=True)
    # Last: the QR code under it is the tallest thing printed.
    listens_on_lan = reachable_from_lan(args.host)
    guest_url = guest_hub_url(server.url, lan_hosts(args.interface), listens_on_lan)
    print_web_link("Web page: ", guest_url and hub_page_url(guest_url),
                   LOOPBACK_ONLY if not listens_on_lan else NO_LAN_ADDRESS,
                   hub_page_url(server.url), qr=args.qr)
    stop = stop_on_signals()
    try:
        await stop.wait()
    finally:
        print("Stopping hub…", flush=True)
        if presence is not None:
            await presence.stop()
        await server.stop()
    return 0
