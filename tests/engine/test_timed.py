"""Adapters' own timers (SIP retransmissions) run on the engine's one timer."""

from __future__ import annotations

from .harness import Harness


class Retransmitter:
    def __init__(self) -> None:
        self.deadline: float | None = None
        self.fired: list[float] = []

    def next_deadline(self) -> float | None:
        return self.deadline

    def handle_timer(self, now: float) -> None:
        self.fired.append(now)
        self.deadline = now + 0.5 if len(self.fired) < 3 else None


def test_an_adapters_timers_fire_at_their_deadlines_and_wake_the_driver() -> None:
    h = Harness()
    timed = Retransmitter()
    h.engine.add_timed(timed)
    assert h.engine.next_deadline() is None
    start = h.clock.t
    timed.deadline = start + 0.5
    wakes = h.wakes
    h.engine.deadline_changed()
    assert h.wakes == wakes + 1 and h.engine.next_deadline() == start + 0.5
    h.run(5.0)
    assert [round(t - start, 3) for t in timed.fired] == [0.5, 1.0, 1.5]
    assert h.engine.next_deadline() is None


def test_a_failing_adapter_timer_does_not_stop_the_others() -> None:
    h = Harness()

    class Broken(Retransmitter):
        def handle_timer(self, now: float) -> None:
            self.deadline = None
            raise RuntimeError("bug")

    broken, good = Broken(), Retransmitter()
    h.engine.add_timed(broken)
    h.engine.add_timed(good)
    broken.deadline = good.deadline = h.clock.t + 1
    h.run(2.0)
    assert len(good.fired) >= 1
