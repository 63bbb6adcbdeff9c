"""The usage ledger: one row per upstream call, written in batches off the request path.

Why it is built this way:
- :meth:`Ledger.record` runs on the request path, so it never awaits: it appends the row to
  a buffer and adds it to in-memory totals. Budgets and the cost alert read those totals,
  so a budget check costs a dict lookup, not a query.
- A writer task writes the buffer with one ``executemany`` every 0.5 s, or as soon as 500
  rows wait; :meth:`flush` writes what waits now (before every query, and at stop).
- Spend is kept per key per UTC day and month, and per UTC day overall, for the current
  day and month only (loaded from SQLite at :meth:`open`, so a restart keeps budgets).
- The cost alert fires once per UTC day: the day is remembered in memory and in the
  ``usage_alerts`` table, so a restart on the same day does not alert again.
- Retention: rows older than ``usageRetentionDays`` are deleted at open and hourly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import orjson

from gambiarra_desktop.accounting.caller import Caller
from gambiarra_desktop.accounting.ledger_store import LedgerStore
from gambiarra_desktop.events import Event, EventBus, EventType
from gambiarra_desktop.hub.proxy.metrics import CompletionMeter
from gambiarra_desktop.hub.rooms.store import Store
from gambiarra_desktop.protocol import LlmMetrics

log = logging.getLogger(__name__)

Period = Literal["day", "month"]
FLUSH_INTERVAL_S = 0.5
FLUSH_AT_ROWS = 500
MAX_BUFFERED_ROWS = 200_000
"""Rows held while the disk cannot take them; beyond this the oldest are dropped (and
counted), so a broken disk cannot grow the hub's memory without bound."""
SWEEP_INTERVAL_S = 3600.0
DAY_MS = 86_400_000
ROOM_PROVIDER = "gambiarra"


class LedgerSettings(Protocol):
    """What the ledger reads from the gateway's configuration (``GatewaySettings``)."""

    @property
    def usageRetentionDays(self) -> int: ...  # noqa: N802 - the seed's JSON names.
    @property
    def enableCostTracking(self) -> bool: ...  # noqa: N802
    @property
    def costAlertThreshold(self) -> float: ...  # noqa: N802


@dataclass(frozen=True, slots=True)
class UsageLabel:
    """What the proxy cannot know by itself about a call: whose entry it serves and its
    prices. The gateway passes one for room entries; room routes pass none (free)."""

    provider: str
    model: str
    layer: str | None = None
    input_price_per_1k: float = 0.0
    output_price_per_1k: float = 0.0

    @property
    def priced(self) -> bool:
        return self.input_price_per_1k > 0 or self.output_price_per_1k > 0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens / 1000 * self.input_price_per_1k
                + completion_tokens / 1000 * self.output_price_per_1k)


@dataclass(slots=True)
class UsageRow:
    """One upstream call's ledger row. Not frozen, though nothing changes a row once made:
    one is built for every proxied request, and a frozen dataclass's ``__init__`` sets each
    of its 16 fields through ``object.__setattr__`` (3 us against 0.6)."""

    ts_ms: int
    key_id: str | None
    address: str
    room: str | None
    participant: str | None
    provider: str
    model: str
    layer: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
    latency_ms: float
    ttft_ms: float | None
    status: int
    """The upstream's HTTP status; 0 for no answer or a stream that broke."""
    person: str
    key_name: str | None = None
    """The key's name when the row was written: usage lists show it even after a revoke."""


@dataclass(slots=True)
class KeyTotals:
    """A key's usage over the retained rows (``GET /v1/keys`` shows it)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    last_used_ms: int | None = None


def utc_day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")


def utc_month(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m")


def now_ms() -> int:
    return int(time.time() * 1000)


def estimate_prompt_tokens(messages: object, tools: object = None) -> int:
    """ceil(bytes of the prompt / 4): the usual rule of thumb, used only when the server
    reports no ``usage``. Text counts as its bytes; everything else a provider bills as
    prompt (images, tool calls, tool definitions) as its JSON, or a 200 kB prompt hidden
    there would be recorded as free."""
    size = _json_size(tools) if tools else 0
    if not isinstance(messages, list):
        return math.ceil(size / 4)
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            size += len(content.encode())
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, dict) else None
                size += len(text.encode()) if isinstance(text, str) else _json_size(part)
        if calls := message.get("tool_calls"):
            size += _json_size(calls)
    return math.ceil(size / 4)


def _json_size(value: object) -> int:
    """Bytes of ``value`` as JSON; recording a row must never raise."""
    try:
        return len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return len(repr(value))


def row_of_call(label: UsageLabel, caller: Caller, meter: CompletionMeter, status: int,
                body: dict[str, Any], prompt_tokens: int | None, *,
                room: str | None = None, participant: str | None = None,
                metrics: LlmMetrics | None = None) -> UsageRow:
    """The ledger row of one upstream call. ``prompt_tokens``: what the server reported,
    else estimated from ``body``. A call that got no byte back, or an error status, used
    only what the server says it used. ``metrics``: the meter's result when the caller
    already read it (reading it again costs time on every answer)."""
    if metrics is None:
        metrics = meter.result()
    answered = meter.first_byte is not None
    completion = metrics["tokens"] if answered else 0
    if prompt_tokens is not None:
        prompt = prompt_tokens
    elif answered and status < 400:
        prompt = estimate_prompt_tokens(body.get("messages"), body.get("tools"))
    else:
        prompt = 0
    key = caller.key
    return UsageRow(
        ts_ms=now_ms(), key_id=key.id if key else None, address=caller.address, room=room,
        participant=participant, provider=label.provider, model=label.model, layer=label.layer,
        prompt_tokens=prompt, completion_tokens=completion,
        cost=label.cost(prompt, completion), latency_ms=metrics["durationMs"],
        ttft_ms=metrics["latencyFirstTokenMs"] if answered else None, status=status,
        person=caller.person, key_name=key.name if key else None)


class Ledger:
    def __init__(self, store: Store, bus: EventBus,
                 settings: Callable[[], LedgerSettings]) -> None:
        self.store = LedgerStore(store)
        self._bus = bus
        self._settings = settings
        self._buffer: list[UsageRow] = []
        self._alert_days: list[str] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None
        self.dropped_rows = 0
        self._day = utc_day(now_ms())
        self._month = utc_month(now_ms())
        self._day_span = self._month_span = (0, 0)
        """[start, end) in epoch ms of the current day and month: a row is placed by two
        integer comparisons, not by formatting dates on the request path."""
        self._set_spans()
        self._day_cost = 0.0
        self._key_day: dict[str, float] = {}
        self._key_month: dict[str, float] = {}
        self._key_totals: dict[str, KeyTotals] = {}
        self._reserved: dict[str, tuple[int, float]] = {}
        """key id -> (calls in flight, their estimated cost): see :meth:`reserve`."""
        self._alerted_day: str | None = None
        self.on_record: Callable[[UsageRow], None] | None = None
        """Called with every recorded row, synchronously (the rate limiter's token rules
        count completion tokens from it); it must not block."""

    # --- lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        await self.store.open()
        await self.sweep()
        await self._load_totals()
        self._writer = asyncio.create_task(self._write_forever(), name="gambiarra-ledger")

    async def close(self) -> None:
        """Stop the writer and write every row still waiting: nothing is lost at stop."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        await self.flush()

    # --- the request path (no await) ---------------------------------------------------
    def record(self, row: UsageRow) -> None:
        if len(self._buffer) >= MAX_BUFFERED_ROWS:
            del self._buffer[: FLUSH_AT_ROWS]
            self.dropped_rows += FLUSH_AT_ROWS
        self._buffer.append(row)
        if len(self._buffer) >= FLUSH_AT_ROWS:
            self._wake.set()
        self._count(row)
        if self.on_record is not None:
            try:
                self.on_record(row)
            except Exception:  # A broken listener must not fail the request that recorded.
                log.exception("usage listener failed")

    def spent(self, key_id: str, period: Period, at_ms: int | None = None) -> float:
        """The key's cost so far this UTC day or month."""
        self._roll(now_ms() if at_ms is None else at_ms)
        totals = self._key_day if period == "day" else self._key_month
        return totals.get(key_id, 0.0)

    def reserved(self, key_id: str) -> float:
        """The estimated cost of the key's priced calls in flight (see :meth:`reserve`)."""
        return self._reserved.get(key_id, (0, 0.0))[1]

    def reserve(self, key_id: str, period: Period, budget: float,
                amount: float) -> Reservation | None:
        """Hold ``amount`` (a call's estimated cost) against the key's budget, or ``None``
        when spent + held + ``amount`` would pass ``budget``.

        Why: spend grows only when a call's row is recorded, after the answer; checking it
        alone let 40 concurrent calls all pass a budget one of them could exhaust. Check and
        hold happen here with no await, so concurrent calls see each other's holds and the
        overshoot is bounded by how far one call's real cost passes its estimate."""
        count, held = self._reserved.get(key_id, (0, 0.0))
        if self.spent(key_id, period) + held + amount > budget:
            return None
        self._reserved[key_id] = (count + 1, held + amount)
        return Reservation(self, key_id, amount)

    def _release(self, key_id: str, amount: float) -> None:
        count, held = self._reserved.get(key_id, (1, amount))
        if count <= 1:  # The last call out clears it: float drift cannot accumulate.
            self._reserved.pop(key_id, None)
        else:
            self._reserved[key_id] = (count - 1, max(0.0, held - amount))

    def key_totals(self, key_id: str) -> KeyTotals:
        return self._key_totals.get(key_id) or KeyTotals()

    @property
    def today_cost(self) -> float:
        self._roll(now_ms())
        return self._day_cost

    def _roll(self, ts_ms: int) -> None:
        if ts_ms < self._day_span[1]:
            return
        day, month = utc_day(ts_ms), utc_month(ts_ms)
        if day > self._day:
            self._day, self._day_cost, self._key_day = day, 0.0, {}
        if month > self._month:
            self._month, self._key_month = month, {}
        self._set_spans()

    def _set_spans(self) -> None:
        day = datetime.strptime(self._day, "%Y-%m-%d").replace(tzinfo=UTC)
        month = datetime.strptime(self._month, "%Y-%m").replace(tzinfo=UTC)
        next_month = (month + timedelta(days=32)).replace(day=1)
        self._day_span = (_epoch_ms(day), _epoch_ms(day + timedelta(days=1)))
        self._month_span = (_epoch_ms(month), _epoch_ms(next_month))

    def _count(self, row: UsageRow) -> None:
        key_id = row.key_id
        if key_id is not None:
            totals = self._key_totals.get(key_id)
            if totals is None:
                totals = self._key_totals[key_id] = KeyTotals()
            totals.requests += 1
            totals.prompt_tokens += row.prompt_tokens
            totals.completion_tokens += row.completion_tokens
            totals.cost += row.cost
            totals.last_used_ms = max(totals.last_used_ms or 0, row.ts_ms)
        if row.cost <= 0:
            return
        ts = row.ts_ms
        self._roll(ts)
        if self._month_span[0] <= ts < self._month_span[1] and key_id is not None:
            self._key_month[key_id] = self._key_month.get(key_id, 0.0) + row.cost
        if not self._day_span[0] <= ts < self._day_span[1]:
            return  # A row from before midnight, recorded after it.
        self._day_cost += row.cost
        if key_id is not None:
            self._key_day[key_id] = self._key_day.get(key_id, 0.0) + row.cost
        self._check_alert()

    def _check_alert(self) -> None:
        settings = self._settings()
        if (not settings.enableCostTracking or self._alerted_day == self._day
                or self._day_cost < settings.costAlertThreshold):
            return
        self._alerted_day = self._day
        self._alert_days.append(self._day)
        self._wake.set()
        log.warning("today's cost $%.4f crossed the alert threshold $%.4f",
                    self._day_cost, settings.costAlertThreshold)
        self._bus.publish(Event(EventType.COST_ALERT, "", {
            "day": self._day, "cost": round(self._day_cost, 6),
            "threshold": settings.costAlertThreshold}))

    # --- writing -----------------------------------------------------------------------
    async def flush(self) -> None:
        """Write every row recorded so far (queries call this first, so they see them)."""
        async with self._lock:
            rows, self._buffer = self._buffer, []
            days, self._alert_days = self._alert_days, []
            if not rows and not days:
                return
            try:
                await self.store.insert(rows, days)
            except Exception:
                log.exception("could not write %d usage rows at once; trying one by one",
                              len(rows))
                await self._insert_one_by_one(rows, days)

    async def _insert_one_by_one(self, rows: list[UsageRow], days: list[str]) -> None:
        """One bad row (or a full disk for a moment) must not take its batch with it."""
        with contextlib.suppress(Exception):
            await self.store.insert([], days)
        for row in rows:
            try:
                await self.store.insert([row], [])
            except Exception as exc:
                self.dropped_rows += 1
                log.error("dropped a usage row of %s: %s", row.model, exc)

    async def sweep(self) -> int:
        """Delete rows older than the retention setting."""
        days = self._settings().usageRetentionDays
        deleted = await self.store.delete_before(now_ms() - days * DAY_MS)
        if deleted:
            log.info("usage retention: deleted %d rows older than %d days", deleted, days)
        return deleted

    async def _write_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + SWEEP_INTERVAL_S
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_INTERVAL_S):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + SWEEP_INTERVAL_S
                try:
                    await self.sweep()
                except Exception:
                    log.exception("usage retention sweep failed")

    async def _load_totals(self) -> None:
        now = now_ms()
        self._roll(now)
        day_start, month_start = self._day_span[0], self._month_span[0]
        query = self.store.query
        for key_id, cost in await query(
                "SELECT key_id, SUM(cost) FROM usage WHERE ts >= ? AND key_id IS NOT NULL"
                " GROUP BY key_id", (month_start,)):
            self._key_month[key_id] = float(cost or 0.0)
        for key_id, cost in await query(
                "SELECT key_id, SUM(cost) FROM usage WHERE ts >= ? AND key_id IS NOT NULL"
                " GROUP BY key_id", (day_start,)):
            self._key_day[key_id] = float(cost or 0.0)
        ((day_cost,),) = await query("SELECT SUM(cost) FROM usage WHERE ts >= ?", (day_start,))
        self._day_cost = float(day_cost or 0.0)
        for key_id, requests, prompt, completion, cost, last in await query(
                "SELECT key_id, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens),"
                " SUM(cost), MAX(ts) FROM usage WHERE key_id IS NOT NULL GROUP BY key_id"):
            self._key_totals[key_id] = KeyTotals(int(requests), int(prompt or 0),
                                                 int(completion or 0), float(cost or 0.0),
                                                 int(last) if last is not None else None)
        if await self.store.alerted(self._day):
            self._alerted_day = self._day


class Reservation:
    """One call's hold on its key's budget; released once the call is over (its row is
    recorded by then, so its real cost replaces the estimate). Releasing twice is harmless."""

    __slots__ = ("_ledger", "amount", "key_id")

    def __init__(self, ledger: Ledger, key_id: str, amount: float) -> None:
        self._ledger: Ledger | None = ledger
        self.key_id = key_id
        self.amount = amount

    def release(self) -> None:
        ledger, self._ledger = self._ledger, None
        if ledger is not None:
            ledger._release(self.key_id, self.amount)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


DEFAULT_COMPLETION_ESTIMATE = 1024
"""Completion tokens a call is assumed to take when its body sets no ``max_tokens``."""
MAX_COMPLETION_ESTIMATE = 10**9
"""Above this a ``max_tokens`` is taken as this (it keeps the arithmetic in floats)."""


def completion_allowance(body: Mapping[str, Any]) -> int:
    """The completion tokens a call may take: its ``max_tokens`` or ``max_completion_tokens``
    (a positive int), else :data:`DEFAULT_COMPLETION_ESTIMATE`. Budgets and tpm hold this
    much before the call, so concurrent calls cannot all pass the same check."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return min(value, MAX_COMPLETION_ESTIMATE)
    return DEFAULT_COMPLETION_ESTIMATE


def estimated_tokens(body: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt, completion) tokens a call is expected to use at most, before it runs."""
    return estimate_prompt_tokens(body.get("messages")), completion_allowance(body)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
