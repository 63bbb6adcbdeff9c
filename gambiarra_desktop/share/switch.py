"""The share switch's one source of truth: idle, starting, sharing, stopping.

Every control that starts or stops sharing (the room tab's switch, the tray's item, the
banner) goes through one :class:`ShareSwitch`, so they cannot disagree, and a fast
on/off/on cannot leave an orphan agent beating in a room:

    state     on                              off
    idle      -> starting (one start task)    stays idle
    starting  ignored (one start at a time)   cancel the start task -> stopping -> idle
    sharing   ignored                         stopping: the agent leaves -> idle
    stopping  waits for the stop, then starts waits for the same stop
              (unless a later "off" came)

A start reads the machine's specs first (``nvidia-smi`` may take up to 2 s), then makes
and starts the agent. "Off" during that read cancels it, so no agent is ever made; "off"
once the agent exists awaits its leave, so nothing beats after "off" returns. An agent
that ends by itself ("failed": wrong password, model gone) takes the switch back to idle.

The specs reader is injected, so tests can make it slow without ``nvidia-smi``. No Qt here:
the GUI's controller drives it and listens to ``on_change``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from gambiarra_desktop.share.agent import AgentStatus, ShareAgent, ShareSettings
from gambiarra_desktop.share.specs import machine_specs

log = logging.getLogger(__name__)

SwitchState = Literal["idle", "starting", "sharing", "stopping"]
SpecsReader = Callable[[], Awaitable[dict[str, Any]]]


class ShareSwitch:
    def __init__(
        self,
        on_change: Callable[[SwitchState], None] | None = None,
        on_status: Callable[[AgentStatus], None] | None = None,
        specs_reader: SpecsReader = machine_specs,
    ) -> None:
        """``on_change``: the switch's state changed. ``on_status``: the current agent's
        status (statuses of an agent already replaced are dropped)."""
        self.specs_reader = specs_reader
        self._on_change = on_change
        self._on_status = on_status
        self._state: SwitchState = "idle"
        self._agent: ShareAgent | None = None
        self._hub_url = ""
        self._settings: ShareSettings | None = None
        self._starting: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._flips = 0
        """Counts every on and off: an "on" that waited for a stop starts only if no
        later flip came meanwhile, so the last flip the user made is what holds."""

    @property
    def state(self) -> SwitchState:
        return self._state

    @property
    def agent(self) -> ShareAgent | None:
        return self._agent

    @property
    def target(self) -> tuple[str, ShareSettings] | None:
        """``(hub URL, settings)`` of the share started or in progress; ``None`` when idle."""
        if self._settings is None or self._state in ("idle", "stopping"):
            return None
        return self._hub_url, self._settings

    def _set(self, state: SwitchState) -> None:
        if state != self._state:
            self._state = state
            log.debug("share switch: %s", state)
            if self._on_change is not None:
                self._on_change(state)

    async def turn_on(self, hub_url: str, settings: ShareSettings) -> None:
        """Start sharing ``settings`` with the room at ``hub_url``; returns once the agent
        runs (or the start was cancelled). A share already on or starting is left alone:
        moving it is :meth:`turn_off` then this."""
        self._flips += 1
        flip = self._flips
        while self._stopping is not None:
            await asyncio.shield(self._stopping)
            if flip != self._flips:
                return  # Flipped again while the stop ran: that later flip decides.
        if self._state in ("starting", "sharing"):
            return
        self._hub_url, self._settings = hub_url.rstrip("/"), settings
        self._set("starting")
        task = asyncio.get_running_loop().create_task(self._start(hub_url, settings),
                                                      name="share-start")
        self._starting = task
        try:
            await asyncio.shield(task)  # Shielded: only "off" cancels a start.
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # This caller was cancelled, not the start.

    async def _start(self, hub_url: str, settings: ShareSettings) -> None:
        try:
            settings.specs = await self.specs_reader()
        except Exception:  # Specs are a courtesy to the room; sharing goes on without.
            log.exception("could not read this machine's specs")
            settings.specs = {}
        agent = ShareAgent(hub_url, settings, lambda status: self._agent_status(agent, status))
        self._agent = agent  # No await between making it and owning it: "off" sees it.
        await agent.start()
        self._starting = None
        self._set("sharing")

    def _agent_status(self, agent: ShareAgent, status: AgentStatus) -> None:
        if agent is not self._agent:
            return  # An agent already replaced or stopped: not this switch's news.
        if status.state == "failed" and self._state == "sharing":
            self._agent = None  # It ended by itself; its task is done, nothing to stop.
            self._settings = None
            self._set("idle")
        if self._on_status is not None:
            self._on_status(status)

    async def turn_off(self) -> None:
        """Stop sharing: cancel a start in flight, or make the agent leave; returns once
        nothing of this share runs any more. Never raises."""
        self._flips += 1
        if self._stopping is None:
            if self._state == "idle":
                return
            self._set("stopping")
            self._stopping = asyncio.get_running_loop().create_task(self._stop(),
                                                                    name="share-stop")
        stopping = self._stopping
        await asyncio.shield(stopping)

    async def _stop(self) -> None:
        try:
            starting, self._starting = self._starting, None
            if starting is not None:
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
            agent = self._agent
            if agent is not None:
                await agent.stop()  # Its "stopped" still reaches on_status: it is current.
        except Exception:  # stop() must leave the switch usable, whatever happened.
            log.exception("stopping the share failed")
        finally:
            self._agent = None
            self._settings = None
            self._stopping = None
            self._set("idle")
