"""Issue 14: one start in flight, cancelled by "off"; no orphan agent beating in a room.

The specs reader is made slow (as ``nvidia-smi`` can be, up to 2 s) and the switch is
flipped faster than that, against a real hub and a real fake model server. The hub's
health calls are counted where they land (the room registry), per participant.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub.keys import REGISTRY
from gambiarra_desktop.share.agent import ShareSettings
from gambiarra_desktop.share.switch import ShareSwitch, SwitchState
from tests.conftest import Api

SLOW_SPECS_S = 2.0


async def eventually(predicate: Callable[[], object], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def slow_specs() -> dict[str, Any]:
    await asyncio.sleep(SLOW_SPECS_S)
    return {"cpu": "slow", "ram": 1}


def count_health_calls(api: Api) -> list[tuple[float, str]]:
    """Every heartbeat the hub records, with when and for whom (the real one still runs)."""
    registry = api.hub.app[REGISTRY]
    calls: list[tuple[float, str]] = []
    real = registry.heartbeat

    async def counted(room: Any, participant_id: str, *args: Any, **kwargs: Any) -> None:
        calls.append((time.monotonic(), participant_id))
        await real(room, participant_id, *args, **kwargs)

    registry.heartbeat = counted  # type: ignore[method-assign]
    return calls


def settings(code: str, endpoint: str) -> ShareSettings:
    return ShareSettings(room_code=code, model="llama3.2:3b", endpoint=endpoint,
                         nickname="Ana", health_interval_s=0.1, backoff_initial_s=0.05)


async def participants(api: Api, code: str) -> list[dict[str, Any]]:
    status, body = await api.call("GET", f"/rooms/{code}/participants")
    assert status == 200, body
    found: list[dict[str, Any]] = body["participants"]
    return found


async def test_on_off_on_off_fast_leaves_nobody_and_no_heartbeat_after_off(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    code = (await api.create_room())["code"]
    calls = count_health_calls(api)
    states: list[SwitchState] = []
    switch = ShareSwitch(on_change=states.append, specs_reader=slow_specs)

    # When the switch is flipped on, off, on, off while the specs are still being read
    flips = [asyncio.create_task(switch.turn_on(api.hub.url, settings(code, upstream.url))),
             asyncio.create_task(switch.turn_off()),
             asyncio.create_task(switch.turn_on(api.hub.url, settings(code, upstream.url))),
             asyncio.create_task(switch.turn_off())]
    await asyncio.wait_for(asyncio.gather(*flips), SLOW_SPECS_S * 3)

    # Then nothing shares: nobody is in the room, and no health call comes after "off"
    off_at = time.monotonic()
    assert switch.state == "idle" and switch.agent is None
    await asyncio.sleep(SLOW_SPECS_S + 0.5)  # Past when a stray start would have joined.
    assert await participants(api, code) == []
    assert [c for c in calls if c[0] >= off_at] == []
    assert states[-1] == "idle"


async def test_on_off_on_shares_exactly_once(api: Api, upstream: FakeOpenAIServer) -> None:
    code = (await api.create_room())["code"]
    calls = count_health_calls(api)
    switch = ShareSwitch(specs_reader=slow_specs)

    # When the switch is flipped on, off, on while the specs are still being read
    first = settings(code, upstream.url)
    last = settings(code, upstream.url)
    flips = [asyncio.create_task(switch.turn_on(api.hub.url, first)),
             asyncio.create_task(switch.turn_off()),
             asyncio.create_task(switch.turn_on(api.hub.url, last))]
    await asyncio.wait_for(asyncio.gather(*flips), SLOW_SPECS_S * 3)

    # Then exactly one participant shares: the last start's, with the specs it read
    agent = switch.agent
    assert switch.state == "sharing" and agent is not None
    await eventually(lambda: agent.status.state == "sharing")
    await asyncio.sleep(0.3)
    room = await participants(api, code)
    assert [p["id"] for p in room] == [last.participant_id]
    assert room[0]["specs"] == {"cpu": "slow", "ram": 1}
    assert {pid for _, pid in calls} == {last.participant_id}

    # And "off" returns only once it has left: no heartbeat after it
    await switch.turn_off()
    off_at = time.monotonic()
    assert await participants(api, code) == []
    await asyncio.sleep(0.5)
    assert [c for c in calls if c[0] >= off_at] == []


async def test_a_failed_agent_takes_the_switch_back_to_idle(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    """A share that ends by itself (here: a room that does not exist) is not "sharing"."""
    switch = ShareSwitch(specs_reader=lambda: asyncio.sleep(0, result={}))
    await switch.turn_on(api.hub.url, settings("NOROOM", upstream.url))
    await eventually(lambda: switch.state == "idle")
    assert switch.agent is None
    await switch.turn_off()  # Harmless when already idle.
