"""How the window is wired to the machine: tests pin everything to loopback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gambiarra_desktop.hub.config import default_data_dir
from gambiarra_desktop.protocol import DEFAULT_HOST


@dataclass
class GuiConfig:
    data_dir: Path
    host_bind: str = DEFAULT_HOST
    host_port: int | None = None
    """``None``: the port from the settings (3000 by default). Tests use 0."""
    mdns_interface: str | None = None
    """Pin zeroconf to one interface (tests: ``127.0.0.1``); ``None`` for every LAN one."""
    cooperating_mdns: bool = False
    share_health_interval_s: float = 10.0

    @classmethod
    def default(cls) -> GuiConfig:
        return cls(data_dir=default_data_dir())
