"""Issue 15's goals, each next to the figure this run measured for it.

The goals are read from one run's rows, so every "added" figure is against ``direct`` (or,
for the tunnel, the direct transport) measured minutes apart on the same machine. A missed
goal is reported, not fatal: the bench fails only when requests fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from proxy_rounds import Tally, paired_gap_us

BUN_REFERENCE = ("Reference (issue 15, measured on this kind of machine, not in this run):"
                 " the original Bun hub adds about 0.22 ms at c=1 and uses 222 / 103 us of"
                 " CPU per request at c=1 / c=32.")


@dataclass(frozen=True)
class Goal:
    figure: str
    goal: str
    value: float
    limit: float
    strict: bool = False
    """``value < limit`` rather than ``value <= limit``."""
    unit: str = ""

    @property
    def met(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value < self.limit if self.strict else self.value <= self.limit

    def as_dict(self) -> dict[str, object]:
        return {"figure": self.figure, "goal": self.goal, "measured": self.value,
                "unit": self.unit, "met": self.met}


def _p50_gap(results: dict[str, dict[str, Tally]], scenario: str, route: str,
             base: str = "direct") -> float:
    tallies = results.get(scenario, {})
    if route not in tallies or base not in tallies:
        return float("nan")
    return tallies[route].percentile(50) - tallies[base].percentile(50)


def _tally(results: dict[str, dict[str, Tally]], scenario: str, route: str) -> Tally:
    return results.get(scenario, {}).get(route, Tally())


def goals(results: dict[str, dict[str, Tally]], memory: dict[str, float],
          streams_errors: int, streams_peak_mb: float, stream_count: int) -> list[Goal]:
    c1, c32 = "non-stream c=1", "non-stream c=32"
    long1, long32 = "long stream c=1", "long stream c=32"
    sse1 = paired_gap_us(_tally(results, c1, "hub+sse"), _tally(results, c1, "hub"))
    sse32 = paired_gap_us(_tally(results, c32, "hub+sse"), _tally(results, c32, "hub"))
    return [
        Goal("non-stream c=1: hub adds, p50", "<= 0.15 ms", _p50_gap(results, c1, "hub"),
             0.15, unit="ms"),
        Goal("hub CPU per request, c=1", "<= 150 us",
             _tally(results, c1, "hub").cpu_us_per_request, 150, unit="us"),
        Goal("hub CPU per request, c=32", "<= 60 us",
             _tally(results, c32, "hub").cpu_us_per_request, 60, unit="us"),
        Goal("stream: hub CPU per chunk, c=1", "<= 20 us",
             _tally(results, long1, "hub").cpu_us_per_chunk, 20, unit="us"),
        Goal("stream: hub CPU per chunk, c=32", "<= 20 us",
             _tally(results, long32, "hub").cpu_us_per_chunk, 20, unit="us"),
        Goal("stream: memory per open stream", "<= 8 KiB",
             memory.get("kib_per_stream", float("nan")), 8, unit="KiB"),
        Goal("stream c=1: first byte added, p50", "<= 0.25 ms",
             _p50_gap(results, "stream first byte c=1", "hub"), 0.25, unit="ms"),
        Goal("tunnel adds over direct transport, p50", "<= 0.25 ms",
             _p50_gap(results, c1, "tunnel", "hub"), 0.25, unit="ms"),
        Goal(f"{stream_count} streams / 4 participants: errors", "0",
             float(streams_errors), 0),
        Goal(f"{stream_count} streams: hub peak RSS", "< 150 MB", streams_peak_mb, 150,
             strict=True, unit="MB"),
        Goal("one SSE listener adds, CPU per request c=1", "<= 10 us", sse1, 10, unit="us"),
        Goal("one SSE listener adds, CPU per request c=32", "<= 10 us", sse32, 10, unit="us"),
    ]


def print_goals(table: list[Goal]) -> None:
    print(BUN_REFERENCE)
    print()
    header = f"{'GOAL: figure':<46} {'goal':>11} {'measured':>12} {'met':>4}"
    print(header)
    print("-" * len(header))
    for g in table:
        measured = f"{g.value:.3f}" if abs(g.value) < 10 else f"{g.value:.1f}"
        print(f"{g.figure:<46} {g.goal:>11} {measured + ' ' + g.unit:>12}"
              f" {'yes' if g.met else 'no':>4}")
    met = sum(g.met for g in table)
    print(f"\n{met} of {len(table)} goals met.")
