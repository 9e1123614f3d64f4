"""Timers as data, the media clock's phases, catch-up and re-anchoring, token buckets."""

from __future__ import annotations

from telcoflow.engine.clock import MAX_CATCH_UP, PHASES, SUB_TICK_S, MediaClock
from telcoflow.engine.timers import TimerQueue
from telcoflow.server.limits import TokenBucket


def test_timers_fire_in_deadline_order_and_can_move_or_be_cancelled() -> None:
    wakes: list[int] = []
    timers = TimerQueue(on_earlier=lambda: wakes.append(1))
    timers.set("b", 20.0)
    timers.set("a", 10.0)
    timers.set("c", 30.0)          # later than the earliest: no wake needed
    assert len(wakes) == 2
    timers.set("b", 5.0)           # moved earlier
    timers.cancel("c")
    assert timers.next_deadline() == 5.0
    assert timers.pop_due(9.0) == ["b"]
    assert timers.pop_due(100.0) == ["a"]
    assert timers.next_deadline() is None and len(timers) == 0


def test_a_stale_heap_entry_never_fires() -> None:
    timers = TimerQueue()
    timers.set("x", 1.0)
    timers.set("x", 50.0)
    assert timers.pop_due(10.0) == []
    assert timers.pop_due(50.0) == ["x"]


def test_the_clock_is_idle_until_started_and_then_due_every_sub_tick() -> None:
    clock = MediaClock()
    assert clock.next_deadline() is None and list(clock.due(5.0)) == []
    clock.start(100.0)
    assert clock.next_deadline() == 100.0 + SUB_TICK_S
    assert list(clock.due(100.0 + SUB_TICK_S * 0.5)) == []  # not yet
    phases = []
    for n in range(1, 9):
        phases += [k % PHASES for k in clock.due(100.0 + n * SUB_TICK_S)]
    assert phases == [1, 2, 3, 0, 1, 2, 3, 0]  # every phase once per 20 ms, in turn
    assert clock.stats.late_ticks == 0


def test_a_timer_fired_a_hair_early_counts_as_on_time() -> None:
    clock = MediaClock()
    clock.start(0.0)
    assert len(clock.due(SUB_TICK_S - 1e-9)) == 1


def test_a_short_stall_is_caught_up_at_once_without_drifting() -> None:
    clock = MediaClock()
    clock.start(0.0)
    late = clock.due(6 * SUB_TICK_S + 0.001)  # blocked for 30 ms
    assert list(late) == [1, 2, 3, 4, 5, 6]
    assert clock.stats.late_ticks == 5
    # the schedule stays on the original grid
    assert abs((clock.next_deadline() or 0) - 7 * SUB_TICK_S) < 1e-12


def test_a_long_stall_re_anchors_instead_of_bursting() -> None:
    clock = MediaClock()
    clock.start(0.0)
    now = (MAX_CATCH_UP + 40) * SUB_TICK_S
    assert len(clock.due(now)) == 1
    assert clock.stats.reanchors == 1
    assert abs((clock.next_deadline() or 0) - (now + SUB_TICK_S)) < 1e-12


def test_token_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert all(bucket.take(0.0) for _ in range(5))
    assert not bucket.take(0.0)
    assert bucket.take(0.1)          # one token back after 100 ms at 10/s
    assert not bucket.take(0.1)
    assert not bucket.take(0.05)     # time going backwards gives nothing
    assert bucket.take(10.0, amount=5) and not bucket.take(10.0)
