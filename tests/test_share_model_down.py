"""Issue 14: a share whose model server dies stops being routed to, and comes back alone.

Real hub, real fake OpenAI server (stopped and restarted on the same port), real agent
with its tunnel; the hub's own event bus shows what the room sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.events import Event
from gambiarra_desktop.hub.keys import BUS, REGISTRY
from gambiarra_desktop.protocol import ErrorText
from gambiarra_desktop.share.agent import AgentStatus, ShareAgent, ShareSettings
from tests.conftest import Api

CHAT = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hi"}]}


async def eventually(predicate: Callable[[], object], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def settings_for(code: str, endpoint: str) -> ShareSettings:
    return ShareSettings(
        room_code=code, model="llama3.2:3b", endpoint=endpoint, nickname="Ana",
        health_interval_s=0.1, model_check_timeout_s=1.0, backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )


async def participant(api: Api, code: str) -> dict[str, Any]:
    status, body = await api.call("GET", f"/rooms/{code}/participants")
    assert status == 200, body
    assert len(body["participants"]) == 1, body
    found: dict[str, Any] = body["participants"][0]
    return found


async def test_a_dead_model_server_is_not_routed_to_until_it_answers_again(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    # Given a participant sharing through its tunnel, served by its model server
    code = (await api.create_room())["code"]
    events: list[Event] = []
    unsubscribe = api.hub.app[BUS].subscribe(events.append)
    statuses: list[AgentStatus] = []
    agent = ShareAgent(api.hub.url, settings_for(code, upstream.url), statuses.append)
    await agent.start()
    try:
        await eventually(lambda: agent.status.state == "sharing")
        status, _ = await api.call("POST", f"/rooms/{code}/v1/chat/completions", CHAT)
        assert status == 200

        # When the model server stops answering
        port = upstream.port
        await upstream.stop()

        # Then the agent says so in plain words, telling what to do
        await eventually(lambda: agent.status.state == "model-down")
        assert "model server not answering" in agent.status.reason
        assert "start it again" in agent.status.reason
        # And the hub takes the participant offline, with the reason in the room's event
        assert (await participant(api, code))["status"] == "offline"
        offline = [e for e in events if e.type == "participant:offline"]
        assert offline and "model server" in offline[-1].data["reason"]
        # And routes nothing to it: the hub answers as it does with nobody online (no 502)
        for _ in range(3):
            status, body = await api.call("POST", f"/rooms/{code}/v1/chat/completions", CHAT)
            assert status != 502, body
            assert body == {"error": ErrorText.NO_PARTICIPANT}
        # And it stays offline over several beats, though its tunnel is still up
        await asyncio.sleep(0.5)
        assert (await participant(api, code))["status"] == "offline"
        assert agent.status.state == "model-down"

        # When the model server comes back on the same port
        await upstream.start(port=port)

        # Then sharing resumes by itself, and the room is served again
        await eventually(lambda: agent.status.state == "sharing")
        assert "through the tunnel" in agent.status.reason
        await eventually(lambda: any(e.type == "participant:online" for e in events))
        assert (await participant(api, code))["status"] == "online"
        status, _ = await api.call("POST", f"/rooms/{code}/v1/chat/completions", CHAT)
        assert status == 200
        assert [s.state for s in statuses].count("model-down") == 1  # One outage, said once.
    finally:
        await agent.stop()
        unsubscribe()


async def test_an_open_tunnel_does_not_undo_a_model_server_down(api: Api) -> None:
    """The tunnel opening is a sign of life, not of a model server: only a health call
    that no longer says ``"serving": false`` brings the participant back."""
    code = (await api.create_room())["code"]
    status, joined = await api.join(code, transport="tunnel")
    assert status == 201, joined
    registry = api.hub.app[REGISTRY]
    room = registry.require(code)

    status, _ = await api.call("POST", f"/rooms/{code}/health", {"id": "p1", "serving": False})
    assert status == 200
    assert room.participants["p1"]["status"] == "offline"

    await registry.heartbeat(room, "p1", trusted=True)  # What the tunnel route does.
    assert room.participants["p1"]["status"] == "offline"

    # A seed client's health call (no "serving" field) means "I serve": back online.
    status, _ = await api.call("POST", f"/rooms/{code}/health", {"id": "p1"})
    assert status == 200
    assert room.participants["p1"]["status"] == "online"


def test_the_room_log_says_why_a_participant_went_offline() -> None:
    from gambiarra_desktop.event_text import describe

    names = {"p1": "Ana"}
    data = {"participantId": "p1", "reason": "its model server is not answering"}
    assert describe("participant:offline", data, names) == (
        "Ana went offline: its model server is not answering")
    assert describe("participant:offline", {"participantId": "p1"}, names) == "Ana went offline"


async def test_two_health_calls_at_once_leave_the_last_event_matching_the_state(
    api: Api,
) -> None:
    """"Down" then "up again" arriving together: the room's last word on the participant
    must be the state it is in (the offline event once came after the online state)."""
    code = (await api.create_room())["code"]
    status, body = await api.join(code, transport="tunnel")
    assert status == 201, body
    registry = api.hub.app[REGISTRY]
    room = registry.require(code)
    events: list[Event] = []
    unsubscribe = api.hub.app[BUS].subscribe(events.append)
    try:
        for _ in range(5):  # Both orders of arrival, a few times.
            await asyncio.gather(
                registry.heartbeat(room, "p1", trusted=True, serving=False),
                registry.heartbeat(room, "p1", trusted=True, serving=True))
            said = [e.type.value for e in events
                    if e.type.value in ("participant:online", "participant:offline")]
            state = room.participants["p1"]["status"]
            assert state == "online"  # The later call said its server answers.
            assert said and said[-1] == f"participant:{state}", said
    finally:
        unsubscribe()


async def test_an_agent_that_fails_unforeseen_after_joining_leaves_the_room(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    """An error nobody foresaw ends the agent as "failed"; it must also leave, not stay
    listed until the hub's timeout (30 s) while the app already says it stopped."""
    code = (await api.create_room())["code"]
    raised: list[str] = []

    def on_status(status: AgentStatus) -> None:
        if status.state == "sharing" and not raised:
            raised.append(status.reason)
            raise RuntimeError("a bug in a status listener")

    agent = ShareAgent(api.hub.url, settings_for(code, upstream.url), on_status)
    await agent.start()
    try:
        await eventually(lambda: agent.status.state == "failed")
        assert raised
        await eventually(lambda: not api.hub.app[REGISTRY].require(code).participants,
                         within_s=3.0)
    finally:
        await agent.stop()
