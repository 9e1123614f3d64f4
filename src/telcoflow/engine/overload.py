"""Admission control: stop taking new calls while the media tick runs late. Given the time.

When the process cannot keep up (too many calls, or other work taking the CPU), every
live call's audio suffers; refusing the next caller with a clear reason keeps the calls
already up intact. The signal is the media tick's own lateness (how long after its
deadline each sub-tick ran), its 99th percentile over the last ``window_s`` seconds:

- overloaded when that passes ``enter_s``;
- admitting again only when it has stayed under ``leave_s`` (lower) for ``hold_s``
  (hysteresis: a gateway at the edge does not flap between admitting and refusing
  with every call that ends).

Sans-I/O: :meth:`observe` is fed each sub-tick's lateness and the time; the verdict is
computed at most every ``EVALUATE_S``. With no calls the clock stops and no samples
come: an old window means nothing is late any more.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

EVALUATE_S = 0.25


@dataclass(slots=True)
class LoadShed:
    """What the media plane gives up while the process cannot keep up, shared by every
    call and read per tick: ``active`` while it does (the quality watch is paused, and
    a call behind catches up by cuts instead of time-compression, which costs half the
    gateway's CPU when many calls are behind at once)."""

    active: bool = False


@dataclass(frozen=True, slots=True)
class OverloadSettings:
    window_s: float = 3.0
    enter_s: float = 0.040   # p99 sub-tick lateness that stops admission
    leave_s: float = 0.015   # ... and the p99 it must stay under to admit again
    hold_s: float = 3.0      # for this long


class Admission:
    def __init__(self, settings: OverloadSettings | None = None) -> None:
        self.settings = settings or OverloadSettings()
        self._samples: deque[tuple[float, float]] = deque()  # (when, lateness)
        self._overloaded = False
        self._calm_since: float | None = None   # p99 under leave_s since then
        self._next_eval = 0.0
        self.p99_s = 0.0          # the last evaluation's figure (for /readyz and logs)
        self.refused = 0          # calls refused while overloaded
        self.episodes = 0         # times admission stopped

    def observe(self, lateness_s: float, now: float) -> None:
        self._samples.append((now, lateness_s))
        if now >= self._next_eval:
            self._evaluate(now)

    def overloaded(self, now: float) -> bool:
        """Refuse new calls now? (Re-evaluated here too: samples stop with the calls.)"""
        if self._overloaded and now >= self._next_eval:
            self._evaluate(now)
        return self._overloaded

    def _evaluate(self, now: float) -> None:
        s = self.settings
        self._next_eval = now + EVALUATE_S
        samples = self._samples
        while samples and samples[0][0] < now - s.window_s:
            samples.popleft()
        late = sorted(lateness for _, lateness in samples)
        self.p99_s = late[min(len(late) - 1, int(len(late) * 0.99))] if late else 0.0
        if not self._overloaded:
            if self.p99_s > s.enter_s:
                self._overloaded, self._calm_since = True, None
                self.episodes += 1
            return
        if self.p99_s >= s.leave_s:
            self._calm_since = None
        elif self._calm_since is None:
            self._calm_since = now
        elif now - self._calm_since >= s.hold_s:
            self._overloaded = False
