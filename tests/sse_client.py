"""A minimal Server-Sent Events reader over an aiohttp response, for the tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp


class SseReader:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []

    async def next_event(self, within_s: float = 5.0) -> tuple[str, Any]:
        """The next ``(event, data)``; comment lines are collected in :attr:`comments`."""
        name, data_lines = "message", []
        async with asyncio.timeout(within_s):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise EOFError("event stream ended")
                line = raw.decode().rstrip("\n")
                if line.startswith(":"):
                    self.comments.append(line)
                elif line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data_lines.append(line.removeprefix("data: "))
                elif line == "" and data_lines:
                    return name, json.loads("\n".join(data_lines))

    async def events_until(self, last: str, limit: int = 50) -> list[tuple[str, Any]]:
        events = []
        for _ in range(limit):
            event = await self.next_event()
            events.append(event)
            if event[0] == last:
                return events
        raise AssertionError(f"no {last} within {limit} events: {events}")
