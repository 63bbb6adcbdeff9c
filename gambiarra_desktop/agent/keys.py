"""The agent app's typed state (aiohttp ``AppKey``s)."""

from __future__ import annotations

from aiohttp import web

from gambiarra_desktop.agent.service import AgentService
from gambiarra_desktop.agent.token import TokenCheck

SERVICE = web.AppKey("agent.service", AgentService)
TOKEN = web.AppKey("agent.token", TokenCheck)
