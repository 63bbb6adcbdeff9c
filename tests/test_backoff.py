"""The one backoff every client here waits with: doubling, jittered, never above its cap."""

from __future__ import annotations

from gambiarra_desktop.backoff import Backoff


def test_next_delay_doubles_up_to_the_cap_and_reset_starts_over() -> None:
    backoff = Backoff(initial_s=1.0, cap_s=8.0, jitter=0.2)
    delays = [backoff.next_delay() for _ in range(8)]
    for attempt, delay in enumerate(delays):
        base = min(8.0, 2.0 ** attempt)
        assert base * 0.8 - 1e-9 <= delay <= min(8.0, base * 1.2) + 1e-9, (attempt, delay)
    backoff.reset()
    assert 0.8 - 1e-9 <= backoff.next_delay() <= 1.2 + 1e-9
