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


def budget_held(ledger: Ledger, key: ApiKey, estimate: float,
                at_ms: int | None = None) -> BudgetExceededError:
    """The refusal of a call whose estimated cost does not fit beside what the key spent
    and what its calls in flight hold (the budget is not spent yet, but could be)."""
    spent = ledger.spent(key.id, key.budget_period, at_ms)
    return BudgetExceededError(
        f"key {key.name} spent ${spent:.4f} of ${key.budget or 0:.4f} this"
        f" {key.budget_period}; calls in flight hold ${ledger.reserved(key.id):.4f} and this"
        f" call may cost up to ${estimate:.4f} (lower max_tokens to fit)",
        seconds_to_period_end(key.budget_period, at_ms))
