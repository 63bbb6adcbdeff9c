"""Typed application keys: the hub's per-app state, so several hubs can share a process."""

from __future__ import annotations

from aiohttp import web

from gambiarra_desktop.events import EventBus
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.password_gate import PasswordGate
from gambiarra_desktop.hub.proxy import ChatProxy
from gambiarra_desktop.hub.rooms import RoomRegistry
from gambiarra_desktop.hub.scheduler import Scheduler
from gambiarra_desktop.hub.sse import RoomEventStreams
from gambiarra_desktop.hub.stats import StatsBook
from gambiarra_desktop.hub.store import Store
from gambiarra_desktop.hub.tunnel import TunnelHub

CONFIG = web.AppKey("config", HubConfig)
BUS = web.AppKey("bus", EventBus)
STORE = web.AppKey("store", Store)
REGISTRY = web.AppKey("registry", RoomRegistry)
PROXY = web.AppKey("proxy", ChatProxy)
STREAMS = web.AppKey("streams", RoomEventStreams)
TUNNELS = web.AppKey("tunnels", TunnelHub)
STATS = web.AppKey("stats", StatsBook)
SCHEDULER = web.AppKey("scheduler", Scheduler)
PASSWORDS = web.AppKey("passwords", PasswordGate)
