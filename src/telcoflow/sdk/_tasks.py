"""Running user handlers: sync or async, each failure logged, tasks kept alive."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any


async def invoke(handler: Callable[..., Any], args: tuple[Any, ...], log: logging.Logger,
                 what: str) -> None:
    """Call ``handler(*args)``, awaiting it if it returns an awaitable; log, never raise."""
    try:
        result = handler(*args)
        if inspect.isawaitable(result):
            await result
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("Error in %s handler", what)


class TaskSet:
    """Strong references to background tasks until they finish (asyncio keeps only weak ones)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


# Module-wide set for tasks that belong to no manager (e.g. a Call built by from_json).
BACKGROUND = TaskSet()
