"""What the app remembers between runs (QSettings): nickname, last endpoint, rooms this
user created, manual hubs, theme, window geometry, the terminal's two switches and the
Agent page's choices.

Everything read back is checked: the file may come from an older or newer app, or a hand
edit, and a value the app cannot use falls back to its default instead of stopping the
app at start."""

from __future__ import annotations

import json
import socket

from PySide6.QtCore import QByteArray, QSettings

from gambiarra_desktop.agent.config import DEFAULT_HUB_BASE_URL, DEFAULT_PORT
from gambiarra_desktop.gui.theme import THEME_MODES, ThemeMode

MAX_PORT = 65535


class AppSettings:
    def __init__(self, settings: QSettings | None = None) -> None:
        self._s = settings or QSettings("Gambiarra", "Gambiarra Desktop")

    def _get(self, key: str, default: str = "") -> str:
        value = self._s.value(key, default)
        return str(value) if value is not None else default

    @property
    def nickname(self) -> str:
        return self._get("share/nickname") or socket.gethostname().split(".")[0]

    @nickname.setter
    def nickname(self, value: str) -> None:
        self._s.setValue("share/nickname", value)

    @property
    def last_endpoint(self) -> str:
        return self._get("share/endpoint")

    @last_endpoint.setter
    def last_endpoint(self, value: str) -> None:
        self._s.setValue("share/endpoint", value)

    @property
    def last_model(self) -> str:
        return self._get("share/model")

    @last_model.setter
    def last_model(self, value: str) -> None:
        self._s.setValue("share/model", value)

    @property
    def theme(self) -> ThemeMode:
        """An unknown value (an older or newer app, a hand-edited file) is "system"."""
        value = self._get("view/theme", "system")
        return value if value in THEME_MODES else "system"

    @theme.setter
    def theme(self, value: str) -> None:
        self._s.setValue("view/theme", value)

    @property
    def host_port(self) -> int:
        return self._port("host/port", 3000)

    @host_port.setter
    def host_port(self, value: int) -> None:
        self._s.setValue("host/port", value)

    @property
    def redis_url(self) -> str:
        """Where the hosted hub keeps rate-limit counters ("" = in memory), as
        ``gambiarra serve --redis-url``: hubs sharing one Redis share the counts."""
        return self._get("host/redis_url", "")

    @redis_url.setter
    def redis_url(self, value: str) -> None:
        self._s.setValue("host/redis_url", value)

    def _port(self, key: str, default: int) -> int:
        """A port number from the file, or ``default`` when it is not one (0: any free)."""
        try:
            port = int(self._get(key, str(default)))
        except ValueError:
            return default
        return port if 0 <= port <= MAX_PORT else default

    def _flag(self, key: str) -> bool:
        """A checkbox's state; anything but a clear "true" is off (INI files hold text)."""
        return self._get(key, "false").strip().lower() in ("true", "1")

    @property
    def terminal_enabled(self) -> bool:
        """"Allow terminal sessions (only from this computer)": off unless the host turns it
        on, since a session is a shell on this machine."""
        return self._flag("terminal/enabled")

    @terminal_enabled.setter
    def terminal_enabled(self, value: bool) -> None:
        self._s.setValue("terminal/enabled", "true" if value else "false")

    @property
    def terminal_skip_local_approval(self) -> bool:
        """"Don't ask before local sessions": off, so each new shell needs the host's yes."""
        return self._flag("terminal/dont_ask_local")

    @terminal_skip_local_approval.setter
    def terminal_skip_local_approval(self, value: bool) -> None:
        self._s.setValue("terminal/dont_ask_local", "true" if value else "false")

    @property
    def agent_enabled(self) -> bool:
        """"Agent API on 127.0.0.1:4000": off unless turned on, since the agent runs
        commands on this machine (each one asked first)."""
        return self._flag("agent/enabled")

    @agent_enabled.setter
    def agent_enabled(self, value: bool) -> None:
        self._s.setValue("agent/enabled", "true" if value else "false")

    @property
    def agent_port(self) -> int:
        """Another port only when 4000 is taken by something else on this machine."""
        return self._port("agent/port", DEFAULT_PORT)

    @agent_port.setter
    def agent_port(self, value: int) -> None:
        self._s.setValue("agent/port", value)

    @property
    def agent_workspace(self) -> str:
        return self._get("agent/workspace")

    @agent_workspace.setter
    def agent_workspace(self, value: str) -> None:
        self._s.setValue("agent/workspace", value)

    @property
    def agent_model(self) -> str:
        return self._get("agent/model", "auto")

    @agent_model.setter
    def agent_model(self, value: str) -> None:
        self._s.setValue("agent/model", value)

    @property
    def agent_base_url(self) -> str:
        """Where the agent's model calls go when this app hosts no hub."""
        return self._get("agent/base_url", DEFAULT_HUB_BASE_URL) or DEFAULT_HUB_BASE_URL

    @agent_base_url.setter
    def agent_base_url(self, value: str) -> None:
        self._s.setValue("agent/base_url", value)

    def _json_list(self, key: str) -> list[str]:
        try:
            value = json.loads(self._get(key, "[]"))
        except ValueError:
            return []
        return [str(v) for v in value] if isinstance(value, list) else []

    @property
    def hosted_rooms(self) -> list[str]:
        return self._json_list("host/rooms")

    def remember_hosted_room(self, code: str) -> None:
        rooms = self.hosted_rooms
        if code not in rooms:
            self._s.setValue("host/rooms", json.dumps([*rooms, code]))

    def creator_secret(self, hub_url: str, code: str) -> str | None:
        """The secret ``POST /rooms`` gave for a room this user created: it deletes it.
        Kept in the user's own settings file, like the other per-user state."""
        secrets = self._json_object("rooms/creator-secrets")
        value = secrets.get(f"{hub_url}|{code}")
        return value if isinstance(value, str) else None

    def remember_creator_secret(self, hub_url: str, code: str, secret: str) -> None:
        secrets = self._json_object("rooms/creator-secrets")
        secrets[f"{hub_url}|{code}"] = secret
        self._s.setValue("rooms/creator-secrets", json.dumps(secrets))

    def forget_creator_secret(self, hub_url: str, code: str) -> None:
        secrets = self._json_object("rooms/creator-secrets")
        if secrets.pop(f"{hub_url}|{code}", None) is not None:
            self._s.setValue("rooms/creator-secrets", json.dumps(secrets))

    def _json_object(self, key: str) -> dict[str, object]:
        try:
            value = json.loads(self._get(key, "{}"))
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def manual_hubs(self) -> list[str]:
        return self._json_list("hubs/manual")

    def remember_manual_hub(self, url: str) -> None:
        hubs = self.manual_hubs
        if url not in hubs:
            self._s.setValue("hubs/manual", json.dumps([*hubs, url]))

    def forget_manual_hub(self, url: str) -> None:
        """Removed by the user: gone from the list for good, not just until the restart."""
        hubs = self.manual_hubs
        if url in hubs:
            self._s.setValue("hubs/manual", json.dumps([h for h in hubs if h != url]))

    @property
    def geometry(self) -> QByteArray | None:
        value = self._s.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._s.setValue("window/geometry", value)

    def sync(self) -> None:
        self._s.sync()
