"""``cost:alert``: when today's (UTC) cost crosses ``costAlertThreshold`` it is published
once that day, on the hub's event bus and the admin's ``/v1/events`` stream, and never on
a room's stream; not at all with ``enableCostTracking`` off, and not again after a
restart on the same day."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.accounting.ledger import Ledger, now_ms, utc_day
from gambiarra_desktop.events import Event, EventBus, EventType
from gambiarra_desktop.gateway.settings import GatewaySettings
from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.hub.keys import BUS
from gambiarra_desktop.hub.rooms.store import SqliteStore
from tests.conftest import Api
from tests.gateway_testkit import login, set_config
from tests.sse_client import SseReader
from tests.test_budgets import chat, entries, gw_hub  # noqa: F401 - fixtures used here.
from tests.test_usage_ledger import make_key, row


async def test_cost_alert_once_a_day_on_the_bus_and_the_admin_stream_only(
    http: aiohttp.ClientSession, gw_hub: HubServer, entries: dict[str, str],  # noqa: F811
) -> None:
    await set_config(http, gw_hub, costAlertThreshold=0.003, enableCostTracking=True)
    on_bus: list[Event] = []
    gw_hub.app[BUS].subscribe(on_bus.append)
    admin = await login(http, gw_hub)
    async with http.get(f"{gw_hub.url}/v1/events", headers=admin) as admin_stream, \
            http.get(f"{gw_hub.url}/rooms/{entries['paid']}/events") as room_stream:
        assert (admin_stream.status, room_stream.status) == (200, 200)
        admin_events, room_events = SseReader(admin_stream), SseReader(room_stream)
        assert (await admin_events.next_event())[0] == "connected"
        assert (await room_events.next_event())[0] == "connected"
        key = await make_key(http, gw_hub, "spender")
        for _ in range(4):  # $0.0016 each: the threshold is crossed by the second.
            assert (await chat(http, gw_hub, key, "paid"))[0] == 200
        await Api(http, gw_hub).create_room("sentinel")  # Hub-wide: ends both reads.

        seen = await admin_events.events_until("room:created")
        alerts = [data for name, data in seen if name == "cost:alert"]
        assert alerts == [{"day": utc_day(now_ms()), "cost": 0.0032, "threshold": 0.003}]
        room_seen = await room_events.events_until("room:created")
        assert "cost:alert" not in [name for name, _ in room_seen]
        assert "llm:complete" in [name for name, _ in room_seen]  # It was listening.
    assert [e.data for e in on_bus if e.type is EventType.COST_ALERT] == alerts
    assert [e.room_code for e in on_bus if e.type is EventType.COST_ALERT] == [""]


async def test_the_admin_event_stream_needs_the_admin_token(
    http: aiohttp.ClientSession, gw_hub: HubServer,  # noqa: F811
) -> None:
    key = await make_key(http, gw_hub, "not-admin")
    for headers in ({}, {"Authorization": f"Bearer {key['key']}"},
                    {"Authorization": "Bearer forged"}):
        async with http.get(f"{gw_hub.url}/v1/events", headers=headers) as response:
            assert response.status == 401, headers


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    sqlite = SqliteStore(tmp_path / "ledger.db")
    await sqlite.open()
    yield sqlite
    await sqlite.close()


def alerts_on(bus: EventBus) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    bus.subscribe(lambda e: seen.append(e.data) if e.type is EventType.COST_ALERT else None)
    return seen


async def test_no_alert_with_cost_tracking_off(store: SqliteStore) -> None:
    bus = EventBus()
    seen = alerts_on(bus)
    settings = GatewaySettings(enableCostTracking=False, costAlertThreshold=1.0)
    ledger = Ledger(store, bus, lambda: settings)
    await ledger.open()
    ledger.record(row(cost=5.0))
    assert seen == []
    settings = GatewaySettings(enableCostTracking=True, costAlertThreshold=1.0)
    ledger.record(row(cost=0.01))  # Switched on: the day's total is already over.
    assert [s["cost"] for s in seen] == [5.01]
    await ledger.close()


async def test_an_alert_is_not_repeated_after_a_restart_the_same_day(
    store: SqliteStore,
) -> None:
    bus = EventBus()
    seen = alerts_on(bus)
    settings = GatewaySettings(costAlertThreshold=1.0)
    ledger = Ledger(store, bus, lambda: settings)
    await ledger.open()
    ledger.record(row(cost=0.6))
    assert seen == []
    ledger.record(row(cost=0.6))
    assert len(seen) == 1
    await ledger.close()
    again = Ledger(store, bus, lambda: settings)
    await again.open()
    again.record(row(cost=0.6))
    assert len(seen) == 1
    assert again.today_cost == pytest.approx(1.8)
    await again.close()
