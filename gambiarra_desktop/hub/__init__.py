"""The Gambiarra hub: an aiohttp application with no Qt, usable headless and embeddable.

The names below load on first use: importing a small part of the hub (``hub.errors``,
which the gateway's errors build on) must not pull in the whole app, which imports the
gateway back, a cycle that broke ``import gambiarra_desktop.gateway.sizing``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gambiarra_desktop.hub.app import create_app
    from gambiarra_desktop.hub.config import HubConfig, default_data_dir
    from gambiarra_desktop.hub.server import HubServer

__all__ = ["HubConfig", "HubServer", "create_app", "default_data_dir"]
_HOMES = {"create_app": "app", "HubConfig": "config", "default_data_dir": "config",
          "HubServer": "server"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
