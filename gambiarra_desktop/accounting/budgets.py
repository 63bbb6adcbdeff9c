"""Budgets are hard stops: a key at or over its budget gets no more priced calls this period.

Checked against the ledger's in-memory spend (a dict lookup, no query), so the gateway can
check every priced entry it is about to try. Periods are UTC days and months; a refusal
says when the period ends, so the client knows when to come back (``Retry-After``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gambiarra_desktop.accounting.api_keys import ApiKey
from gambiarra_desktop.accounting.errors import BudgetExceededError
from gambiarra_desktop.accounting.ledger import Ledger, now_ms


def over_budget(ledger: Ledger, key: ApiKey | None, at_ms: int | None = None) -> bool:
    """Whether ``key`` has spent its whole budget this period (no key, no budget: never)."""
    if key is None or key.budget is None:
        return False
    return ledger.spent(key.id, key.budget_period, at_ms) >= key.budget


def seconds_to_period_end(period: str, at_ms: int | None = None) -> int:
    """Whole seconds until the UTC day or month ends (at least 1)."""
    now = datetime.fromtimestamp((now_ms() if at_ms is None else at_ms) / 1000, UTC)
    if period == "day":
        end = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
        end = datetime(year, month, 1, tzinfo=UTC)
    return max(1, int((end - now).total_seconds() + 0.999))


def budget_exceeded(ledger: Ledger, key: ApiKey, at_ms: int | None = None) -> BudgetExceededError:
    spent = ledger.spent(key.id, key.budget_period, at_ms)
    return BudgetExceededError(
        f"key {key.name} spent ${spent:.4f} of ${key.budget or 0:.4f} this {key.budget_period}",
        seconds_to_period_end(key.budget_period, at_ms))
