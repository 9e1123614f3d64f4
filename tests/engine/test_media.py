"""The media path through the engine: uplink, playout credit, interrupt, the tick, stalls."""

from __future__ import annotations

import numpy as np

from telcoflow.audio import g711
from telcoflow.engine.ports import Channel
from telcoflow.testing.fakes import FakeAgentLink

from .harness import Harness

FRAME_16K = 640  # bytes of 20 ms PCM16 at 16 kHz


def voiced(value: int, nbytes: int = FRAME_16K) -> bytes:
    return np.full(nbytes // 2, value, "<i2").tobytes()


def test_caller_audio_reaches_the_agent_in_20ms_frames_whatever_the_chunking() -> None:
    h = Harness()
    leg, _, agent, call = h.answered_call(mode="isolated")
    audio = voiced(300, 3 * FRAME_16K)
    for chunk in (audio[:100], audio[100:1000], audio[1000:]):
        h.engine.leg_audio(leg, chunk)
    assert [len(f) for f in agent.audio[Channel.MIXED]] == [FRAME_16K] * 3
    assert b"".join(agent.audio[Channel.MIXED]) == audio
    assert agent.audio[Channel.CALLER] == agent.audio[Channel.MIXED]
    assert call.stats.uplink_frames == 3


def test_whole_frames_and_split_ones_reach_the_agent_whole_and_in_order() -> None:
    """A phone that sends a frame a message (the usual case) and one whose messages cut
    frames anywhere, a frame's length at a time too, mixed in one call: each 20 ms
    frame reaches the agent once, whole, in the order spoken."""
    h = Harness()
    leg, _, agent, call = h.answered_call()
    frames = [voiced(n) for n in range(1, 8)]
    audio = b"".join(frames)
    at = [0, 640, 740, 1380, 1920, 2560, 3200, 3840, 4480]  # 1380..: a frame long, not on one
    for a, b in zip(at, at[1:], strict=False):
        h.engine.leg_audio(leg, audio[a:b])
    assert agent.audio[Channel.MIXED] == frames
    assert call.stats.uplink_frames == 7


def test_caller_audio_while_no_agent_link_is_there_reaches_the_next_one_first() -> None:
    """The agent's link dropped: what the caller says meanwhile (up to HELD_FRAMES) goes
    to the link that takes over, before anything said after, on both channels when the
    agent asked for them."""
    h = Harness()
    leg, _, agent, call = h.answered_call(mode="isolated")
    h.engine.agent_detach(agent)
    said = [voiced(n) for n in range(1, 4)]
    for frame in said:
        h.engine.leg_audio(leg, frame)
    back = FakeAgentLink()
    h.engine.agent_attach(call.id, back)
    h.engine.leg_audio(leg, voiced(9))
    assert back.audio[Channel.MIXED] == [*said, voiced(9)]
    assert back.audio[Channel.CALLER] == back.audio[Channel.MIXED]
    assert Channel.MIXED not in agent.audio or voiced(1) not in agent.audio[Channel.MIXED]


def test_a_pcmu_caller_is_decoded_and_resampled_for_a_16k_agent() -> None:
    h = Harness()
    leg, _, agent, _ = h.answered_call(codec="pcmu", rate=8000)
    tone = (4000 * np.sin(2 * np.pi * 400 * np.arange(1600) / 8000)).astype(np.int16)
    h.engine.leg_audio(leg, g711.ulaw_encode(tone))
    heard = np.frombuffer(b"".join(agent.audio[Channel.MIXED]), "<i2")
    assert len(heard) == 3200
    spectrum = np.abs(np.fft.rfft(heard[400:].astype(float)))
    assert abs(np.argmax(spectrum) * 16000 / len(heard[400:]) - 400) < 10


def test_credit_keeps_the_target_and_agent_audio_plays_in_order_then_silence() -> None:
    h = Harness()
    leg, _, agent, call = h.answered_call()
    h.run(0.02)
    assert agent.credit == 6 * FRAME_16K  # 120 ms target
    talk = [voiced(n) for n in range(1, 7)]
    h.engine.agent_audio(agent, b"".join(talk))
    leg.audio.clear()
    h.run(0.2)
    played = [f for f in leg.audio if f is not None]
    assert played == talk  # every frame, in order, once
    assert leg.audio[-1] is None  # then silence, sent as "nothing to hear"
    assert agent.credit >= 12 * FRAME_16K  # topped up as it played


def test_a_leg_that_wants_a_lead_gets_its_talkspurts_a_frame_early() -> None:
    """Twilio queues what it is sent: a talkspurt's first tick sends it two frames, then
    one per tick, so it stays a frame ahead of a leg without a lead; nothing is lost
    or doubled, and the next talkspurt leads again."""
    talk = [voiced(100 * (k + 1)) for k in range(10)]
    runs = []
    for lead in (0, 1):
        h = Harness()
        leg, _, agent, _ = h.answered_call()
        leg.lead_frames = lead
        runs.append((h, leg, agent))
    ahead: list[int] = []
    for _talkspurt in range(2):
        for h, _, agent in runs:
            h.engine.agent_audio(agent, b"".join(talk))
        for _ in range(20):
            sent = []
            for h, leg, _ in runs:
                h.run(0.02)
                sent.append(len([f for f in leg.audio if f is not None]))
            ahead.append(sent[1] - sent[0])
        assert ahead[-1] == 0  # both have played the whole talkspurt
    assert set(ahead) == {0, 1} and ahead.count(1) >= 2 * 8
    for _, leg, _ in runs:
        assert [f for f in leg.audio if f is not None] == talk + talk


def test_the_agent_is_told_what_the_caller_heard() -> None:
    """At a talkspurt's end and on an interrupt: the agent audio handed to the caller's
    leg, less what its far end still held (and so dropped) when interrupted."""
    h = Harness()
    leg, _, agent, _ = h.answered_call()
    h.engine.agent_audio(agent, voiced(1000) * 5)  # 100 ms, then silence
    h.run(0.3)
    positions = [e for e in agent.events if e[0] == "position"]
    assert positions == [("position", 5 * FRAME_16K, 100, "talkspurt_end")]
    assert h.command(agent, "playout.position")[2] == {"playedBytes": 5 * FRAME_16K,
                                                       "playedMs": 100}
    h.engine.agent_audio(agent, voiced(2000) * 50)  # a second more
    h.run(0.2)
    heard = len([f for f in leg.audio if f is not None])
    leg.held_frames = 2  # a carrier's queue (Twilio): sent, not yet played
    answer = h.command(agent, "agent.interrupt")  # the far end drops them too
    expected_ms = (heard - 2) * 20
    assert answer[2]["playedMs"] == expected_ms
    assert answer[2]["playedBytes"] == (heard - 2) * FRAME_16K
    assert agent.events[-2] == ("position", (heard - 2) * FRAME_16K, expected_ms, "interrupt")
    h.run(0.1)
    assert h.command(agent, "playout.position")[2]["playedMs"] == expected_ms


def test_interrupt_silences_the_caller_on_the_next_tick() -> None:
    h = Harness()
    leg, _, agent, call = h.answered_call()
    h.engine.agent_audio(agent, voiced(1000) * 50)  # a second of speech
    h.run(0.2)
    assert any(f is not None for f in leg.audio)
    assert ("clear",) not in leg.events
    answer = h.command(agent, "agent.interrupt")
    assert answer[0] == "done" and answer[2]["droppedBytes"] > 30 * FRAME_16K
    assert leg.events[-1] == ("clear",)  # a carrier that buffers drops its queue too
    leg.audio.clear()
    h.run(0.1)
    assert leg.audio and all(f is None for f in leg.audio)
    assert call.stats.interrupted_at_frame > 0


def test_a_resampled_leg_hears_the_talkspurt_tail_then_nothing() -> None:
    h = Harness()
    leg, _, agent, _ = h.answered_call(codec="pcmu", rate=8000)
    h.engine.agent_audio(agent, voiced(2000) * 3)
    h.run(0.2)
    sent = [f for f in leg.audio if f is not None]
    assert len(sent) == 4 and all(len(f) == 160 for f in sent)  # 3 frames + the filter's tail
    assert leg.audio[-1] is None


def test_every_call_ticks_once_per_20ms_spread_over_the_phases() -> None:
    h = Harness()
    calls = [h.answered_call() for _ in range(8)]
    h.run(1.0)
    assert {leg.frames for leg, *_ in calls} == {50}


def test_a_short_stall_is_caught_up_a_long_one_is_not_burst() -> None:
    h = Harness()
    leg, _, agent, _ = h.answered_call()
    h.run(0.1)
    before = leg.frames
    h.stall(0.065)  # the loop was blocked: the missed ticks all run now
    assert leg.frames - before == 3
    h.run(0.1)
    before = leg.frames
    h.stall(2.0)    # far too late to be worth catching up
    assert leg.frames - before <= 1
    h.run(1.0)
    assert 49 <= leg.frames - before <= 51  # and back to real time


def test_the_clock_runs_only_while_a_call_has_media() -> None:
    h = Harness()
    assert h.engine.next_deadline() is None
    wakes = h.wakes
    leg, _, agent, _ = h.answered_call()
    assert h.wakes > wakes  # the I/O layer was told to re-arm its timer
    h.engine.leg_hung_up(leg)
    assert h.engine.next_deadline() is None


def test_a_late_agent_frame_resumes_the_talkspurt_seamlessly() -> None:
    # 24 kHz agent, 16 kHz phone: the resampler holds a tail of each frame
    from telcoflow.engine.legs import Downlink

    t = np.arange(480 * 8) / 24_000
    agent = (8000 * np.sin(2 * np.pi * (300 + 1500 * t) * t)).astype("<i2")
    frames = [agent[i * 480:(i + 1) * 480].tobytes() for i in range(8)]

    def heard(ticks: list[bytes | None]) -> np.ndarray:
        down = Downlink("pcm16", 16_000, 24_000)
        out = [down.process(f) for f in ticks]
        return np.concatenate([np.frombuffer(o, "<i2") for o in out if o is not None])

    steady = heard(frames)
    late = heard([*frames[:3], None, *frames[3:]])  # the agent missed one tick
    # the missed tick is silence the leg does not send; around it the audio is exact
    assert np.array_equal(late, steady)
    ended = heard([*frames, None, None, None])  # a talkspurt's end: the tail comes out
    assert len(ended) == len(steady) + 320 and np.abs(ended[len(steady):]).max() > 0
