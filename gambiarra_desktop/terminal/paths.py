"""The terminal API's paths, on their own so the hub's CORS hook can skip them without
importing the terminal (which imports the hub's responses)."""

from __future__ import annotations

TERMINAL_PATH_PREFIX = "/v1/terminal"


def is_terminal_path(path: str) -> bool:
    return path == TERMINAL_PATH_PREFIX or path.startswith(TERMINAL_PATH_PREFIX + "/")
