"""Synchronous event emission that also serves ``async def`` handlers.

Our DSP objects are synchronous, but pipecat-style code registers ``async``
handlers and ``await``\\ s the methods that fire them. :class:`EventEmitter`
supports both:

* a plain function handler is called immediately, inline;
* a coroutine function handler is started as a task at once when an asyncio
  loop is running in this thread; otherwise the call is queued and runs when
  the caller awaits the returned :class:`Dispatch` (or
  :meth:`EventEmitter.wait_for_handlers`, or the synchronous
  :meth:`EventEmitter.run_pending_handlers`).

Every emitting method returns a :class:`Dispatch`: ignore it in synchronous
code, or ``await`` it to wait until the async handlers it fired finished.
Handler exceptions are logged, never raised into the audio path.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

from .errors import UnknownEventError

__all__ = ["Dispatch", "EventEmitter"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

F = TypeVar("F", bound=Callable[..., Any])


class Dispatch:
    """The async work started by one call; awaitable (completes when it is done)."""

    __slots__ = ("_emitter", "_items")

    def __init__(self, emitter: EventEmitter, items: list[Any]) -> None:
        self._emitter = emitter
        self._items = items  # asyncio.Task | (handler, args)

    @property
    def pending(self) -> int:
        return len(self._items)

    def __await__(self) -> Generator[Any, None, None]:
        return self._emitter._complete(self._items).__await__()


class EventEmitter:
    """Register handlers by event name and fire them (sync or async)."""

    def __init__(self, events: tuple[str, ...]) -> None:
        self._handlers: dict[str, list[Callable[..., Any]]] = {e: [] for e in events}
        self._queued: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._collect: list[Any] | None = None

    def event_handler(self, event_name: str) -> Callable[[F], F]:
        """Decorator: ``@obj.event_handler("on_audio_data")``."""

        def deco(fn: F) -> F:
            self.add_event_handler(event_name, fn)
            return fn

        return deco

    def add_event_handler(self, event_name: str, handler: Callable[..., Any]) -> None:
        if event_name not in self._handlers:
            raise UnknownEventError(
                f"unknown event {event_name!r}; known: {', '.join(sorted(self._handlers))}"
            )
        self._handlers[event_name].append(handler)

    def has_handlers(self, event_name: str) -> bool:
        return bool(self._handlers.get(event_name))

    def _begin(self) -> None:
        self._collect = []

    def _end(self) -> Dispatch:
        items, self._collect = self._collect or [], None
        return Dispatch(self, items)

    def _emit(self, event_name: str, *args: Any) -> None:
        for h in self._handlers[event_name]:
            if inspect.iscoroutinefunction(h):
                self._start_async(h, args)
                continue
            try:
                h(*args)
            except Exception:
                logger.exception("%s handler %r failed", event_name, h)

    def _start_async(self, h: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        item: Any
        if loop is not None:
            task = loop.create_task(_guard(h, args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            item = task
        else:
            item = (h, args)
            self._queued.append(item)
        if self._collect is not None:
            self._collect.append(item)

    async def _complete(self, items: list[Any]) -> None:
        for it in items:
            if isinstance(it, asyncio.Task):
                await it
            else:
                for i, q in enumerate(self._queued):
                    if q is it:
                        del self._queued[i]
                        await _guard(it[0], it[1])
                        break

    async def wait_for_handlers(self) -> None:
        """Run queued async handlers and wait for every running one."""
        while self._queued or self._tasks:
            queued, self._queued = self._queued, []
            for h, args in queued:
                await _guard(h, args)
            if self._tasks:
                await asyncio.gather(*list(self._tasks))

    def run_pending_handlers(self) -> None:
        """Synchronous code without a loop: run the queued async handlers now."""
        if self._queued:
            asyncio.run(self.wait_for_handlers())


async def _guard(h: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
    try:
        await h(*args)
    except Exception:
        logger.exception("async handler %r failed", h)
