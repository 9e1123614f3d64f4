"""agent.interrupt: the caller's next frame is silence at once, not at the call's next
tick (up to 20 ms later), and the call's frames keep their 20 ms cadence afterwards."""

from __future__ import annotations

import numpy as np

from .harness import Harness

FB = 640


def speech(frames: int) -> bytes:
    return np.full(frames * FB // 2, 3000, "<i2").tobytes()


def frame_times(h: Harness, leg, seconds: float) -> list[float]:
    """Run ``seconds`` in 1 ms steps; the time of every frame the leg is sent."""
    times = []
    for _ in range(round(seconds / 0.001)):
        before = leg.frames
        h.run(0.001)
        times += [h.clock.t] * (leg.frames - before)
    return times


def test_the_caller_hears_silence_at_once_and_the_cadence_holds() -> None:
    h = Harness()
    leg, _, agent, _ = h.answered_call()
    h.engine.agent_audio(agent, speech(50))
    before = frame_times(h, leg, 0.309)     # mid-period: the next tick is a while away
    assert before and all(f is not None for f in leg.audio[-5:])
    interrupted_at, sent = h.clock.t, leg.frames
    assert h.command(agent, "agent.interrupt")[0] == "done"
    assert leg.frames == sent + 1 and leg.audio[-1] is None  # silence now, no tick waited
    after = frame_times(h, leg, 1.0)
    assert all(f is None for f in leg.audio[-len(after):])
    assert 0.015 <= after[0] - interrupted_at <= 0.0201  # the next one ~20 ms on
    assert np.all(np.abs(np.diff(after) - 0.020) < 1e-6)  # then every 20 ms, exactly
    assert len(after) == 50


def test_right_after_a_tick_the_early_frame_stands_for_the_next_one() -> None:
    h = Harness()
    leg, _, agent, _ = h.answered_call()
    h.engine.agent_audio(agent, speech(50))
    sent = leg.frames
    while leg.frames == sent:                 # up to the call's next tick ...
        h.run(0.001)
    interrupted_at, sent = h.clock.t, leg.frames
    h.command(agent, "agent.interrupt")       # ... and interrupt within a ms of it
    assert leg.frames == sent + 1 and leg.audio[-1] is None
    after = frame_times(h, leg, 1.0)
    assert 0.020 <= after[0] - interrupted_at <= 0.0251  # its next tick is skipped
    assert np.all(np.abs(np.diff(after) - 0.020) < 1e-6)
    assert len(after) == 49  # with the early one, 50 frames in that second: none added
