"""What ``GET /v1/usage`` and a participant's usage page read: sums over the ledger, in SQL.

Each query flushes the ledger first, so a row recorded before the request is in the sum.
The group-by column comes from a fixed table, never from the request's text, so nothing
the client sends reaches the SQL except as a bound parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from gambiarra_desktop.accounting.ledger import DAY_MS, Ledger, now_ms
from gambiarra_desktop.gateway.errors import InvalidFieldError

GroupBy = Literal["key", "model", "participant", "room", "day"]
GROUP_BYS: tuple[GroupBy, ...] = ("key", "model", "participant", "room", "day")
DEFAULT_WINDOW_DAYS = 30
MAX_PEOPLE = 100
"""People one participant's report names (the LIMIT in ``_PEOPLE``)."""
MAX_GROUPS = 10_000
"""Rows one report returns (a year of days or every key fits many times over)."""
_DAY = "strftime('%Y-%m-%d', ts / 1000, 'unixepoch')"
_GROUPS: dict[GroupBy, tuple[tuple[str, str], ...]] = {
    # (SQL expression, JSON field) of the grouped columns.
    "key": (("key_id", "keyId"), ("CASE WHEN key_id IS NULL THEN address END", "address")),
    "model": (("model", "model"),),
    "participant": (("room", "room"), ("participant", "participant")),
    "room": (("room", "room"),),
    "day": ((_DAY, "day"),),
}
_SUMS = ("COUNT(*), SUM(CASE WHEN status = 0 OR status >= 400 THEN 1 ELSE 0 END),"
         " SUM(prompt_tokens), SUM(completion_tokens), SUM(cost)")
_EPOCH_MS = re.compile(r"\d{1,15}")
_PEOPLE = (
    "SELECT person, MAX(key_id), MAX(key_name), COUNT(*), SUM(prompt_tokens),"
    " SUM(completion_tokens) FROM usage WHERE room = ? AND participant = ?"
    " GROUP BY person ORDER BY COUNT(*) DESC, person LIMIT 100")


@dataclass(frozen=True, slots=True)
class Window:
    from_ms: int
    to_ms: int
    """Inclusive."""


def parse_window(from_text: str | None, to_text: str | None, at_ms: int | None = None) -> Window:
    """``from``/``to`` as epoch ms or ISO-8601 dates or datetimes (UTC unless they say);
    default: the last 30 days. A ``to`` that is a date alone means to the end of that day."""
    now = now_ms() if at_ms is None else at_ms
    start = (_instant("from", from_text, end_of_day=False) if from_text
             else now - DEFAULT_WINDOW_DAYS * DAY_MS)
    end = _instant("to", to_text, end_of_day=True) if to_text else now
    if start > end:
        raise InvalidFieldError("from", "must not be after to")
    return Window(start, end)


def _instant(name: str, text: str, end_of_day: bool) -> int:
    text = text.strip()
    if _EPOCH_MS.fullmatch(text):
        return int(text)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if end_of_day:
                return int((moment + timedelta(days=1)).timestamp() * 1000) - 1
            return int(moment.timestamp() * 1000)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise InvalidFieldError(name, "epoch milliseconds or an ISO-8601 date or datetime"
                                      " (UTC)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return int(moment.timestamp() * 1000)
    except (ValueError, OverflowError) as exc:
        raise InvalidFieldError(name, "out of range") from exc


def group_by_of(text: str | None) -> GroupBy:
    for group_by in GROUP_BYS:
        if text == group_by:
            return group_by
    if text is None:
        return "key"
    raise InvalidFieldError("groupBy", f"must be one of {', '.join(GROUP_BYS)}")


async def usage_report(ledger: Ledger, group_by: GroupBy, window: Window,
                       key_id: str | None = None) -> list[dict[str, Any]]:
    """Sums per group in the window; ``key_id``: only that key's rows (a key reading its
    own usage). Costliest first, then busiest (days in order)."""
    await ledger.flush()
    columns = _GROUPS[group_by]
    select = ", ".join(expression for expression, _ in columns)
    where = "ts >= ? AND ts <= ?"
    parameters: list[Any] = [window.from_ms, window.to_ms]
    if key_id is not None:
        where += " AND key_id = ?"
        parameters.append(key_id)
    names = ", MAX(key_name)" if group_by == "key" else ""
    order = "1" if group_by == "day" else f"SUM(cost) DESC, COUNT(*) DESC, {select}"
    sql = (f"SELECT {select}{names}, {_SUMS} FROM usage WHERE {where}"  # noqa: S608 - fixed text
           f" GROUP BY {select} ORDER BY {order} LIMIT {MAX_GROUPS}")
    rows = await ledger.store.query(sql, parameters)
    report: list[dict[str, Any]] = []
    for row in rows:
        grouped = row[:len(columns)]
        item: dict[str, Any] = {}
        if group_by == "key":
            item["key"] = row[len(columns)]
        item.update({field: value for (_, field), value in zip(columns, grouped, strict=True)})
        requests, errors, prompt, completion, cost = row[-5:]
        prompt, completion = int(prompt or 0), int(completion or 0)
        item.update({"requests": int(requests), "errors": int(errors or 0),
                     "promptTokens": prompt, "completionTokens": completion,
                     "totalTokens": prompt + completion, "cost": round(float(cost or 0), 8)})
        report.append(item)
    return report


async def participant_people(ledger: Ledger, room: str, participant: str
                             ) -> list[dict[str, Any]]:
    """Who a participant's machine served: per key, else per address; busiest first."""
    await ledger.flush()
    rows = await ledger.store.query(_PEOPLE, (room, participant))
    people: list[dict[str, Any]] = []
    for person, key_id, key_name, requests, prompt, completion in rows:
        label = key_name if key_id is not None else str(person).removeprefix("addr:")
        people.append({"person": label, "keyId": key_id, "requests": int(requests),
                       "promptTokens": int(prompt or 0),
                       "completionTokens": int(completion or 0)})
    return people
