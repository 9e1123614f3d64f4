"""Stall attribution: a late media tick is put down to the loop's own work, its GC, or
a wait for a CPU, from the thread's schedstat; logged at most once per 10 s."""

from __future__ import annotations

import gc
import logging
import time

import pytest

from telcoflow.server.metrics import GatewayMetrics, Sources
from telcoflow.server.stalls import LOG_EVERY_S, STALL_S, StallWatch, ThreadTimes

from ..engine.harness import Harness
from .test_metrics import sample


class FakeTimes:
    """A thread's (on a CPU, waiting) seconds, moved by the test."""

    def __init__(self) -> None:
        self.cpu = self.wait = 0.0
        self.closed = False

    def read(self) -> tuple[float, float]:
        return self.cpu, self.wait

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.t = 100.0
        self.step = 0.0  # added at every reading (a clock that moves while GC runs)

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def watch() -> tuple[StallWatch, FakeTimes, Clock]:
    times, clock = FakeTimes(), Clock()
    w = StallWatch(clock, lambda: times)
    w.start()
    return w, times, clock


def test_this_threads_schedstat_counts_its_cpu() -> None:
    times = ThreadTimes()
    try:
        assert times.available  # Linux: the gateway's home
        cpu0, wait0 = times.read()
        spent = time.thread_time() + 0.03
        while time.thread_time() < spent:  # 30 ms of this thread's CPU
            pass
        cpu1, wait1 = times.read()
        assert cpu1 - cpu0 >= 0.025
        assert wait1 >= wait0
    finally:
        times.close()


@pytest.mark.parametrize(("wall", "cpu", "wait", "counts", "said"), [
    # runnable but not run: the machine is short of cores
    (0.130, 0.010, 0.115, (1, 0, 0), ("waited 115 ms for a CPU", "short of CPU")),
    # neither on a CPU nor waiting for one: e.g. a write to a full pipe sleeps in the kernel
    (0.120, 0.004, 0.002, (0, 0, 1), ("off a CPU 114 ms", "blocked or asleep")),
])
def test_a_stall_is_put_down_to_where_the_loops_thread_spent_it(
        caplog: pytest.LogCaptureFixture, wall: float, cpu: float, wait: float,
        counts: tuple[int, int, int], said: tuple[str, str]) -> None:
    w, times, clock = watch()
    w.media_tick_started(0.0, 1)
    clock.t += wall
    times.cpu += cpu
    times.wait += wait
    with caplog.at_level(logging.WARNING, "telcoflow.server.stalls"):
        w.media_tick_started(0.110, 22)
    assert w.totals.stalls == 1
    assert (w.totals.waiting, w.totals.busy, w.totals.blocked) == counts
    assert (w.totals.wait_s, w.totals.blocked_s) == pytest.approx((wait, wall - cpu - wait))
    [line] = caplog.messages
    assert "worst 110 ms late" in line and all(part in line for part in said)
    w.stop()


def test_a_stall_spent_running_is_the_gateways_own_work_and_gc_is_counted() -> None:
    w, times, clock = watch()
    w.media_tick_started(0.0, 1)
    clock.t += 0.090
    times.cpu += 0.085
    clock.step = 0.002
    gc.collect()  # a real collection (all generations), timed by the watch's gc callback
    clock.step = 0.0
    w.media_tick_started(0.070, 14)
    w.stop()
    assert (w.totals.waiting, w.totals.busy) == (0, 1)
    assert w.totals.gc_s == pytest.approx(0.002)  # the clock read at its start and stop
    assert times.closed
    assert w._gc not in gc.callbacks  # stopped: no callback left behind


def test_ticks_on_time_and_short_lateness_are_not_stalls() -> None:
    w, times, clock = watch()
    for late in (0.0, 0.004, STALL_S - 0.001):
        clock.t += 0.005
        times.wait += 0.5
        w.media_tick_started(late, 1)
    assert w.totals.stalls == 0
    w.stop()


def test_stalls_are_logged_once_per_interval_then_summed(
        caplog: pytest.LogCaptureFixture) -> None:
    w, times, clock = watch()
    w.media_tick_started(0.0, 1)
    with caplog.at_level(logging.WARNING, "telcoflow.server.stalls"):
        for _ in range(5):  # five stalls a second apart: the first logged, four held
            clock.t += 1.0
            times.cpu += 0.1
            w.media_tick_started(0.1, 20)
        assert len(caplog.messages) == 1
        clock.t += LOG_EVERY_S
        times.wait += 0.3
        w.media_tick_started(0.2, 40)  # the interval is over: the five since, one line
        assert len(caplog.messages) == 2
        assert "stalled 5 time(s), worst 200 ms late" in caplog.messages[1]
        clock.t += 1.0
        times.cpu += 0.1
        w.media_tick_started(0.1, 20)
        w.stop()  # what is held is logged on the way out
    assert len(caplog.messages) == 3
    assert w.totals.stalls == 7


def test_metrics_show_stalls_by_cause_and_the_loops_wait_for_a_cpu() -> None:
    w, times, clock = watch()
    w.media_tick_started(0.0, 1)
    clock.t += 0.2
    times.wait += 0.15
    times.cpu += 0.02
    w.media_tick_started(0.18, 36)
    metrics = GatewayMetrics()
    engine = Harness().engine
    engine.watch_cost.seconds = 2.5
    engine.watch_cost.unmeasured_s = 4.0
    engine.watch_cost.paused = True
    metrics.sources = Sources(engine, lambda: (), stalls=w)
    assert sample(metrics, "telcoflow_quality_watch_cpu_seconds_total") == 2.5
    assert sample(metrics, "telcoflow_quality_watch_unmeasured_seconds_total") == 4.0
    assert sample(metrics, "telcoflow_quality_watch_paused") == 1
    assert sample(metrics, "telcoflow_media_stalls_total", cause="cpu_wait") == 1
    assert sample(metrics, "telcoflow_media_stalls_total", cause="busy") == 0
    assert sample(metrics, "telcoflow_media_stalls_total", cause="blocked") == 0
    assert sample(metrics, "telcoflow_loop_cpu_wait_seconds_total") == pytest.approx(0.15)
    w.stop()


def test_without_schedstat_nothing_is_attributed() -> None:
    """Off Linux every stall would read as a blocked loop: the watch stays off."""
    class NoSchedstat(FakeTimes):
        available = False

    w = StallWatch(Clock(), NoSchedstat)
    w.start()
    w.media_tick_started(0.0, 1)
    w.media_tick_started(0.3, 60)
    assert w.totals.stalls == 0 and w.cpu_wait_s() == 0.0
    assert w._gc not in gc.callbacks
    w.stop()
