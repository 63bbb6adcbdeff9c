"""The benchmark's rooms on the hub: created, joined, and kept alive for the whole run.

A participant that sends no health call for 30 s is marked offline and every later request
to its room fails, so a run longer than that needs the heartbeats a real participant's
agent sends: :class:`HealthKeeper` sends ``POST /rooms/CODE/health`` for every joined
participant every few seconds, in the background, with the secret its join returned.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import aiohttp

from gambiarra_desktop.protocol import PARTICIPANT_SECRET_HEADER

HEALTH_EVERY_S = 5.0
"""Well inside the hub's 30 s timeout, and rare enough to cost the hub nothing measurable."""


@dataclass(frozen=True, slots=True)
class Joined:
    code: str
    participant_id: str
    secret: str


async def create_room(session: aiohttp.ClientSession, hub_url: str, name: str) -> str:
    async with session.post(f"{hub_url}/rooms", json={"name": name}) as response:
        if response.status != 201:
            raise RuntimeError(f"create room: {response.status} {await response.text()}")
        return str((await response.json())["room"]["code"])


async def join(session: aiohttp.ClientSession, hub_url: str, code: str, participant_id: str,
               endpoint: str, model: str = "fake-model", max_concurrent: int = 64) -> Joined:
    """Join a participant the hub dials directly. 64 at once (the protocol's most): the
    bench measures the proxy, not the queue in front of a busy model."""
    payload = {"id": participant_id, "nickname": participant_id, "model": model,
               "endpoint": endpoint, "config": {"maxConcurrent": max_concurrent}}
    async with session.post(f"{hub_url}/rooms/{code}/join", json=payload) as response:
        if response.status != 201:
            raise RuntimeError(f"join: {response.status} {await response.text()}")
        body = await response.json()
    return Joined(code, participant_id, str(body.get("participantSecret", "")))


class HealthKeeper:
    """Sends each participant's health call every ``every_s`` seconds until stopped."""

    def __init__(self, hub_url: str, every_s: float = HEALTH_EVERY_S) -> None:
        self.hub_url = hub_url
        self.every_s = every_s
        self.participants: list[Joined] = []
        self.sent = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None

    def keep(self, joined: Joined) -> None:
        self.participants.append(joined)

    async def beat_once(self, session: aiohttp.ClientSession) -> None:
        for joined in list(self.participants):
            headers = {PARTICIPANT_SECRET_HEADER: joined.secret} if joined.secret else {}
            url = f"{self.hub_url}/rooms/{joined.code}/health"
            try:
                async with session.post(url, json={"id": joined.participant_id},
                                        headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            self.sent += 1
            self.failed += not ok

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=max(1.0, self.every_s))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await self.beat_once(session)
                await asyncio.sleep(self.every_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
