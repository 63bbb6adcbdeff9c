"""The hub's stable id: made on first run, kept in the data dir, so browsers recognise a
hub across restarts and address changes."""

from __future__ import annotations

import uuid
from pathlib import Path

HUB_ID_FILE = "hub-id"


def load_or_create_hub_id(data_dir: Path) -> str:
    path = data_dir / HUB_ID_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    hub_id = uuid.uuid4().hex
    path.write_text(hub_id + "\n")
    return hub_id
