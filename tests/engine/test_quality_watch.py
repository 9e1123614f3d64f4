"""Live per-leg quality through the engine: audio fed into a call on the hand-moved
clock is measured per leg; alerts at the seed's thresholds reach the agent's link,
the observer and the call's report, on clipped or noisy audio and never on clean."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pytest

from telcoflow.engine import Engine
from telcoflow.engine.ports import NoObserver, QualityEvent
from telcoflow.engine.quality_watch import MAX_AHEAD, CallWatch
from telcoflow.testing.fakes import FakeAgentLink, FakeLeg

from .harness import Harness

RATE = 16000
FRAME = RATE // 50


class Alerts(NoObserver):
    """An observer that keeps the quality alerts it is told of."""

    def __init__(self) -> None:
        self.raised: list[tuple[str, str]] = []
        self.reports: list[object] = []

    def quality_alert(self, leg: str, kind: str) -> None:
        self.raised.append((leg, kind))

    def call_ended(self, report: object) -> None:
        self.reports.append(report)


def observed() -> tuple[Harness, Alerts]:
    h, alerts = Harness(), Alerts()
    h.engine = Engine(h.settings, h.clock, alerts)
    h.engine.set_waker(lambda: None)
    h.engine.add_dialler(h.dialler)
    return h, alerts


def tone(seconds: float, amplitude: float, hz: float = 440.0) -> npt.NDArray[np.float64]:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.asarray(amplitude * np.sin(2 * np.pi * hz * t))


def pcm(x: npt.NDArray[np.float64]) -> bytes:
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


def clipped(seconds: float, rail: str) -> bytes:
    """A 1 kHz tone overdriven into one rail only: +32767, or -32767 (float audio scaled
    by 32767); the other half-wave stays clean."""
    s = tone(seconds, 1.0, 1000.0)
    if rail == "positive":
        return pcm(np.where(s > 0, np.minimum(45000 * s, 32767), 20000 * s))
    return pcm(np.where(s < 0, np.maximum(45000 * s, -32767), 20000 * s))


def talk(h: Harness, leg: FakeLeg, agent: FakeAgentLink, caller: bytes,
         agent_audio: bytes | None = None) -> None:
    """Both parties talk for the length of ``caller``, a 20 ms frame per tick: the phone
    leg delivers its frame, the agent sends within its credit, the clock moves on."""
    fb = FRAME * 2
    for i in range(0, len(caller), fb):
        h.engine.leg_audio(leg, caller[i:i + fb])
        if agent_audio is not None and agent.credit >= fb:
            h.engine.agent_audio(agent, agent_audio[i:i + fb])
            agent.credit -= fb
        h.run(0.02)


def quality_events(agent: FakeAgentLink) -> list[QualityEvent]:
    return [e[1] for e in agent.events if e[0] == "quality"]


def test_clean_audio_on_both_legs_raises_nothing() -> None:
    h, alerts = observed()
    leg, _, agent, call = h.answered_call()
    talk(h, leg, agent, pcm(tone(3.0, 8000)), pcm(tone(3.0, 6000, 300.0)))
    quality = h.engine.report(call).quality
    h.engine.leg_hung_up(leg)

    assert quality is not None
    # 8000 and 6000 peak: -15.2 and -17.7 dBFS rms (full scale: a full-scale square)
    for name, level in (("caller", -15.2), ("agent", -17.7)):
        q = quality[name]
        assert q["alerts"] == [] and q["clippingPct"] == 0.0
        assert q["score"] > 90 and q["snrDb"] > 40, (name, q)
        assert q["levelDbfs"] == pytest.approx(level, abs=0.3)
        assert len(q["timeline"]) >= 2  # a point a second
    assert quality_events(agent) == [] and alerts.raised == []
    assert alerts.reports and alerts.reports[0].quality["caller"]["averageScore"] > 90


@pytest.mark.parametrize("rail", ["positive", "negative"])
def test_clipping_at_either_rail_is_raised_once_then_cleared(
        rail: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="telcoflow")
    h, alerts = observed()
    leg, _, agent, call = h.answered_call()
    talk(h, leg, agent, clipped(1.0, rail))
    raised = [e for e in quality_events(agent) if e.state == "raised"]
    talk(h, leg, agent, pcm(tone(1.6, 8000)))  # clean again: the alert clears
    report = h.engine.report(call).quality
    h.engine.leg_hung_up(leg)

    assert report is not None
    clipping = [e for e in raised if e.kind == "clipping"]
    assert len(clipping) == 1 and clipping[0].leg == "caller"  # one edge, not one per block
    assert clipping[0].value > 0.1 and clipping[0].threshold == 0.1  # the seed's threshold
    assert ("caller", "clipping") in alerts.raised
    cleared = [e for e in quality_events(agent) if e.state == "cleared"]
    assert "clipping" in {e.kind for e in cleared}
    caller = report["caller"]
    assert caller["alertCounts"]["clipping"] == 1 and "clipping" not in caller["activeAlerts"]
    # ~19 % of the first second's samples sit on the rail; over the whole call, ~7 %
    assert 5.0 < caller["clippingPct"] < 10.0
    assert report["agent"]["alerts"] == []
    # one log line per edge, from the watch, naming the call and the leg
    lines = [r.getMessage() for r in caplog.records if "clipping" in r.getMessage()]
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"call {call.id}: caller leg quality clipping raised (")
    assert lines[1].startswith(f"call {call.id}: caller leg quality clipping cleared (")


def test_both_rails_count_the_same_clipping() -> None:
    pcts = []
    for rail in ("positive", "negative"):
        h = Harness()
        leg, _, agent, call = h.answered_call()
        talk(h, leg, agent, clipped(1.0, rail))
        quality = h.engine.report(call).quality
        assert quality is not None
        pcts.append(quality["caller"]["clippingPct"])
    assert pcts[0] == pytest.approx(pcts[1], rel=0.02)


def test_noisy_caller_and_clipped_agent_are_told_apart() -> None:
    h, alerts = observed()
    leg, _, agent, call = h.answered_call()
    rng = np.random.default_rng(7)
    noisy = tone(2.0, 6000) + rng.normal(0, 2500, 2 * RATE)  # ~4 dB SNR
    talk(h, leg, agent, pcm(noisy), clipped(2.0, "negative"))
    kinds = {(e.leg, e.kind) for e in quality_events(agent) if e.state == "raised"}
    h.engine.leg_hung_up(leg)

    assert ("caller", "low_snr") in kinds and ("agent", "clipping") in kinds
    assert ("caller", "clipping") not in kinds and ("agent", "low_snr") not in kinds
    assert set(alerts.raised) == kinds
    final = alerts.reports[0].quality
    assert final["caller"]["snrDb"] < 20 and final["agent"]["clippingPct"] > 5


def test_talk_ratio_and_double_talk_follow_who_speaks() -> None:
    h = Harness()
    leg, _, agent, call = h.answered_call()
    rng = np.random.default_rng(3)
    speech = rng.normal(0, 4000, RATE)  # 1 s of loud noise: speech to a VAD
    quiet = np.zeros(RATE)
    # caller: talk, pause, talk; agent: pause, talk, talk -> double-talk in the last second
    talk(h, leg, agent, pcm(np.concatenate([speech, quiet, speech])),
         pcm(np.concatenate([quiet, speech, speech])))
    quality = h.engine.report(call).quality
    assert quality is not None
    assert quality["caller"]["talkRatio"] == pytest.approx(2 / 3, abs=0.08)
    assert 0.2 < quality["agent"]["talkRatio"] < 0.7  # its audio plays from the second tick
    assert 0.1 < quality["doubleTalkRatio"] < 0.4


def test_the_watchs_cpu_is_summed_over_calls_when_the_owner_gives_a_cpu_clock() -> None:
    h = Harness()
    spent = iter(range(1000))  # a CPU clock moving 1 s per reading: each block costs 1 s
    h.engine.watch_cost.cpu_clock = lambda: float(next(spent))
    for _ in range(2):
        leg, _, _, _ = h.answered_call()
        h.engine.leg_audio(leg, pcm(tone(0.02, 3000.0)))
    h.run(1.0)  # 50 ticks: each call's first block (10-19 ticks) and then 200 ms blocks
    assert 2 * 4 <= h.engine.watch_cost.blocks <= 2 * 5
    assert h.engine.watch_cost.seconds == h.engine.watch_cost.blocks  # 1 s a block
    h.engine.watch_cost.cpu_clock = None  # no clock given (the engine's default): not timed
    h.run(0.2)
    assert h.engine.watch_cost.seconds < h.engine.watch_cost.blocks


def test_quality_watching_switched_off_costs_nothing_and_reports_none() -> None:
    h = Harness()
    h.settings.quality_watch = False
    leg, _, agent, call = h.answered_call()
    talk(h, leg, agent, clipped(0.5, "positive"))
    assert call.watch is None and h.engine.report(call).quality is None
    assert quality_events(agent) == []


class Tape:
    """A recording the engine writes to (the Recorder port's CallRecording)."""

    def __init__(self) -> None:
        self.caller, self.agent = bytearray(), bytearray()
        self.blocks: list[tuple[int, int]] = []
        self.closed = False

    def write(self, caller: bytes, agent: bytes) -> None:
        self.blocks.append((len(caller), len(agent)))
        self.caller += caller
        self.agent += agent

    def close(self) -> None:
        self.closed = True


class Recorder:
    def __init__(self) -> None:
        self.tapes: dict[str, Tape] = {}

    def open(self, call_id: str, connector_uuid: str, rate: int) -> Tape:
        assert rate == RATE
        tape = self.tapes[call_id] = Tape()
        return tape


def test_the_recording_feed_keeps_the_media_clock_and_holds_as_silence() -> None:
    h = Harness()
    h.engine.recorder = recorder = Recorder()
    leg, _, agent, call = h.answered_call()
    talk(h, leg, agent, pcm(tone(0.4, 8000)), pcm(tone(0.4, 6000, 300.0)))
    h.engine.agent_detach(agent)  # the agent's link drops: the caller hears the hold sound
    held_from = len(leg.audio)
    h.run(0.6)  # and the caller says nothing: a gap on both legs
    h.engine.leg_hung_up(leg)

    tape = recorder.tapes[call.id]
    assert tape.closed and call.watch is not None
    assert all(c == a for c, a in tape.blocks)  # both legs, block for block
    assert len(tape.caller) == call.watch.ticks * FRAME * 2  # a frame per tick, no more
    assert call.watch.ticks == pytest.approx(50, abs=1)  # 1 s of media
    caller = np.frombuffer(bytes(tape.caller), "<i2")
    recorded_agent = np.frombuffer(bytes(tape.agent), "<i2")
    # the agent's queued audio plays out first (120 ms); the last 0.4 s is the hold tone to
    # the caller, and silence on both tracks of the tape
    last = 20
    assert len(leg.audio) - held_from > last
    assert any(f is not None and any(f) for f in leg.audio[-last:])  # (a cadenced tone)
    assert not recorded_agent[-last * FRAME:].any() and not caller[-last * FRAME:].any()
    assert caller[:int(0.3 * RATE)].any() and recorded_agent[:int(0.3 * RATE)].any()


def test_a_long_calls_timeline_stays_bounded_and_small() -> None:
    """Two hours of a leg: the timeline keeps at most TIMELINE_POINTS points, in time
    order, the step doubling; stored as numbers, not a dict per point (200 calls an hour
    long kept ~80 MB of those)."""
    from telcoflow.engine.quality_watch import BLOCK_TICKS, TIMELINE_POINTS, LegMeter

    leg = LegMeter("caller", 8000, "webrtc")
    block = bytes(2 * 8000 * BLOCK_TICKS // 50)  # 200 ms of digital silence
    for n in range(2 * 3600 * 50 // BLOCK_TICKS):
        leg.measure(block, True, n * BLOCK_TICKS / 50)
    timeline = leg.timeline
    assert TIMELINE_POINTS // 2 <= len(timeline) < TIMELINE_POINTS
    times = [p["t"] for p in timeline]
    assert times == sorted(set(times)) and times[-1] >= 7000
    assert timeline[-1] == {"t": times[-1], "levelDbfs": -120.0, "snrDb": None, "score": None}
    stored = sum(column.itemsize * len(column) for column in leg._points)
    assert stored == 16 * len(timeline), stored  # 4 bytes a number


def test_a_leg_running_ahead_of_the_clock_loses_its_oldest_frames_counted() -> None:
    watch = CallWatch("c1", 16_000, NoObserver(), lambda: None)
    frames = [bytes([k]) * 640 for k in range(MAX_AHEAD + 3)]
    for frame in frames:
        watch.caller_frame(frame)
    assert watch.dropped == 3
    assert list(watch._caller_in) == frames[3:]  # the newest MAX_AHEAD, in order
    watch.agent_frame(None)  # the agent's silence is not queued
    assert not watch._agent_in and watch.dropped == 3


def test_calls_answered_together_measure_and_analyse_in_different_ticks() -> None:
    """Forty calls answered in the same tick: their 200 ms blocks and their legs' 2 s
    spectral analyses spread over the ticks instead of all landing on one (at 400 legs
    that one tick ran ~150 ms late every 2 s)."""
    import uuid

    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(FRAME) / RATE)).astype("<i2").tobytes()
    watches = [CallWatch(str(uuid.UUID(int=k * 7919 + 1)), RATE, NoObserver(), lambda: None)
               for k in range(40)]

    def state(w: CallWatch) -> tuple[object, ...]:
        return (w.caller.monitor.last_metrics, w.caller.monitor._analysis,
                w.agent.monitor._analysis)

    blocks_per_tick, analyses_per_tick = [], []
    for _ in range(300):  # 6 s
        blocks = analyses = 0
        for w in watches:
            before = state(w)
            w.caller_frame(tone)
            w.tick(tone)
            after = state(w)
            blocks += after[0] is not before[0]
            analyses += (after[1] is not before[1]) + (after[2] is not before[2])
        blocks_per_tick.append(blocks)
        analyses_per_tick.append(analyses)
    assert sum(blocks_per_tick) >= 40 * 29       # a block every 200 ms per call
    assert sum(analyses_per_tick) >= 80 * 3      # and an analysis every 2 s per leg
    assert max(blocks_per_tick) <= 10            # of 40 calls (all 40 when unstaggered)
    assert max(analyses_per_tick[20:]) <= 4      # of 80 legs (all 80 unstaggered, 6 with
    # the blocks staggered but not the analyses: the 4 calls per block phase, both legs)


def test_a_long_first_block_of_digital_silence_is_not_measured() -> None:
    """Whatever a call's first block's length (10-19 ticks, from its id), digital silence
    in it skips the monitor: measured, its all-zero spectrum would stand as the leg's
    analysis for 2 s and the speech after it would read as SNR 0 (false low_snr)."""
    import uuid
    import zlib

    t = np.arange(int(0.2 * RATE)) / RATE
    speech = np.concatenate([np.zeros(int(0.3 * RATE), np.int16),
                             (12000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)]).tobytes()
    lengths: set[int] = set()
    n = 0
    while len(lengths) < 10:
        call_id = str(uuid.UUID(int=n * 7919 + 3))
        n += 1
        extra = zlib.crc32(call_id.encode()) % 10
        if extra in lengths:
            continue
        lengths.add(extra)
        watch = CallWatch(call_id, RATE, NoObserver(), lambda: None)
        for i in range(0, len(speech), 2 * FRAME):
            watch.caller_frame(speech[i:i + 2 * FRAME])
            watch.tick(None)
        for _ in range(25):
            watch.tick(None)
        watch.close()
        assert watch.caller.alerts == [], (extra, watch.caller.alerts)


def test_an_agents_turns_between_digital_silence_read_as_clean_not_as_low_snr() -> None:
    """A TTS agent speaks in turns with digital silence between them; the watch skips
    the silent blocks, so the monitor never sees a pause's frames. Told of them, it
    reads the turns as speech against no noise (clean), not as loud vowels against soft
    consonants (the false low_snr the demo's agent leg raised)."""
    from telcoflow.audio import synth

    turn = synth.tts("Thanks for calling. Your order ships tomorrow morning.", RATE).tobytes()
    watch = CallWatch("call-1", RATE, NoObserver(), lambda: None)
    fb = FRAME * 2
    audio = [turn[i:i + fb] for i in range(0, len(turn) - fb + 1, fb)]
    for frame in [*audio, *[None] * 50, *audio, *[None] * 50, *audio]:
        watch.tick(frame)
    agent = watch.summary()["agent"]
    assert agent["alertCounts"] == {}
    assert agent["snrDb"] is not None and agent["snrDb"] > 60
