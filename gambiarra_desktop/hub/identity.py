"""The hub's stable id: made on first run, kept in the data dir, so browsers recognise a
hub across restarts and address changes."""

from __future__ import annotations

import uuid
from pathlib import Path

from gambiarra_desktop.hub.data_files import read_or_create

HUB_ID_FILE = "hub-id"


def load_or_create_hub_id(data_dir: Path) -> str:
    # Not a secret (it is in every mDNS announcement), so readable like the rest.
    return read_or_create(data_dir / HUB_ID_FILE, lambda: uuid.uuid4().hex, mode=0o644)
