"""The Usage page's and CLI's words and numbers, checked without Qt or a network."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gambiarra_desktop.usage_text import (
    DAY_MS,
    budget_text,
    cost_alert_text,
    day_series,
    days_between,
    group_series,
    key_request,
    key_row,
    limits_text,
    model_label,
    money,
    period_range,
    person_label,
    served_row,
    usage_rows,
)

NOON = int(datetime(2026, 3, 10, 12, tzinfo=UTC).timestamp() * 1000)


def test_periods_are_whole_utc_days_to_now() -> None:
    start, end = period_range("today", NOON)
    assert (start, end) == (NOON - DAY_MS // 2, NOON)
    start, _ = period_range("7d", NOON)
    assert days_between(start, NOON) == [f"2026-03-{d:02d}" for d in range(4, 11)]
    assert len(days_between(*period_range("30d", NOON))) == 30


def test_day_series_fills_quiet_days_with_zero() -> None:
    days = ["2026-03-08", "2026-03-09", "2026-03-10"]
    rows = [{"day": "2026-03-10", "totalTokens": 30, "cost": 0.5},
            {"day": "2026-03-08", "promptTokens": 4, "completionTokens": 6, "cost": 0}]
    series = day_series(rows, days)
    assert series.labels == ["03-08", "03-09", "03-10"]
    assert series.tokens == [10, 0, 30]
    assert series.cost == [0.0, 0.0, 0.5]


def test_group_series_busiest_first_and_the_tail_summed() -> None:
    rows = [{"key": "alice", "totalTokens": 5, "cost": 1.0},
            {"key": None, "address": "10.0.0.7", "totalTokens": 9, "cost": 0.0},
            {"key": "bob", "totalTokens": 1, "cost": 0.25}]
    series = group_series(rows, person_label)
    assert series.labels == ["10.0.0.7", "alice", "bob"]
    assert series.tokens == [9, 5, 1]
    tail = group_series([{"model": f"m{i}", "totalTokens": 10 - i} for i in range(5)],
                        model_label, limit=3)
    assert tail.labels == ["m0", "m1", "others"] and tail.tokens == [10, 9, 8 + 7 + 6]


def test_money_counts_and_dates() -> None:
    assert money(0) == "$0.00" and money(12.5) == "$12.50" and money(0.0042) == "$0.0042"
    assert money(None) == "—"


def test_key_row_never_needs_the_secret() -> None:
    key = {"id": "0123456789ab", "name": "alice", "prefix": "gk-0123456789ab", "rpm": 60,
           "tpm": None, "budget": 5, "budgetPeriod": "day", "rooms": ["ABC123"],
           "priority": 2, "createdAt": NOON, "revoked": True,
           "usage": {"requests": 3, "promptTokens": 10, "completionTokens": 20, "cost": 0.5,
                     "periodCost": 0.25}}
    assert key_row(key) == [
        "alice", "gk-0123456789ab", "60 req/min · rooms ABC123 · priority 2",
        "$0.25 of $5.00 per day", "3 requests · 30 tokens · $0.50", "2026-03-10 12:00 UTC",
        "revoked"]
    assert limits_text({}) == "hub defaults" and budget_text({}) == "no budget"


def test_key_request_checks_fields_in_words() -> None:
    assert key_request(" ci ", "60", "", "2.5", "day", "abc123, xyz789", 3) == {
        "name": "ci", "rpm": 60, "tpm": None, "budget": 2.5, "budget_period": "day",
        "rooms": ["ABC123", "XYZ789"], "priority": 3}
    for bad, words in ((("", "", "", "", "month", "", 0), "Name"),
                       (("a", "0", "", "", "month", "", 0), "Requests per minute"),
                       (("a", "", "x", "", "month", "", 0), "Tokens per minute"),
                       (("a", "", "", "-1", "month", "", 0), "Budget"),
                       (("a", "", "", "nan", "month", "", 0), "Budget")):
        with pytest.raises(ValueError, match=words):
            key_request(*bad)


def test_alert_served_and_cli_rows() -> None:
    text = cost_alert_text({"day": "2026-03-10", "cost": 12.3, "threshold": 10})
    assert text == ("The gateway's cost on 2026-03-10 reached $12.30, past the alert"
                    " threshold of $10.00.")
    assert served_row({"person": "alice", "requests": 2, "promptTokens": 1000,
                       "completionTokens": 234}) == ["alice", "2", "1,234"]
    lines = usage_rows([{"model": "m", "requests": 1, "errors": 0, "promptTokens": 2,
                         "completionTokens": 3, "cost": 0}], "model")
    assert lines == [["model", "requests", "errors", "prompt", "completion", "cost"],
                     ["m", "1", "0", "2", "3", "$0.00"]]
