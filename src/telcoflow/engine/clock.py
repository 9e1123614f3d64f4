"""The media clock: when each 5 ms phase of the 20 ms media tick is due. Given the time.

The 20 ms period is split into ``PHASES`` sub-ticks of 5 ms and each call
belongs to one phase: every call still gets exactly one tick per 20 ms, but
a quarter of the calls are handled at a time, so frames arriving meanwhile
wait a quarter as long (the uplink's tail latency and the callers' delivery
jitter shrink; the CPU is the same).

Sub-ticks are due at absolute times ``anchor + n × 5 ms`` so the clock does
not drift. When the caller of :meth:`due` is late, the missed sub-ticks are
all returned at once (up to ``MAX_CATCH_UP``) so callers keep receiving
real-time audio; a longer stall re-anchors the clock at ``now`` instead of
bursting seconds of audio.
"""

from __future__ import annotations

from dataclasses import dataclass

TICK_S = 0.020
PHASES = 4
SUB_TICK_S = TICK_S / PHASES
MAX_CATCH_UP = 5 * PHASES  # sub-ticks
# an I/O loop may fire a timer this early (its clock resolution): count it as on time
EARLY_S = 1e-6


@dataclass(slots=True)
class ClockStats:
    ticks: int = 0        # sub-ticks run
    late_ticks: int = 0   # sub-ticks run late, in a catch-up burst
    reanchors: int = 0    # stalls longer than MAX_CATCH_UP
    skipped: int = 0      # sub-ticks never run (re-anchored past them)


class MediaClock:
    def __init__(self) -> None:
        self._anchor = 0.0
        self._n = 0              # sub-ticks since the anchor, the next one due is n
        self.running = False
        self.stats = ClockStats()
        self.just_skipped = 0    # sub-ticks the last :meth:`due` skipped (a re-anchor)

    def start(self, now: float) -> None:
        """Run from ``now``: the first sub-tick is due one sub-tick later."""
        if not self.running:
            self.running, self._anchor, self._n = True, now, 1

    def stop(self) -> None:
        self.running = False

    def next_deadline(self) -> float | None:
        return self._anchor + self._n * SUB_TICK_S if self.running else None

    def phase_due_in(self, sub_ticks: int) -> int:
        """The phase of the sub-tick ``sub_ticks`` after the next one due."""
        return (self._n + sub_ticks) % PHASES

    def due(self, now: float) -> range:
        """The phases due at ``now``, in order, as a range of sub-tick numbers (mod PHASES)."""
        if not self.running:
            return range(0)
        behind = int((now + EARLY_S - self._anchor) / SUB_TICK_S) - self._n + 1
        if behind <= 0:
            return range(0)
        self.just_skipped = 0
        if behind > MAX_CATCH_UP:
            self.stats.reanchors += 1
            self.just_skipped = behind - 1
            self.stats.skipped += behind - 1
            self._anchor, self._n, behind = now, 0, 1
        self.stats.late_ticks += behind - 1
        self.stats.ticks += behind
        first = self._n
        self._n += behind
        return range(first, first + behind)
