"""Why the media tick ran late: the loop's own work, its garbage collection, or a CPU.

A media tick 50 ms late or more is a stall callers hear. Its cause decides the cure:
if the loop's thread was *on a CPU* the whole time, the gateway itself is too slow
(too many calls for one process, a long GC pass); if it was *waiting for a CPU*
(runnable, but the kernel ran something else), the machine is short of cores and
no change to the gateway helps; if it was *neither* (asleep, or in a call that
blocks: a write to a full log pipe, a disk), something blocks the loop. Linux keeps
the first two per thread in ``/proc/thread-self/schedstat`` (ns on a CPU, ns
runnable but waiting; the third is the rest of the wall time); this
observer reads it at every media tick (0.4 µs: one ``pread`` on a file kept open)
and, for a late tick, attributes the time since the previous one.

Stalls are logged at most once per :data:`LOG_EVERY_S` (the first one at once, then
a summary of those since), counted by cause, and the loop thread's total wait for
a CPU is there for the ``/metrics`` scrape. Off Linux (no schedstat) stalls are
not attributed; the tick's lateness is still on ``/metrics``.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..engine.ports import NoObserver

logger = logging.getLogger(__name__)

STALL_S = 0.050      # a tick at least this late is a stall
LOG_EVERY_S = 10.0   # at most one stall line per this long
_SCHEDSTAT = "/proc/thread-self/schedstat"


class Times(Protocol):
    def read(self) -> tuple[float, float]: ...

    def close(self) -> None: ...


class ThreadTimes:
    """The calling thread's seconds on a CPU and waiting for one (Linux), from the
    thread that opened it: the file is the thread's own, whoever reads it."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open(_SCHEDSTAT, os.O_RDONLY)
        except OSError:  # not Linux, or no schedstat in this kernel
            self._fd = None

    @property
    def available(self) -> bool:
        return self._fd is not None

    def read(self) -> tuple[float, float]:
        """(on a CPU, waiting for a CPU) in seconds since the thread started; zeros
        when unavailable."""
        if self._fd is None:
            return 0.0, 0.0
        fields = os.pread(self._fd, 64, 0).split()
        return int(fields[0]) / 1e9, int(fields[1]) / 1e9

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(slots=True)
class StallTotals:
    stalls: int = 0
    waiting: int = 0       # stalls mostly spent waiting for a CPU
    busy: int = 0          # stalls mostly spent on a CPU (the gateway's own work)
    blocked: int = 0       # stalls mostly spent off a CPU and not waiting for one
    worst_late_s: float = 0.0
    on_cpu_s: float = 0.0  # over the stalls' intervals
    wait_s: float = 0.0
    blocked_s: float = 0.0  # asleep or in a blocking call (a full pipe, a disk)
    gc_s: float = 0.0

    def add(self, late_s: float, wall_s: float, on_cpu_s: float, wait_s: float,
            gc_s: float) -> None:
        blocked_s = max(0.0, wall_s - on_cpu_s - wait_s)
        self.stalls += 1
        cause = _main_cause(on_cpu_s, wait_s, blocked_s)
        setattr(self, cause, getattr(self, cause) + 1)
        self.worst_late_s = max(self.worst_late_s, late_s)
        self.on_cpu_s += on_cpu_s
        self.wait_s += wait_s
        self.blocked_s += blocked_s
        self.gc_s += gc_s

    def cause(self) -> str:
        return _SAYS[_main_cause(self.on_cpu_s, self.wait_s, self.blocked_s)]


_SAYS = {"waiting": "the machine is short of CPU", "busy": "the gateway's own work",
         "blocked": "the loop was blocked or asleep (a blocking call, or a timer that fired "
                    "late)"}


def _main_cause(on_cpu_s: float, wait_s: float, blocked_s: float) -> str:
    """Where most of the time went: the name of the :class:`StallTotals` count."""
    most = max(on_cpu_s, wait_s, blocked_s)
    return "waiting" if most == wait_s else "busy" if most == on_cpu_s else "blocked"


class StallWatch(NoObserver):
    """A call observer that hears only of media ticks: see the module docstring."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter,
                 times: Callable[[], Times] = ThreadTimes) -> None:
        self._clock = clock
        self._open_times = times  # opened by :meth:`start`, on the loop's thread
        self._times: Times | None = None
        self._gc_s = 0.0              # time in garbage collection, all generations
        self._gc_started = 0.0
        self._last: tuple[float, float, float, float] | None = None  # t, cpu, wait, gc
        self.totals = StallTotals()   # since start
        self._pending = StallTotals()  # since the last log line
        self._logged_at = -LOG_EVERY_S

    # ── life ──
    def start(self) -> None:
        """On the loop's thread (whose schedstat is read). Without schedstat (not
        Linux) nothing is watched: every stall would read as a blocked loop."""
        if self._times is None:
            times = self._open_times()
            if not getattr(times, "available", True):
                logger.info("no /proc/thread-self/schedstat: media stalls are not attributed")
                return
            self._times = times
            gc.callbacks.append(self._gc)

    def stop(self) -> None:
        if self._times is not None:
            self._times.close()
            self._times = None
            gc.callbacks.remove(self._gc)
        self._flush(force=True)

    def cpu_wait_s(self) -> float:
        """The loop thread's total wait for a CPU (0 unknown)."""
        return self._times.read()[1] if self._times is not None else 0.0

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = self._clock()
        else:
            self._gc_s += self._clock() - self._gc_started

    # ── the observer ──
    def media_tick_started(self, lateness_s: float, sub_ticks: int) -> None:
        if self._times is None:
            return
        now = self._clock()
        cpu, wait = self._times.read()
        last = self._last
        self._last = (now, cpu, wait, self._gc_s)
        if last is None or lateness_s < STALL_S:
            return
        times = (now - last[0], cpu - last[1], wait - last[2], self._gc_s - last[3])
        self.totals.add(lateness_s, *times)
        self._pending.add(lateness_s, *times)
        self._flush(now=now)

    def _flush(self, force: bool = False, now: float | None = None) -> None:
        p = self._pending
        if not p.stalls:
            return
        now = self._clock() if now is None else now
        if not force and now - self._logged_at < LOG_EVERY_S:
            return
        self._logged_at = now
        logger.warning(
            "media clock stalled %d time(s), worst %.0f ms late: the loop waited %.0f ms for a"
            " CPU, ran %.0f ms (%.0f ms went to garbage collection) and was off a CPU %.0f ms:"
            " %s", p.stalls, 1000 * p.worst_late_s, 1000 * p.wait_s, 1000 * p.on_cpu_s,
            1000 * p.gc_s, 1000 * p.blocked_s, p.cause())
        self._pending = StallTotals()
