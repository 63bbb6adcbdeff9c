"""``gambiarra serve``'s exit codes: one per reason a hub cannot start, so scripts and
service managers can tell a busy port from a full disk without reading the text.

Kept apart from ``serve.py`` so ``gambiarra --help`` can list them without importing the
hub.
"""

from __future__ import annotations

PORT_IN_USE = 1
DATA_DIR_NOT_WRITABLE = 3
DATABASE_UNUSABLE = 4
"""Damaged, not SQLite, or another program's SQLite database: kept, never rewritten."""
DISK_FULL = 5
STORAGE_ERROR = 6
CANNOT_LISTEN = 7
"""Any other failure to listen: an address this machine does not have, a port below 1024
without the privilege to use it."""

SERVE_EPILOG = f"""\
exit codes:
  0  stopped (Ctrl+C or SIGTERM)
  {PORT_IN_USE}  the port is in use (another hub?): try --port
  2  bad command line
  {DATA_DIR_NOT_WRITABLE}  the data dir cannot be created or written
  {DATABASE_UNUSABLE}  the database is damaged or not Gambiarra's: it is kept; move it aside
     (mv FILE FILE.bad) and start again
  {DISK_FULL}  the disk holding the data dir is full
  {STORAGE_ERROR}  another error reading or writing the database
  {CANNOT_LISTEN}  cannot listen on that address for another reason
"""
