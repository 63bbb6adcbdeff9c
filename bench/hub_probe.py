"""What a server process spends, read from the kernel's accounting of that process.

CPU per request is the figure the issue's goals are written in: on 2 cores the load
generator and the fake model take the rest of the machine, so throughput says little about
the hub, while the CPU seconds the kernel charged to the hub's own process (all its threads,
user + system) say what each request cost it, whatever else ran beside it.

psutil's ``cpu_times`` counts in clock ticks (10 ms on Linux): a round of 600 requests at
200 us each is 12 ticks, too coarse for a goal of "10 us per request". So on Linux the
probe sums the nanosecond run times the scheduler keeps per thread
(``/proc/PID/task/*/schedstat``), and falls back to psutil elsewhere. A thread that exits
between two readings takes its time with it; the hub's threads (executor, resolver) live
as long as it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics

import psutil


class ProcessProbe:
    """CPU seconds and resident memory of one process, by pid."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self._tasks = f"/proc/{pid}/task"
        self.precise = os.path.isfile(f"{self._tasks}/{pid}/schedstat")

    def cpu_s(self) -> float:
        if self.precise:
            with contextlib.suppress(OSError):
                return self._scheduler_cpu_s()
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def _scheduler_cpu_s(self) -> float:
        total_ns = 0
        for tid in os.listdir(self._tasks):
            try:
                with open(f"{self._tasks}/{tid}/schedstat", "rb") as stats:
                    total_ns += int(stats.read().split(maxsplit=1)[0])
            except (OSError, ValueError, IndexError):
                continue  # The thread ended between listing and reading.
        return total_ns / 1e9

    def ticks_cpu_s(self) -> float:
        """psutil's reading (user + system, whole ticks), for a cross-check."""
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    async def settled_rss(self, samples: int = 3, gap_s: float = 0.05) -> int:
        """The median of a few readings, so one allocation burst does not decide it."""
        readings = []
        for _ in range(samples):
            readings.append(self.rss())
            await asyncio.sleep(gap_s)
        return int(statistics.median(readings))


class PeakRss:
    """Samples a process's RSS in the background; ``peak`` is the largest reading seen."""

    def __init__(self, probe: ProcessProbe, every_s: float = 0.05) -> None:
        self._probe = probe
        self._every_s = every_s
        self.peak = probe.rss()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self._probe.rss())
            await asyncio.sleep(self._every_s)

    async def __aenter__(self) -> PeakRss:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.peak = max(self.peak, self._probe.rss())
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
