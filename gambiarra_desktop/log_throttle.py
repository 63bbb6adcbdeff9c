"""Rate limiting of repeated log lines.

During a flood of bad requests or an exhaustion episode the same line repeats thousands of
times a second (36 MB of log in 30 s once), which fills disks and buries the first useful
line. :class:`RepeatThrottle` lets each (logger, message template) through at most
``burst`` times per ``interval_s``; the first line after a quiet spell says how many were
dropped. Installed by the hub on its own loggers and on the libraries' ones it drives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

THROTTLED_LOGGERS = ("asyncio", "aiohttp.server", "aiohttp.web", "aiohttp.websocket",
                     "aiohttp.client", "gambiarra_desktop")
"""Where the filter goes: the loggers named here and every existing logger under them
(a logger's filters do not see records of its children, so each gets one)."""
MAX_KEYS = 1024
"""Distinct templates remembered; the oldest are forgotten first."""


class RepeatThrottle(logging.Filter):
    """Lets the same (logger, message template) through ``burst`` times per interval."""

    def __init__(self, burst: int = 10, interval_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()  # Qt threads and to_thread workers log too.
        self._windows: dict[tuple[str, str], list[float]] = {}
        """key -> [window start, lines passed, lines dropped]"""

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window[0] >= self.interval_s:
                dropped = int(window[2]) if window is not None else 0
                self._windows.pop(key, None)
                if len(self._windows) >= MAX_KEYS:
                    self._windows.pop(next(iter(self._windows)))
                self._windows[key] = [now, 1, 0]
                if dropped:
                    _note_dropped(record, dropped, self.interval_s)
                return True
            if window[1] < self.burst:
                window[1] += 1
                return True
            window[2] += 1
            return False


def _note_dropped(record: logging.LogRecord, dropped: int, interval_s: float) -> None:
    record.msg = (f"{record.getMessage()} (this message repeated {dropped} more times"
                  f" in the last {interval_s:g} s, not shown)")
    record.args = None


def install_throttle(throttle: RepeatThrottle | None = None,
                     names: Iterable[str] = THROTTLED_LOGGERS) -> RepeatThrottle:
    """Attach one throttle to the named loggers and their existing children; loggers that
    already have a :class:`RepeatThrottle` keep theirs. Returns the throttle in use."""
    throttle = throttle or RepeatThrottle()
    prefixes = tuple(names)
    existing = [name for name in logging.root.manager.loggerDict
                if name.startswith(tuple(f"{p}." for p in prefixes))]
    for name in (*prefixes, *existing):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatThrottle) for f in logger.filters):
            logger.addFilter(throttle)
    return throttle
