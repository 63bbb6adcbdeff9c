"""``gambiarra admin set-password``: change the gateway's admin password on the hub's machine.

It writes the hub's database directly, so it works with the hub stopped (or running: the
hub reads the account on every check) and needs no old password: whoever can write the
data dir owns the hub anyway. Every token issued before stops working, and the first-run
``admin-password`` file, now stale, is removed. The password is typed twice without echo,
or read as one line from stdin (``--password-stdin``, for scripts); it is never printed.
"""

from __future__ import annotations

import argparse
import getpass
import hmac
import os
import sqlite3
import sys

from gambiarra_desktop.commands.common import error
from gambiarra_desktop.gateway.accounts import (
    ADMIN_PASSWORD_ENV,
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    set_admin_password,
)
from gambiarra_desktop.hub.config import DATABASE_FILE_NAME, default_data_dir
from gambiarra_desktop.hub.rooms.store_errors import StoreError


def _read_password(from_stdin: bool) -> str | None:
    """The new password, or None after printing why there is none."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            print("Error: no password on stdin", file=sys.stderr)
            return None
        return line.rstrip("\r\n")
    try:
        first = getpass.getpass("New admin password: ")
        second = getpass.getpass("Repeat it: ")
    except (EOFError, KeyboardInterrupt):
        print("\nError: no password given", file=sys.stderr)
        return None
    if not hmac.compare_digest(first.encode(), second.encode()):  # A secret: as all are.
        print("Error: the two passwords differ; nothing changed", file=sys.stderr)
        return None
    return first


async def set_password(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or default_data_dir()
    password = _read_password(args.password_stdin)
    if password is None:
        return 1
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        return error(f"the password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS}"
                     " characters; nothing changed")
    existed = (data_dir / DATABASE_FILE_NAME).exists()
    try:
        await set_admin_password(data_dir, password)
    except (StoreError, OSError, sqlite3.Error, ValueError) as exc:
        return error(f"cannot change the password in {data_dir}: {exc}")
    print(f"Admin password changed (data dir {data_dir}).")
    print("Tokens issued before now no longer work: log in again.")
    if not existed:
        print("No hub had used this data dir yet: a hub started with it will take this"
              " password.")
    if os.environ.get(ADMIN_PASSWORD_ENV):
        print(f"Note: a hub started with {ADMIN_PASSWORD_ENV} set takes that password at"
              " start instead.")
    return 0
