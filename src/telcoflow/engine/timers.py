"""The engine's timers as data: a deadline per key, no callbacks, no event loop.

A key names what is due (e.g. ``(Due.RING, call_id)``); the engine decides
what to do with each due key in ``handle_timer(now)``. Setting a key again
moves it; cancelled and moved entries are dropped lazily from the heap.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable
from enum import StrEnum


class Due(StrEnum):
    """What an engine timer is for; a key is ``(Due, id, ...)``."""

    RING = "ring"                  # an inbound call nobody claimed
    CONNECT = "connect"            # a callee rung by call.connect or MISSED_ONLY
    RESUME_OFFER = "resume_offer"  # offer a live call again to a reconnected agent
    RESUME_GRACE = "resume_grace"  # a live call's agent connection has not come back
    AGENT_LOST = "agent_lost"      # a live call's agent link has not come back


class TimerQueue:
    def __init__(self, on_earlier: Callable[[], None] | None = None) -> None:
        self._deadline: dict[Hashable, float] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._order = itertools.count()
        # called when the earliest deadline moved earlier: the I/O layer re-arms its timer
        self.on_earlier = on_earlier

    def __len__(self) -> int:
        return len(self._deadline)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._deadline

    def set(self, key: Hashable, when: float) -> None:
        earliest = self.next_deadline()
        self._deadline[key] = when
        heapq.heappush(self._heap, (when, next(self._order), key))
        if (earliest is None or when < earliest) and self.on_earlier is not None:
            self.on_earlier()

    def cancel(self, key: Hashable) -> None:
        self._deadline.pop(key, None)

    def next_deadline(self) -> float | None:
        heap, deadline = self._heap, self._deadline
        while heap:
            when, _, key = heap[0]
            if deadline.get(key) == when:
                return when
            heapq.heappop(heap)  # cancelled or moved
        return None

    def pop_due(self, now: float) -> list[Hashable]:
        """Every key whose deadline is ``<= now``, earliest first; they are removed."""
        due = []
        while (when := self.next_deadline()) is not None and when <= now:
            _, _, key = heapq.heappop(self._heap)
            del self._deadline[key]
            due.append(key)
        return due
