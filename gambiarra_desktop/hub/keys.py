"""Typed application keys: the hub's per-app state, so several hubs can share a process."""

from __future__ import annotations

from aiohttp import web

from gambiarra_desktop.events import EventBus
from gambiarra_desktop.hub.api.sse import RoomEventStreams
from gambiarra_desktop.hub.config import HubConfig
from gambiarra_desktop.hub.proxy.forward import ChatProxy
from gambiarra_desktop.hub.proxy.scheduler import Scheduler
from gambiarra_desktop.hub.proxy.stats import StatsBook
from gambiarra_desktop.hub.proxy.tunnel import TunnelHub
from gambiarra_desktop.hub.rooms.lifecycle import RoomRegistry
from gambiarra_desktop.hub.rooms.password_gate import PasswordGate
from gambiarra_desktop.hub.rooms.store import Store

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
