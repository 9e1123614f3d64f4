"""Admission control: refuse new calls while the media tick runs late, admit again once
it has been on time for a while (hysteresis). The engine is given the time."""

from __future__ import annotations

import logging

import pytest

from telcoflow.engine.overload import Admission, OverloadSettings
from telcoflow.engine.ports import EndReason

from .harness import Harness

SUB_TICK = 0.005


def feed(admission: Admission, lateness: float, start: float, seconds: float) -> float:
    """Sub-ticks every 5 ms for ``seconds``, each ``lateness`` late; returns the end time."""
    n = round(seconds / SUB_TICK)
    for i in range(n):
        admission.observe(lateness, start + i * SUB_TICK)
    return start + n * SUB_TICK


def test_admission_stops_past_the_threshold_and_resumes_only_after_a_calm_hold() -> None:
    s = OverloadSettings(window_s=3.0, enter_s=0.040, leave_s=0.015, hold_s=3.0)
    a = Admission(s)
    t = feed(a, 0.002, 0.0, 5.0)
    assert not a.overloaded(t)
    t = feed(a, 0.030, t, 5.0)        # late, but under the threshold
    assert not a.overloaded(t)
    t = feed(a, 0.080, t, 0.3)        # 60 sub-ticks at 80 ms: p99 of the window passes
    assert a.overloaded(t) and a.episodes == 1
    t = feed(a, 0.030, t, 10.0)       # better, not good: between leave and enter
    assert a.overloaded(t)            # hysteresis: no flapping at the edge
    t = feed(a, 0.002, t, 3.0)        # on time; the window still remembers the 30 ms
    assert a.overloaded(t)
    t = feed(a, 0.002, t, 2.5)        # calm for 2.5 s of the 3 s hold
    assert a.overloaded(t)
    t = feed(a, 0.002, t, 1.0)
    assert not a.overloaded(t) and a.episodes == 1


def test_no_samples_means_nothing_is_late() -> None:
    a = Admission(OverloadSettings(window_s=3.0, hold_s=3.0))
    a.observe(0.5, 0.0)
    assert a.overloaded(0.0)
    assert a.overloaded(2.0)          # the late sample is still in the window
    assert a.overloaded(4.0)          # gone from the window: calm from here...
    assert not a.overloaded(7.5)      # ... for the hold


def test_the_engine_refuses_callers_while_its_tick_runs_late_and_admits_again() -> None:
    h = Harness()
    h.answered_call()
    for _ in range(5):                # the loop keeps getting blocked for 70 ms
        h.run(0.02)
        h.stall(0.07)
    leg, call_id = h.dial()
    assert call_id is None
    assert leg.events[-1][:2] == ("ended", EndReason.GATEWAY_OVERLOADED)
    assert "overloaded" in leg.events[-1][2]
    assert h.engine.media.admission.refused == 1
    h.run(10.0)                       # ticks on time again: admitted after the hold
    leg, call_id = h.dial()
    assert call_id is not None and leg.events[-1][0] == "ringing"


def test_the_quality_watch_pauses_while_the_tick_runs_late_until_the_load_falls(
        caplog: pytest.LogCaptureFixture) -> None:
    """The watch is a third of the gateway's CPU: while the tick runs late it is
    paused (the recording still gets every block), and it resumes only once the
    overload is over *and* the calls are under 90 % of the count it paused at, so it
    does not flap back on at the load that made the tick late."""
    from telcoflow.engine.call_states import CallEvent

    h = Harness()
    calls = [h.answered_call()[3] for _ in range(10)]
    media = h.engine.media
    h.run(1.0)
    assert not media.watch.paused and media.watch.blocks > 0
    with caplog.at_level(logging.WARNING, "telcoflow.engine.media"):
        for _ in range(5):  # the loop keeps getting blocked for 70 ms
            h.run(0.02)
            h.stall(0.07)
    assert media.watch.paused
    assert "quality watch paused and catch-up by cuts until under 9 calls" in caplog.text
    assert media.shed.active
    blocks = media.watch.blocks
    h.run(10.0)  # on time again, admitting again, the same ten calls: still paused
    assert not media.admission.overloaded(h.clock.now())
    assert media.watch.paused and media.watch.blocks == blocks
    quality = h.engine.report(calls[0]).quality
    assert quality is not None and quality["unmeasuredSeconds"] >= 9.8
    assert media.watch.unmeasured_s >= 10 * 9.8
    h.engine.end_call(calls[0], CallEvent.CALLER_HANGUP)  # 9 calls: not under 90 % of 10
    h.run(0.2)
    assert media.watch.paused
    h.engine.end_call(calls[1], CallEvent.CALLER_HANGUP)  # 8: measured again
    h.run(0.5)
    assert not media.watch.paused and media.watch.blocks > blocks
    assert not media.shed.active
