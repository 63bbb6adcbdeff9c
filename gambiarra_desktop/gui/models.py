"""Plain values the GUI passes around: a hub in the list, an open room."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HubEntry:
    key: str
    name: str
    url: str
    room_count: int = 0
    source: str = "lan"  # "lan", "manual" or "local"

    def label(self) -> str:
        rooms = f"{self.room_count} room" + ("" if self.room_count == 1 else "s")
        where = {"local": "", "manual": " · added by address"}.get(self.source, "")
        return f"{self.name}\n{self.url.removeprefix('http://')} · {rooms}{where}"


@dataclass
class RoomSession:
    hub_name: str
    hub_url: str
    code: str
    name: str
    has_password: bool
    password: str = ""

    @property
    def openai_base_url(self) -> str:
        return f"{self.hub_url}/rooms/{self.code}/v1"
