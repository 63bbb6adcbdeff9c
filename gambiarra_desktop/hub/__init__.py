"""The Gambiarra hub: an aiohttp application with no Qt, usable headless and embeddable."""

from gambiarra_desktop.hub.app import create_app
from gambiarra_desktop.hub.config import HubConfig, default_data_dir
from gambiarra_desktop.hub.server import HubServer

__all__ = ["HubConfig", "HubServer", "create_app", "default_data_dir"]
