"""The small parts issue 15's hot path is built from: the re-armed deadline, the front
end's request headers, and the scheduler's one-pass pick."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from gambiarra_desktop.hub.deadline import Deadline
from gambiarra_desktop.hub.front.headers import ParsedHeaders
from gambiarra_desktop.hub.proxy.scheduler import Scheduler
from gambiarra_desktop.hub.proxy.stats import StatsBook

# --- Deadline ---------------------------------------------------------------------------


async def test_a_deadline_fires_once_after_its_span() -> None:
    fired: list[float] = []
    loop = asyncio.get_running_loop()
    deadline = Deadline(loop, lambda: fired.append(loop.time()))
    started = loop.time()
    deadline.start(0.05)
    await asyncio.sleep(0.2)
    assert len(fired) == 1
    assert fired[0] - started >= 0.05 - 0.002
    assert not deadline.active


async def test_a_stopped_deadline_never_fires() -> None:
    fired: list[int] = []
    deadline = Deadline(asyncio.get_running_loop(), lambda: fired.append(1))
    deadline.start(0.03)
    deadline.stop()
    await asyncio.sleep(0.1)
    assert fired == []


async def test_a_deadline_moved_later_fires_at_the_new_time_not_the_old() -> None:
    fired: list[float] = []
    loop = asyncio.get_running_loop()
    deadline = Deadline(loop, lambda: fired.append(loop.time()))
    deadline.start(0.03)
    await asyncio.sleep(0.02)
    moved_at = loop.time()
    deadline.start(0.08)  # The armed timer still fires at 0.03, finds it moved, re-arms.
    await asyncio.sleep(0.04)
    assert fired == []
    await asyncio.sleep(0.1)
    assert len(fired) == 1 and fired[0] - moved_at >= 0.08 - 0.002


async def test_a_deadline_moved_earlier_re_arms_for_the_earlier_time() -> None:
    fired: list[float] = []
    loop = asyncio.get_running_loop()
    deadline = Deadline(loop, lambda: fired.append(loop.time()))
    deadline.start(10.0)
    started = loop.time()
    deadline.start(0.03)
    await asyncio.sleep(0.15)
    assert len(fired) == 1 and fired[0] - started < 1.0


async def test_a_tick_bounds_how_far_ahead_the_timer_is_armed() -> None:
    """Long deadline then a short one: with a tick no longer than the short span, the
    timer armed for the long one already fires early enough for the short one."""
    fired: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = Deadline(loop, lambda: fired.append(1), tick_s=0.05)
    deadline.start(60.0)
    deadline.start(0.05)
    await asyncio.sleep(0.2)
    assert fired == [1]


async def test_cancel_drops_the_timer_and_the_deadline() -> None:
    fired: list[int] = []
    deadline = Deadline(asyncio.get_running_loop(), lambda: fired.append(1))
    deadline.start(0.02)
    deadline.cancel()
    await asyncio.sleep(0.08)
    assert fired == [] and not deadline.active
    deadline.start(0.02)  # Usable again.
    await asyncio.sleep(0.08)
    assert fired == [1]


# --- ParsedHeaders ----------------------------------------------------------------------

RAW = [(b"Host", b"h:1"), (b"Via", b"1.1 a"), (b"via", b"1.1 b"),
       (b"X-Name", "Jos\u00e9".encode()), (b"X-Bad", b"\xff\xfe")]


def parsed(raw: list[tuple[bytes, bytes]] = RAW) -> ParsedHeaders:
    first: dict[bytes, bytes] = {}
    for name, value in raw:
        first.setdefault(name.lower(), value)
    return ParsedHeaders(raw, first)


def test_headers_are_found_whatever_the_case_and_give_the_first_value() -> None:
    headers = parsed()
    assert headers.get("via") == "1.1 a" and headers.get("VIA") == "1.1 a"
    assert headers["HOST"] == "h:1"
    assert headers.get("Authorization") is None
    assert headers.get("Authorization", "") == ""
    with pytest.raises(KeyError):
        headers["Authorization"]


def test_getall_gives_every_value_in_order_or_the_default() -> None:
    headers = parsed()
    assert headers.getall("Via", []) == ["1.1 a", "1.1 b"]
    default: list[str] = []
    assert headers.getall("X-Request-Id", default) is default


def test_values_decode_as_aiohttp_decodes_them() -> None:
    headers = parsed()
    assert headers.get("X-Name") == "Jos\u00e9"
    bad = headers.get("X-Bad")
    assert bad is not None and bad.encode("utf-8", "surrogateescape") == b"\xff\xfe"


def test_headers_iterate_as_received() -> None:
    headers = parsed()
    assert len(headers) == 5
    assert list(headers) == ["Host", "Via", "via", "X-Name", "X-Bad"]


# --- the scheduler's pick ---------------------------------------------------------------

def participant(pid: str) -> Any:
    return {"id": pid, "model": "m", "status": "online", "transport": "direct"}


def scheduler(book: StatsBook) -> Scheduler:
    return Scheduler(book, max_queue=8, max_wait_s=1.0, on_queued=lambda *_: None)


def test_the_least_loaded_then_fastest_participant_is_picked() -> None:
    book = StatsBook()
    a, b, c = participant("a"), participant("b"), participant("c")
    book.get("R", "a").in_flight = 2
    book.get("R", "b").ttft_ms = 50.0
    book.get("R", "c").ttft_ms = 20.0
    lease = scheduler(book).acquire_now("R", lambda: [a, b, c])
    assert lease is not None and lease.participant["id"] == "c"
    assert lease.stats is book.get("R", "c") and lease.stats.in_flight == 1


def test_a_busy_healthy_participant_is_waited_for_rather_than_a_degraded_one_used() -> None:
    book = StatsBook()
    healthy, degraded = participant("healthy"), participant("degraded")
    book.get("R", "degraded").degraded_until = time.monotonic() + 60
    busy = book.get("R", "healthy")
    busy.in_flight = busy.capacity.limit
    assert scheduler(book).acquire_now("R", lambda: [degraded, healthy]) is None


def test_a_degraded_participant_serves_when_none_is_healthy() -> None:
    book = StatsBook()
    one, two = participant("one"), participant("two")
    book.get("R", "one").degraded_until = time.monotonic() + 60
    book.get("R", "two").degraded_until = time.monotonic() + 60
    book.get("R", "one").in_flight = 1
    lease = scheduler(book).acquire_now("R", lambda: [one, two])
    assert lease is not None and lease.participant["id"] == "two"


def test_a_healthy_participant_after_degraded_ones_wins() -> None:
    book = StatsBook()
    sick, well = participant("sick"), participant("well")
    book.get("R", "sick").degraded_until = time.monotonic() + 60
    book.get("R", "well").in_flight = 3
    lease = scheduler(book).acquire_now("R", lambda: [sick, well])
    assert lease is not None and lease.participant["id"] == "well"


def test_excluded_participants_are_not_picked() -> None:
    book = StatsBook()
    a, b = participant("a"), participant("b")
    book.get("R", "a").in_flight = 1
    lease = scheduler(book).acquire_now("R", lambda: [a, b], exclude=frozenset({"b"}))
    assert lease is not None and lease.participant["id"] == "a"
