"""The media clock: one ticker per process, driving every call every 20 ms.

The 20 ms period is split into ``PHASES`` sub-ticks of 5 ms, and each call
belongs to one phase: every call still gets exactly one tick per 20 ms, but
the loop is blocked by a quarter of the calls at a time, so frames arriving
meanwhile wait a quarter as long (the uplink's tail latency and the
callers' delivery jitter shrink; the CPU is the same).

Sub-ticks are scheduled at absolute times ``start + n × 5 ms`` so the clock
does not drift; when the loop falls behind, missed sub-ticks are run at once
(up to ``MAX_CATCH_UP`` periods) so callers keep receiving real-time audio,
and a longer stall re-anchors the clock instead of bursting seconds of audio.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

TICK_S = 0.020
PHASES = 4
SUB_TICK_S = TICK_S / PHASES
MAX_CATCH_UP = 5 * PHASES  # sub-ticks


@dataclass(slots=True)
class ClockStats:
    ticks: int = 0
    late_ticks: int = 0
    reanchors: int = 0
    busy_s: float = 0.0  # time spent inside tick handlers


class MediaClock:
    def __init__(self, on_tick: Callable[[float, int], None]) -> None:
        self._on_tick = on_tick
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._anchor = 0.0
        self._n = 0
        self.stats = ClockStats()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._anchor = self._loop.time()
        self._n = 0
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        assert self._loop is not None
        self._n += 1
        self._handle = self._loop.call_at(self._anchor + self._n * SUB_TICK_S, self._fire)

    def _fire(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        due = int((now - self._anchor) / SUB_TICK_S) - self._n + 1
        if due > MAX_CATCH_UP:
            self.stats.reanchors += 1
            self._anchor, self._n, due = now, 0, 1
        elif due > 1:
            self.stats.late_ticks += due - 1
        started = time.perf_counter()
        for k in range(max(1, due)):
            self.stats.ticks += 1
            try:
                self._on_tick(now, (self._n + k) % PHASES)
            except Exception:
                logger.exception("media clock tick failed")
        self._n += max(0, due - 1)
        self.stats.busy_s += time.perf_counter() - started
        self._schedule()
