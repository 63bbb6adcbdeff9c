"""Async work started from Qt signals, tracked so the window can end all of it on quit.

``tracked_slot`` replaces qasync's ``asyncSlot``: the coroutine runs as a task on the shared
loop (the window never waits), and the task is remembered by the owner's ``tasks``
tracker, so shutdown can cancel whatever is still in flight instead of leaving it to run
against deleted widgets.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from PySide6.QtCore import Slot

log = logging.getLogger(__name__)


class TaskTracker:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("GUI task failed", exc_info=task.exception())

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def cancel_all(self) -> None:
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            # Done now, though its done-callback may run a loop turn later (qasync does not
            # always run them before this await returns): it is no longer pending.
            self._tasks.discard(task)


class HasTasks(Protocol):
    tasks: TaskTracker


def tracked_slot(*types: type) -> Callable[[Callable[..., Coroutine[Any, Any, Any]]],
                                           Callable[..., None]]:
    def decorate(method: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., None]:
        @Slot(*types)
        @functools.wraps(method)
        def slot(self: HasTasks, *args: Any) -> None:
            self.tasks.spawn(method(self, *args))

        return slot

    return decorate
