"""Playout catch-up: after a stall the agent's audio reaches the caller late; the delay
is bounded (quiet frames skipped, speech time-compressed, the rest cut) and counted."""

from __future__ import annotations

import numpy as np
import pytest

from telcoflow.engine.playout import PlayoutBuffer

from .harness import Harness

RATE = 16_000
FB = 640            # 20 ms at 16 kHz
BYTES_PER_MS = 32
BOUND_MS = 200      # PlayoutBuffer's max_lag_ms


def tone(frames: int, start: int = 0, hz: float = 300.0, amp: float = 8000.0) -> bytes:
    n = np.arange(start * FB // 2, (start + frames) * FB // 2)
    return (amp * np.sin(2 * np.pi * hz * n / RATE)).astype("<i2").tobytes()


class EchoSdk:
    """An agent that sends one 20 ms frame per 20 ms and hands the gateway only what its
    credit allows, as the SDK does; the rest waits on its side (the backlog a stall makes)."""

    def __init__(self) -> None:
        self.sent = 0          # frames the agent called send_audio with
        self.backlog = bytearray()

    def speak(self, frames: int = 1) -> None:
        self.backlog += tone(frames, self.sent)
        self.sent += frames

    def deliver(self, h: Harness, agent, credit_used: list[int]) -> None:
        give = min(agent.credit - credit_used[0], len(self.backlog))
        if give > 0:
            h.engine.agent_audio(agent, bytes(self.backlog[:give]))
            del self.backlog[:give]
            credit_used[0] += give


def run_echo(h: Harness, sdk: EchoSdk, agent, used: list[int], seconds: float,
             delays: list[float], call) -> None:
    """Real time: the agent speaks a frame per 20 ms; after each step, the delay of the
    audio now at the playout head (sent at 20 ms per frame from t0)."""
    for _ in range(round(seconds / 0.02)):
        sdk.speak()
        sdk.deliver(h, agent, used)
        h.run(0.02)
        sdk.deliver(h, agent, used)
        consumed_ms = call.playout.stats.bytes_played / BYTES_PER_MS
        delays.append(sdk.sent * 20 - consumed_ms)  # ms of the agent's audio not yet heard


def test_a_stall_is_caught_up_within_the_bound_and_counted() -> None:
    h = Harness()
    leg, _, agent, call = h.answered_call()
    sdk, used, delays = EchoSdk(), [0], []
    run_echo(h, sdk, agent, used, 1.0, delays, call)
    steady = max(delays[-10:])
    assert steady <= 140  # prebuffer and credit: well under the 120 ms target + a tick
    # the gateway's loop is blocked for 500 ms; the agent goes on speaking meanwhile
    sdk.speak(25)
    sdk.deliver(h, agent, used)
    h.stall(0.5)
    after: list[float] = []
    run_echo(h, sdk, agent, used, 2.0, after, call)
    stats = call.playout.stats
    target_ms = call.playout.target_bytes / BYTES_PER_MS
    assert max(after) <= target_ms + BOUND_MS + 40   # never past the bound (+ two ticks)
    assert max(after[-10:]) <= target_ms + 20       # caught up: at most the target again
    taken = stats.bytes_compressed + stats.bytes_dropped_quiet + stats.bytes_dropped_late
    assert stats.bytes_compressed >= 150 * BYTES_PER_MS  # speech compressed, not all cut
    assert stats.bytes_compressed % FB == 0  # in whole frames: later ones keep their framing
    assert abs(taken / BYTES_PER_MS - 500) <= 40          # what the stall added, and no more
    report = h.engine.report(call)
    assert report.compressed_s == stats.bytes_compressed / (RATE * 2)
    assert report.cut_late_s > 0


def test_quiet_frames_go_first_and_speech_keeps_its_pitch() -> None:
    buf = PlayoutBuffer(FB, target_ms=400, prebuffer_ms=20)
    quiet = bytes(FB)
    buf.push(tone(5) + quiet * 3 + tone(20, 5))
    buf.owe(5 * FB)
    heard = b"".join(buf.tick() or b"" for _ in range(30))
    assert buf.stats.bytes_dropped_quiet == 3 * FB  # the pause went first, whole
    assert len(heard) == (28 - 5) * FB
    speech = np.frombuffer(heard, "<i2").astype(float)  # the pause went, the tone is whole
    spectrum = np.abs(np.fft.rfft(speech * np.hanning(len(speech))))
    peak_hz = np.fft.rfftfreq(len(speech), 1 / RATE)[int(np.argmax(spectrum))]
    assert abs(peak_hz - 300) < 5  # a tone compressed is the same tone, shorter
    # no click: no step between samples bigger than the tone's own steepest
    steepest = 8000 * 2 * np.pi * 300 / RATE
    assert np.abs(np.diff(speech)).max() <= steepest * 1.1
    assert buf.stats.bytes_compressed == 2 * FB     # then speech, by exactly the rest
    assert buf.lag == 0


def test_a_hiccup_is_paid_by_quiet_frames_never_by_altering_speech() -> None:
    """A lag under ``compress_from_ms`` (a jitter hiccup: a frame or two) leaves speech as
    the agent sent it, frame for frame; from it on, speech is compressed."""
    buf = PlayoutBuffer(FB, prebuffer_ms=20)
    sent = tone(30)
    buf.push(sent)
    buf.owe(2 * FB)  # 40 ms behind, and nothing quiet queued to skip
    heard = b"".join(buf.tick() or b"" for _ in range(30))
    assert heard == sent and buf.stats.bytes_compressed == 0
    behind = PlayoutBuffer(FB, prebuffer_ms=20)
    behind.push(tone(30))
    behind.owe(5 * FB)  # 100 ms behind: a delay a listener hears grow
    for _ in range(30):
        behind.tick()
    assert behind.stats.bytes_compressed == 5 * FB and behind.lag == 0


def test_interrupt_forgets_the_lag() -> None:
    buf = PlayoutBuffer(FB, prebuffer_ms=20)
    buf.push(tone(6))
    buf.owe(3 * FB)
    buf.tick()
    buf.interrupt()
    assert buf.lag == 0
    buf.push(tone(3))
    assert [len(buf.tick() or b"") for _ in range(3)] == [FB] * 3
    assert buf.stats.bytes_compressed + buf.stats.bytes_dropped_quiet < 3 * FB


def test_compression_keeps_the_agents_framing_while_audio_trickles_in() -> None:
    buf = PlayoutBuffer(FB, prebuffer_ms=20, compress_from_ms=0)
    buf.push(tone(6))    # three frames of it are the backlog a stall left
    buf.owe(3 * FB)
    sent = 6
    for _ in range(40):  # and from now on the agent keeps up exactly: a frame per tick
        buf.push(tone(1, sent))
        sent += 1
        buf.tick()
    assert buf.lag == 0 and buf.stats.bytes_compressed == 3 * FB
    assert buf.queued % FB == 0  # the frames still start where the agent's did


def test_a_late_agent_is_owed_its_gap_a_pause_is_not() -> None:
    buf = PlayoutBuffer(FB, prebuffer_ms=20, compress_from_ms=0)
    buf.push(tone(5))
    played = [buf.tick() for _ in range(5 + 3)]   # five frames, then three silent ticks
    assert played[-3:] == [None, None, None]
    buf.push(tone(20, 5))                         # the rest of the talkspurt, late
    buf.tick()
    assert buf.lag + buf.stats.bytes_compressed + buf.stats.bytes_dropped_quiet >= 3 * FB
    for _ in range(30):
        buf.tick()
    assert buf.lag == 0 and buf.stats.bytes_compressed == 3 * FB
    pause = PlayoutBuffer(FB, prebuffer_ms=20)
    pause.push(tone(5))
    for _ in range(5 + 12):                       # a 240 ms pause: the talkspurt was over
        pause.tick()
    pause.push(tone(20, 5))
    for _ in range(30):
        pause.tick()
    assert pause.lag == 0 and pause.stats.bytes_compressed == 0


def test_compression_that_runs_dry_stops_on_the_agents_framing() -> None:
    buf = PlayoutBuffer(FB, prebuffer_ms=20, compress_from_ms=0)
    buf.push(tone(6))
    buf.owe(4 * FB)                               # saving 80 ms takes 240 ms: six is short
    for _ in range(5):                            # compressing uses the six frames up
        buf.tick()
    assert buf.lag == 0                           # nothing waits: nothing is late any more
    sent = 6
    for _ in range(40):
        buf.push(tone(1, sent))
        sent += 1
        buf.tick()
    assert buf.lag == 0 and buf.stats.bytes_compressed > 0
    assert buf.queued % FB == 0  # the frames still start where the agent's did


def test_a_lag_outlives_a_dry_queue_while_the_agent_owes_audio() -> None:
    """Run dry with credit outstanding, the rest of the backlog may be waiting in the
    agent's SDK for that credit: the lag is still owed, and the credit asked for covers
    it (target + lag), so the backlog comes into the queue where it can be compressed."""
    buf = PlayoutBuffer(FB, target_ms=120, prebuffer_ms=20, compress_from_ms=0)
    credit = buf.credit_to_request()
    assert credit == 6 * FB
    buf.push(tone(6))
    credit -= 6 * FB
    buf.owe(4 * FB)
    credit += buf.credit_to_request()
    assert credit == 4 * FB                       # the target again, and the lag
    for _ in range(5):
        buf.tick()
    assert buf.lag > 0 and buf.outstanding > 0    # dry, but audio is on its way: owed
    sdk = tone(40, 6)                             # what the agent's SDK held for credit
    for _ in range(40):
        credit += buf.credit_to_request()
        give = min(len(sdk), credit)
        buf.push(sdk[:give])
        sdk, credit = sdk[give:], credit - give
        buf.tick()
    assert buf.lag == 0 and buf.stats.bytes_compressed >= 4 * FB  # paid (and the dry ticks)


def test_after_any_catch_up_the_frames_start_where_the_agents_did() -> None:
    """An agent that stalls now and then (its frames come in bursts) and a gateway that
    skips ticks now and then: whatever the catch-up did, every frame played outside a
    compression is one of the agent's frames, whole."""
    import random

    rng = random.Random(3)
    buf = PlayoutBuffer(FB, target_ms=120, prebuffer_ms=40, compress_from_ms=0)
    waiting: list[bytes] = []
    credit = stall = whole = mixed = 0
    for n in range(4000):
        waiting.append(np.full(FB // 2, 1000 + n % 7000, "<i2").tobytes())
        stall = stall - 1 if stall else (rng.randint(1, 8) if rng.random() < 0.01 else 0)
        if not stall:
            credit += buf.credit_to_request()
            while waiting and credit >= FB:
                buf.push(waiting.pop(0))
                credit -= FB
        if rng.random() < 0.004:
            buf.owe(rng.randint(1, 30) * FB)
        frame = buf.tick()
        if frame is not None:
            if len(set(np.frombuffer(frame, "<i2"))) == 1:
                whole += 1
            else:  # compressed, or a compression's seam: or two frames' halves, the bug
                mixed += 1
    stats = buf.stats
    assert stats.bytes_compressed > 30 * FB and stats.bytes_dropped_late > 0
    assert mixed <= 3 * stats.bytes_compressed / FB  # its output and seams, no more
    assert whole > 3000


def test_no_catch_up_plays_every_frame_however_late() -> None:
    """``max_lag_ms`` 0 (``[server] playout_max_lag_ms = 0``): a caller left behind by a
    stall or a late agent hears every frame the agent sent, in order, none altered."""
    buf = PlayoutBuffer(FB, prebuffer_ms=20, max_lag_ms=0)
    sent = tone(5) + bytes(FB) * 3 + tone(20, 5)
    buf.push(sent[:5 * FB])
    heard = b"".join(buf.tick() or b"" for _ in range(5 + 3))  # then it ran dry
    buf.push(sent[5 * FB:])  # the rest, late, with its quiet frames
    buf.owe(30 * FB)  # and the media clock skipped 600 ms
    heard += b"".join(buf.tick() or b"" for _ in range(40))
    stats = buf.stats
    assert heard.replace(bytes(FB), b"") == sent.replace(bytes(FB), b"")
    assert stats.bytes_compressed == stats.bytes_dropped_quiet == stats.bytes_dropped_late == 0
    assert buf.lag == 0


def test_the_engine_gives_each_call_its_settings_bound() -> None:
    h = Harness()
    h.settings.playout_max_lag_ms = 0
    *_, call = h.answered_call()
    assert call.playout is not None and call.playout.max_lag_bytes == 0
    h2 = Harness()
    *_, call2 = h2.answered_call()
    assert call2.playout is not None
    assert call2.playout.max_lag_bytes == 10 * call2.playout.frame_bytes  # 200 ms
    assert call2.playout.compress_from_bytes == 5 * call2.playout.frame_bytes  # 100 ms


class SlowCreditSdk(EchoSdk):
    """An echo SDK that sees each credit ``rtt_ticks`` ticks after it was granted."""

    def __init__(self, h: Harness, agent, call, rtt_ticks: int) -> None:
        super().__init__()
        self.h, self.agent, self.call, self.rtt = h, agent, call, rtt_ticks
        self.granted: list[int] = []
        self.given = 0

    def step(self, seconds: float) -> list[float]:
        """Real time: a frame spoken per 20 ms; the delay of the audio at the playout head."""
        delays = []
        for _ in range(round(seconds / 0.02)):
            self.speak()
            self.granted.append(self.agent.credit)
            seen = self.granted[-1 - self.rtt] if len(self.granted) > self.rtt else 0
            give = min(seen - self.given, len(self.backlog))
            if give > 0:
                self.h.engine.agent_audio(self.agent, bytes(self.backlog[:give]))
                del self.backlog[:give]
                self.given += give
            self.h.run(0.02)
            delays.append(self.sent * 20 - self.call.playout.stats.bytes_played / BYTES_PER_MS)
        return delays


@pytest.mark.parametrize("rtt_ticks", [2, 4])
def test_an_agent_slow_to_answer_credit_is_caught_up_after_a_stall(rtt_ticks: int) -> None:
    """The agent's SDK sees each credit 40-80 ms after it was sent (a busy agent process):
    the delay stays near the target, and after a 150 ms stall it comes back to it (before:
    the stall's delay stayed in the SDK for the rest of the call, and at 80 ms the delay
    grew without bound, the credit window being too small for the round trip)."""
    h = Harness()
    leg, _, agent, call = h.answered_call()
    sdk = SlowCreditSdk(h, agent, call, rtt_ticks)
    before = sdk.step(1.0)
    target_ms = call.playout.target_bytes / BYTES_PER_MS
    assert max(before[-10:]) <= target_ms
    h.stall(0.15)
    sdk.speak(7)  # what the agent said meanwhile
    after = sdk.step(4.0)
    assert max(after) <= target_ms + BOUND_MS + 40
    assert max(after[-10:]) <= max(before[-10:]) + 20  # back where it was
    assert call.playout.stats.bytes_compressed >= 100 * BYTES_PER_MS  # paid by speech


def test_while_behind_each_tick_looks_only_at_new_frames_for_quiet_ones(monkeypatch) -> None:
    """Behind with a queue of speech (nothing quiet to skip, too little to compress), each
    tick looks at the frames that came since the last one, not the whole queue again; a
    quiet frame that comes later is still found and skipped."""
    import telcoflow.engine.playout as playout

    looked = [0]
    frombuffer = np.frombuffer

    def counting(buffer, dtype=float, count=-1, offset=0):  # type: ignore[no-untyped-def]
        looked[0] += count
        return frombuffer(buffer, dtype=dtype, count=count, offset=offset)

    monkeypatch.setattr(playout.np, "frombuffer", counting)
    buf = PlayoutBuffer(FB, target_ms=400, prebuffer_ms=20, compress_from_ms=200)
    buf.push(tone(16))
    buf.owe(4 * FB)  # 80 ms behind: under compress_from, so only quiet frames may pay it
    for n in range(50):
        buf.push(tone(1, 16 + n))
        buf.tick()
    assert buf.lag == 4 * FB
    assert looked[0] <= (16 + 50 * 2) * FB // 2  # the whole queue each tick: 16 x 50 frames
    buf.push(bytes(FB) * 2 + tone(1, 66))  # a pause of two frames
    buf.tick()
    assert buf.stats.bytes_dropped_quiet == 2 * FB and buf.lag == 2 * FB


def test_while_the_process_is_overloaded_speech_behind_is_cut_not_compressed() -> None:
    """WSOLA's search costs ~1 ms per frame compressed: with hundreds of calls behind at
    once it was half the gateway's CPU and kept the tick late. While the media plane
    sheds load, a call behind drops its oldest whole frames instead, up to the lag, and
    plays on at once on the agent's framing."""
    from telcoflow.engine.overload import LoadShed

    shed = LoadShed(active=True)
    buf = PlayoutBuffer(FB, target_ms=400, prebuffer_ms=20, shed=shed)
    buf.push(tone(20))
    buf.owe(6 * FB)
    first = buf.tick()
    assert buf.stats.bytes_dropped_late == 6 * FB and buf.stats.bytes_compressed == 0
    assert buf.lag == 0 and first == tone(1, 6)  # the seventh frame, whole
    shed.active = False  # not overloaded: speech behind is time-compressed again
    buf.push(tone(20, 20))
    buf.owe(6 * FB)
    for _ in range(12):
        buf.tick()
    assert buf.stats.bytes_compressed == 6 * FB and buf.stats.bytes_dropped_late == 6 * FB
