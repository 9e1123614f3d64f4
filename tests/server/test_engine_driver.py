"""The engine's one timer on the event loop: armed at the next deadline, never spinning."""

from __future__ import annotations

from collections.abc import Callable

from telcoflow.server.app import EngineDriver

from ..engine.harness import Harness


class CoarseLoop:
    """An event loop whose clock counts whole milliseconds and fires a timer as soon as
    that clock reaches the deadline rounded down, up to 1 ms early (as uvloop does);
    each callback costs the real clock ``COST`` seconds."""

    COST = 50e-6

    def __init__(self, clock: Callable[[], float], set_clock: Callable[[float], None]) -> None:
        self._clock, self._set = clock, set_clock
        self.armed: list[tuple[float, Callable[[], None]]] = []
        self.arms = 0

    def time(self) -> float:
        return int(self._clock() * 1000) / 1000

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        self.arms += 1
        entry = (when, callback)
        self.armed.append(entry)
        return Handle(self.armed, entry)

    def run_for(self, seconds: float) -> None:
        until = self._clock() + seconds
        while self.armed:
            when, callback = min(self.armed)
            fires_at = max(self._clock(), int(when * 1000) / 1000)  # early by up to 1 ms
            if fires_at > until:
                break
            self.armed.remove((when, callback))
            self._set(fires_at)
            callback()
            self._set(self._clock() + self.COST)
        self._set(until)


class Handle:
    def __init__(self, armed: list[tuple[float, Callable[[], None]]],
                 entry: tuple[float, Callable[[], None]]) -> None:
        self._armed, self._entry = armed, entry

    def cancel(self) -> None:
        if self._entry in self._armed:
            self._armed.remove(self._entry)


def test_a_timer_fired_early_by_the_loops_resolution_still_ticks_and_does_not_spin() -> None:
    h = Harness()
    h.clock.t = 100.0003  # deadlines fall between the loop's milliseconds
    loop = CoarseLoop(h.clock.now, lambda t: setattr(h.clock, "t", t))
    driver = EngineDriver(h.engine, loop)  # type: ignore[arg-type]
    leg, *_ = h.answered_call()
    loop.run_for(1.0)
    assert 49 <= leg.frames <= 51        # every 20 ms tick ran
    assert loop.arms <= 4 * 50 + 5      # one arming per 5 ms sub-tick, not a spin
    driver.stop()
    assert not loop.armed
