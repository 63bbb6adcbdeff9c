"""The process's open-file limit.

Every connection, upstream socket, log and database file is a descriptor. Many systems start
processes with a soft limit of 1024 while allowing far more (the hard limit), and 1,005 idle
connections once locked everyone out of a hub. So the hub raises its soft limit to the hard
one at start, and sizes its connection cap from the result.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)


def raise_open_file_limit() -> int | None:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; return the soft limit now in force,
    or ``None`` where there is no such limit (Windows)."""
    if sys.platform == "win32":
        return None
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if target == resource.RLIM_INFINITY or target < 0:
        target = max(soft, 1 << 20)  # "unlimited" hard limit: ask for a large finite one.
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # macOS caps it below an "unlimited" hard limit.
            log.info("could not raise the open-file limit from %d: %s", soft, exc)
    return None if soft == resource.RLIM_INFINITY else int(soft)
