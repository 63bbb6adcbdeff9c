"""Budgets are hard stops on priced models: a key over its budget gets 429 "Budget
exceeded" with Retry-After (the end of its UTC day or month) on a priced entry, while a
free entry, ``auto`` falling back to one and room routes keep working for it; other keys
are not touched; cross-check review calls count towards the budget. A priced call holds
its estimated cost (prompt estimate and ``max_tokens``, default 1024) until it is over, so
concurrent calls cannot spend past the budget; calls here set ``max_tokens`` to fit.

The fake server answers 16 tokens whatever ``max_tokens`` says: a call estimated at 10
tokens costs 16, the estimate error that may pass the budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.accounting.budgets import seconds_to_period_end
from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubServer
from tests.conftest import HubFactory
from tests.gateway_testkit import ADMIN_PASSWORD, room_entry
from tests.test_usage_ledger import MESSAGES, make_key, usage

PRICE_OUT = 0.1
"""USD per 1k completion tokens of the priced entry: its 16 tokens cost $0.0016."""


@pytest.fixture
async def gw_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return await make_hub()


@pytest.fixture
async def entries(http: aiohttp.ClientSession, gw_hub: HubServer
                  ) -> AsyncIterator[dict[str, str]]:
    """A priced entry (L0, model family "paid") and a free one (L1, family "free"), each
    in a room of its own; returns their room codes."""
    async with FakeOpenAIServer(models=("paid",)) as paid, \
            FakeOpenAIServer(models=("free",)) as free:
        paid_room = await room_entry(http, gw_hub, "paid", "L0", "paid", paid.url,
                                     outputPricePer1k=PRICE_OUT)
        free_room = await room_entry(http, gw_hub, "free", "L1", "free", free.url)
        yield {"paid": paid_room, "free": free_room}


async def chat(http: aiohttp.ClientSession, hub: HubServer, key: dict[str, Any] | None,
               model: str, path: str = "/v1/chat/completions", **extra: Any
               ) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {key['key']}"} if key else {}
    async with http.post(f"{hub.url}{path}", headers=headers,
                         json={"model": model, "messages": MESSAGES, **extra}) as response:
        return response.status, await response.json(), response.headers


async def test_a_key_over_its_daily_budget_is_stopped_on_priced_models_only(
    http: aiohttp.ClientSession, gw_hub: HubServer, entries: dict[str, str],
) -> None:
    alice = await make_key(http, gw_hub, "alice", budget=0.001, budgetPeriod="day")
    status, _, headers = await chat(http, gw_hub, alice, "paid", max_tokens=10)
    assert status == 200 and headers["X-Gambiarra-Model"] == "paid"

    status, body, headers = await chat(http, gw_hub, alice, "paid")
    assert status == 429
    assert body == {"error": "Budget exceeded",
                    "details": "key alice spent $0.0016 of $0.0010 this day"}
    assert abs(int(headers["Retry-After"]) - seconds_to_period_end("day")) <= 5
    status, _, _ = await chat(http, gw_hub, alice, "paid", stream=True)
    assert status == 429  # Streamed or not.
    # Free models keep working: by name, through auto (the priced L0 entry is skipped),
    # and on the room routes.
    status, _, headers = await chat(http, gw_hub, alice, "free")
    assert status == 200 and headers["X-Gambiarra-Model"] == "free"
    status, _, headers = await chat(http, gw_hub, alice, "auto")
    assert status == 200 and headers["X-Gambiarra-Model"] == "free"
    status, _, _ = await chat(http, gw_hub, alice, "free",
                              path=f"/rooms/{entries['free']}/v1/chat/completions")
    assert status == 200
    # Another key, without a budget, is not touched.
    bob = await make_key(http, gw_hub, "bob")
    assert (await chat(http, gw_hub, bob, "paid"))[0] == 200
    # The refused calls cost nothing: the ledger holds alice's one priced call.
    status, report = await usage(http, gw_hub, {"Authorization": f"Bearer {alice['key']}"},
                                 groupBy="model")
    assert {r["model"]: (r["requests"], r["cost"]) for r in report["data"]} == {
        "paid": (1, 0.0016), "free": (3, 0.0)}


async def test_a_monthly_budget_stops_at_its_sum_and_retries_after_the_month(
    http: aiohttp.ClientSession, gw_hub: HubServer, entries: dict[str, str],
) -> None:
    carol = await make_key(http, gw_hub, "carol", budget=0.003)  # budgetPeriod: month.
    assert [(await chat(http, gw_hub, carol, "paid", max_tokens=10))[0]
            for _ in range(2)] == [200, 200]
    status, body, headers = await chat(http, gw_hub, carol, "paid")
    assert status == 429 and body["details"] == "key carol spent $0.0032 of $0.0030 this month"
    assert abs(int(headers["Retry-After"]) - seconds_to_period_end("month")) <= 5


async def test_cross_check_review_calls_count_towards_the_budget(
    http: aiohttp.ClientSession, gw_hub: HubServer, entries: dict[str, str],
) -> None:
    # The review asks for at most 300 tokens: $0.03 at the priced entry's price.
    dave = await make_key(http, gw_hub, "dave", budget=0.03, budgetPeriod="day")
    # Answered by the free entry, reviewed by the other family: the priced one.
    status, body, headers = await chat(http, gw_hub, dave, "free", crossCheck=True)
    assert status == 200 and body["crossCheck"]["reviewer"] == "paid", body
    status, report = await usage(http, gw_hub, {"Authorization": f"Bearer {dave['key']}"},
                                 groupBy="model")
    assert {r["model"]: r["requests"] for r in report["data"]} == {"free": 1, "paid": 1}
    status, body, _ = await chat(http, gw_hub, dave, "paid")
    assert (status, body["error"]) == (429, "Budget exceeded")
    # Over budget, a cross-checked answer is still given; it is not reviewed by a priced
    # model any more.
    status, body, _ = await chat(http, gw_hub, dave, "free", crossCheck=True)
    assert status == 200 and body["crossCheck"]["verdict"] == "unavailable"


async def test_a_budget_of_zero_allows_free_models_only(
    http: aiohttp.ClientSession, gw_hub: HubServer, entries: dict[str, str],
) -> None:
    erin = await make_key(http, gw_hub, "erin", budget=0)
    assert (await chat(http, gw_hub, erin, "paid"))[0] == 429
    assert (await chat(http, gw_hub, erin, "free"))[0] == 200


async def test_concurrent_priced_calls_spend_at_most_the_budget_and_one_estimate(
    http: aiohttp.ClientSession, gw_hub: HubServer,
) -> None:
    """20 slow priced calls at once on a budget for 6: before holds, every one passed the
    same point-in-time check (the review spent $0.064 of $0.001)."""
    async with FakeOpenAIServer(models=("slow",)) as slow:
        slow.behaviour.first_token_delay_s = 0.3
        await room_entry(http, gw_hub, "slow", "L0", "slow", slow.url,
                         outputPricePer1k=PRICE_OUT)
        frank = await make_key(http, gw_hub, "frank", budget=0.01, budgetPeriod="day")
        estimate = 16 * PRICE_OUT / 1000  # max_tokens 16, no input price: $0.0016 a call.

        async def one(stream: bool) -> tuple[int, Any]:
            async with http.post(f"{gw_hub.url}/v1/chat/completions",
                                 headers={"Authorization": f"Bearer {frank['key']}"},
                                 json={"model": "slow", "messages": MESSAGES,
                                       "max_tokens": 16, "stream": stream}) as response:
                text = await response.text()
                return response.status, (await response.json() if response.status == 429
                                         else text)

        results = await asyncio.gather(*(one(i % 2 == 1) for i in range(20)))
        statuses = sorted(status for status, _ in results)
        assert statuses == [200] * 6 + [429] * 14, statuses
        refusal = next(body for status, body in results if status == 429)
        assert refusal["error"] == "Budget exceeded"
        assert "this call may cost up to $0.0016" in refusal["details"], refusal
        _, report = await usage(http, gw_hub, {"Authorization": f"Bearer {frank['key']}"},
                                groupBy="model")
        spent = sum(row["cost"] for row in report["data"])
        assert spent <= 0.01 + estimate
        assert len(slow.requests) == 6
        # The holds went with their calls: the budget's last $0.0004 takes a 4-token call.
        assert (await chat(http, gw_hub, frank, "slow", max_tokens=4))[0] == 200
        assert (await chat(http, gw_hub, frank, "slow", max_tokens=16))[0] == 429


@pytest.mark.parametrize(("now", "period", "seconds"), [
    ("2024-02-29T23:59:30", "day", 30),
    ("2024-02-29T23:59:30", "month", 30),
    ("2024-02-10T00:00:00", "day", 86_400),
    ("2024-12-31T12:00:00", "month", 12 * 3600),
    ("2023-04-30T23:59:59.500", "month", 1),
])
def test_seconds_to_the_end_of_a_utc_period(now: str, period: str, seconds: int) -> None:
    at_ms = int(datetime.fromisoformat(now).replace(tzinfo=UTC).timestamp() * 1000)
    assert seconds_to_period_end(period, at_ms) == seconds
