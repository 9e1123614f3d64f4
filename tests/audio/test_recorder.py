from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from telcoflow.audio import synth
from telcoflow.audio.errors import RecorderStateError, UnknownEventError
from telcoflow.audio.recorder import AudioBufferProcessor
from telcoflow.audio.wav import read_wav, read_wav_channels

R = 8000


def _const(value: int, seconds: float, rate: int = R) -> bytes:
    return np.full(round(seconds * rate), value, dtype="<i2").tobytes()


def _capture(p: AudioBufferProcessor) -> dict[str, list[Any]]:
    got: dict[str, list[Any]] = {
        "audio": [],
        "tracks": [],
        "user_turns": [],
        "bot_turns": [],
    }

    @p.event_handler("on_audio_data")
    def _a(buf: AudioBufferProcessor, audio: bytes, sr: int, nc: int) -> None:
        assert buf is p
        got["audio"].append((audio, sr, nc))

    @p.event_handler("on_track_audio_data")
    def _t(buf: AudioBufferProcessor, u: bytes, b: bytes, sr: int, nc: int) -> None:
        got["tracks"].append((u, b, sr, nc))

    @p.event_handler("on_user_turn_audio_data")
    def _u(buf: AudioBufferProcessor, audio: bytes, sr: int, nc: int) -> None:
        got["user_turns"].append((audio, sr, nc))

    @p.event_handler("on_bot_turn_audio_data")
    def _b(buf: AudioBufferProcessor, audio: bytes, sr: int, nc: int) -> None:
        got["bot_turns"].append((audio, sr, nc))

    return got


def _tracks(got: dict[str, list[Any]]) -> tuple[np.ndarray, np.ndarray]:
    u = np.frombuffer(b"".join(t[0] for t in got["tracks"]), "<i2")
    b = np.frombuffer(b"".join(t[1] for t in got["tracks"]), "<i2")
    return u, b


def _feed_user(p: AudioBufferProcessor, pcm: bytes, t_start: float, chunk: int = 320) -> float:
    """Send ``pcm`` in 20 ms chunks arriving in real time from ``t_start``; returns end time."""
    t = t_start
    for i in range(0, len(pcm), chunk):
        part = pcm[i : i + chunk]
        t += len(part) / 2 / R
        p.add_user_audio(part, t)
    return t


def test_constructor_and_properties_match_seed() -> None:
    p = AudioBufferProcessor(sample_rate=16000, num_channels=2, buffer_size=3200)
    assert (p.sample_rate, p.num_channels, p.buffer_size) == (16000, 2, 3200)
    assert not p.enable_turn_audio and not p.has_audio()
    assert AudioBufferProcessor().sample_rate == 0
    with pytest.raises(RecorderStateError):
        AudioBufferProcessor(num_channels=3)
    with pytest.raises(TypeError):
        AudioBufferProcessor(sample_rate=8000, bogus=1)
    with pytest.raises(UnknownEventError):
        p.event_handler("on_audio")(lambda *a: None)


def test_gaps_are_filled_with_silence_at_their_true_place() -> None:
    p = AudioBufferProcessor(sample_rate=R, num_channels=2)
    got = _capture(p)
    p.start_recording(now=10.0)
    t = _feed_user(p, _const(1000, 1.0), 10.0)  # 10.0 .. 11.0
    t = _feed_user(p, _const(2000, 0.5), t + 0.5)  # caller silent 11.0 .. 11.5
    p.stop_recording(now=t + 0.25)  # 12.25
    u, b = _tracks(got)
    assert u.size == b.size == round(2.25 * R)  # wall-clock length of the call
    assert (u[:R] == 1000).all()
    assert (u[R : R + R // 2] == 0).all()
    assert (u[R + R // 2 : 2 * R] == 2000).all()
    assert (u[2 * R :] == 0).all()
    assert not b.any()  # no bot audio: silence all along


def test_arrival_jitter_does_not_chop_caller_audio() -> None:
    p = AudioBufferProcessor(sample_rate=R, num_channels=1)
    got = _capture(p)
    p.start_recording(now=0.0)
    pcm = np.arange(R * 2, dtype=np.int64) % 3000
    data = pcm.astype("<i2").tobytes()
    rng = np.random.default_rng(1)
    for k, i in enumerate(range(0, len(data), 320)):
        jitter = float(rng.uniform(0, 0.04))  # up to 40 ms late
        p.add_user_audio(data[i : i + 320], 0.02 * (k + 1) + jitter)
    p.stop_recording(now=2.05)
    u, _ = _tracks(got)
    assert np.array_equal(u[: pcm.size], pcm.astype(np.int16))


def test_bot_audio_is_scheduled_like_a_playout_queue() -> None:
    p = AudioBufferProcessor(sample_rate=R, num_channels=2)
    got = _capture(p)
    p.start_recording(now=0.0)
    p.add_bot_audio(_const(500, 0.4), now=1.0)  # plays 1.0 .. 1.4
    p.add_bot_audio(_const(600, 0.4), now=1.1)  # queued: 1.4 .. 1.8
    p.add_bot_audio(_const(700, 0.2), now=2.5)  # after idle: 2.5 .. 2.7
    p.stop_recording(now=3.0)
    _, b = _tracks(got)
    assert b.size == 3 * R

    def s(t: float) -> int:
        return round(t * R)

    assert not b[: s(1.0)].any()
    assert (b[s(1.0) : s(1.4)] == 500).all() and (b[s(1.4) : s(1.8)] == 600).all()
    assert not b[s(1.8) : s(2.5)].any()
    assert (b[s(2.5) : s(2.7)] == 700).all() and not b[s(2.7) :].any()


def test_bot_audio_a_little_late_joins_the_queue_with_a_gap_tolerance() -> None:
    """A playout with lead plays a chunk that comes 5 ms after the queue ran dry
    without a gap; the default places it at its arrival, 5 ms of silence before it."""
    def bot_track(**options: Any) -> np.ndarray:
        p = AudioBufferProcessor(sample_rate=R, num_channels=2, **options)
        got = _capture(p)
        p.start_recording(now=0.0)
        p.add_bot_audio(_const(500, 0.04), now=0.0)    # plays 0.00 .. 0.04
        p.add_bot_audio(_const(600, 0.04), now=0.045)  # 5 ms after the queue ran dry
        p.add_bot_audio(_const(700, 0.04), now=0.2)    # 75 ms after: a real gap
        p.stop_recording(now=0.3)
        return _tracks(got)[1]

    joined = bot_track(bot_gap_tolerance_ms=20)
    assert (joined[:320] == 500).all() and (joined[320:640] == 600).all()
    assert not joined[640:1600].any() and (joined[1600:1920] == 700).all()
    default = bot_track()
    assert not default[320:360].any() and (default[360:680] == 600).all()


def test_interruption_truncates_scheduled_bot_audio() -> None:
    p = AudioBufferProcessor(sample_rate=R, num_channels=2)
    got = _capture(p)
    p.start_recording(now=0.0)
    p.add_bot_audio(_const(900, 2.0), now=0.5)  # would play 0.5 .. 2.5
    p.truncate_bot(now=1.0)  # caller barged in
    p.add_bot_audio(_const(400, 0.5), now=1.2)  # new answer plays at once
    p.stop_recording(now=2.0)
    _, b = _tracks(got)
    assert b.size == 2 * R
    assert (b[R // 2 : R] == 900).all()
    assert not b[R : round(1.2 * R)].any()
    assert (b[round(1.2 * R) : round(1.7 * R)] == 400).all()
    assert not b[round(1.7 * R) :].any()


def test_stop_drops_bot_audio_that_never_played() -> None:
    p = AudioBufferProcessor(sample_rate=R, num_channels=2)
    got = _capture(p)
    p.start_recording(now=0.0)
    p.add_bot_audio(_const(900, 5.0), now=0.0)
    p.stop_recording(now=1.0)
    u, b = _tracks(got)
    assert u.size == b.size == R and (b == 900).all()


def test_mono_mix_saturates_and_stereo_puts_user_left() -> None:
    for channels in (1, 2):
        p = AudioBufferProcessor(sample_rate=R, num_channels=channels)
        got = _capture(p)
        p.start_recording(now=0.0)
        p.add_bot_audio(_const(30000, 0.1), now=0.0)
        p.add_user_audio(_const(20000, 0.1), now=0.1)
        p.stop_recording(now=0.1)
        ((audio, sr, nc),) = got["audio"]
        x = np.frombuffer(audio, "<i2")
        assert (sr, nc) == (R, channels)
        if channels == 1:
            assert x.size == 800 and (x == 32767).all()
        else:
            assert x.size == 1600 and (x[0::2] == 20000).all() and (x[1::2] == 30000).all()
        assert got["tracks"][0][3] == 1  # tracks are always mono


def test_resampling_inputs_to_output_rate_keeps_timing() -> None:
    out = 16000
    p = AudioBufferProcessor(sample_rate=out, num_channels=2)
    got = _capture(p)
    p.start_recording(now=0.0)
    user = synth.to_int16(synth.tone(400.0, 1.0, 8000, 8000.0)).tobytes()
    bot = synth.to_int16(synth.tone(1000.0, 0.5, 24000, 8000.0)).tobytes()
    for k, i in enumerate(range(0, len(user), 320)):
        t = 0.02 * (k + 1)
        p.add_user_audio(user[i : i + 320], t, sample_rate=8000)
        if k == 11:  # t = 0.24: the agent answers; it plays from now on
            p.add_bot_audio(bot, t, 24000)
    p.stop_recording(now=1.0)
    u, b = _tracks(got)
    assert u.size == b.size == out
    ref = synth.tone(400.0, 1.0, out, 8000.0)
    core = slice(800, out - 800)
    assert np.abs(u[core] - ref[core]).max() < 100
    # Bot tone occupies exactly 0.24 .. 0.74 s.
    env = np.abs(b.astype(float))
    assert env[: round(0.23 * out)].max() < 50 and env[round(0.75 * out) :].max() < 50
    assert env[round(0.25 * out) : round(0.73 * out)].min() < 200  # zero crossings
    assert env[round(0.25 * out) : round(0.73 * out)].max() > 7900


def test_chunked_events_concatenate_to_the_whole_recording() -> None:
    def run(buffer_size: int) -> tuple[list[bytes], bytes]:
        p = AudioBufferProcessor(sample_rate=R, num_channels=2, buffer_size=buffer_size)
        got = _capture(p)
        p.start_recording(now=0.0)
        rng = np.random.default_rng(2)
        pcm = rng.integers(-3000, 3000, R * 3, dtype=np.int16).tobytes()
        _feed_user(p, pcm, 0.0)
        p.add_bot_audio(pcm[:R], now=0.7)
        p.stop_recording(now=3.1)
        chunks = [a for a, _, _ in got["audio"]]
        return chunks, b"".join(chunks)

    whole, joined0 = run(0)
    chunked, joined = run(3200)
    assert len(whole) == 1 and len(chunked) > 10
    assert all(len(c) == 2 * 3200 for c in chunked[:-1])  # stereo: 2 x buffer_size
    assert joined == joined0


def test_has_audio_and_recording_state() -> None:
    p = AudioBufferProcessor(sample_rate=R, buffer_size=0)
    p.add_user_audio(_const(1, 0.1), 0.1)  # not recording: ignored
    p.start_recording(now=0.0)
    assert p.recording and not p.has_audio()
    p.add_user_audio(_const(1, 0.1), 0.1)
    p.add_bot_audio(_const(1, 0.1), 0.1)
    p.advance(0.2)
    assert p.has_audio()
    p.stop_recording()
    assert not p.recording and not p.has_audio()


def test_turn_audio_events() -> None:
    p = AudioBufferProcessor(sample_rate=R, num_channels=1, enable_turn_audio=True)
    got = _capture(p)
    p.start_recording(now=0.0)
    caller = np.concatenate(
        [synth.silence(1.0, R), synth.speech_like(1.2, R, seed=4), synth.silence(1.3, R)]
    )
    caller = synth.to_int16(caller + synth.white_noise(caller.size / R, R, 20.0, seed=4))
    data = caller.tobytes()
    tone = synth.to_int16(synth.tone(300, 2.0, R, 6000)).tobytes()
    for k, i in enumerate(range(0, len(data), 320)):
        t = round(0.02 * (k + 1), 2)
        p.add_user_audio(data[i : i + 320], t)
        if t == 2.6:  # the agent answers: 0.8 s then 0.4 s queued behind it
            p.add_bot_audio(tone[: 2 * round(0.8 * R)], now=t)
        elif t == 2.7:
            p.add_bot_audio(tone[: 2 * round(0.4 * R)], now=t)
        elif t == 3.0:
            p.add_bot_audio(tone, now=t)  # plays from 3.8, would last 2 s
        elif t == 3.3:
            p.truncate_bot(t)  # interrupted while the first answer still plays
    p.advance(4.5)
    p.add_bot_audio(tone, now=4.6)
    p.truncate_bot(5.1)  # interrupted after 0.5 s
    p.stop_recording(now=5.5)
    ((u_audio, sr, nc),) = got["user_turns"]
    assert (sr, nc) == (R, 1)
    assert 1.1 <= len(u_audio) / 2 / R <= 1.5  # 1.2 s of speech plus hysteresis
    durations = [len(a) / 2 / R for a, _, _ in got["bot_turns"]]
    # 2.6..3.3 (cut at 3.3 while the queue ran to 5.8), then 4.6..5.1.
    assert durations == pytest.approx([0.7, 0.5], abs=0.002)


def test_async_handlers_with_and_without_running_loop() -> None:
    calls: list[int] = []

    def make() -> AudioBufferProcessor:
        p = AudioBufferProcessor(sample_rate=R)

        @p.event_handler("on_audio_data")
        async def on_audio(buf: AudioBufferProcessor, audio: bytes, sr: int, nc: int) -> None:
            await asyncio.sleep(0)
            calls.append(len(audio))

        return p

    async def main() -> None:
        p = make()
        await p.start_recording(now=0.0)
        p.add_user_audio(_const(5, 0.1), 0.1)
        await p.stop_recording(now=0.1)  # pipecat style
        assert calls == [1600]

    asyncio.run(main())
    # No loop: the handler is queued, and runs when the returned Dispatch is awaited
    # or when run_pending_handlers() is called.
    calls.clear()
    p = make()
    p.start_recording(now=0.0)
    p.add_user_audio(_const(5, 0.2), 0.2)
    d = p.stop_recording(now=0.2)
    assert calls == [] and d.pending == 1
    p.run_pending_handlers()
    assert calls == [3200]


def test_failing_handler_is_logged_not_raised() -> None:
    p = AudioBufferProcessor(sample_rate=R)
    seen: list[int] = []

    @p.event_handler("on_audio_data")
    def bad(*_: Any) -> None:
        raise RuntimeError("handler bug")

    p.add_event_handler("on_audio_data", lambda b, a, sr, nc: seen.append(len(a)))
    p.start_recording(now=0.0)
    p.add_user_audio(_const(5, 0.1), 0.1)
    p.stop_recording(now=0.1)
    assert seen == [1600]


def test_record_to_wav_files(tmp_path: Path) -> None:
    p = AudioBufferProcessor(sample_rate=R, num_channels=2, buffer_size=1600)
    got = _capture(p)
    p.record_to_wav(
        tmp_path / "call.wav", user_path=tmp_path / "u.wav", bot_path=tmp_path / "b.wav"
    )
    p.start_recording(now=0.0)
    _feed_user(p, _const(1200, 1.0), 0.0)
    p.add_bot_audio(_const(-700, 0.3), now=0.5)
    p.stop_recording(now=1.2)
    stereo, rate = read_wav_channels(tmp_path / "call.wav")
    assert rate == R and stereo.shape == (round(1.2 * R), 2)
    u, b = _tracks(got)
    assert np.array_equal(stereo[:, 0], u) and np.array_equal(stereo[:, 1], b)
    assert np.array_equal(read_wav(tmp_path / "u.wav")[0], u)
    assert np.array_equal(read_wav(tmp_path / "b.wav")[0], b)


def test_sample_rate_none_adopts_first_input_rate() -> None:
    p = AudioBufferProcessor()
    got = _capture(p)
    p.start_recording()
    p.add_user_audio(_const(3, 0.1, 16000), now=5.0, sample_rate=16000)
    p.stop_recording(now=5.1)
    assert p.sample_rate == 16000
    # Time zero is the start of the first audio (4.9 s): 0.2 s recorded.
    assert got["audio"][0][1] == 16000 and len(got["audio"][0][0]) == 2 * 3200


def test_bot_turn_ends_after_grace_and_short_pauses_stay_in_one_turn() -> None:
    p = AudioBufferProcessor(sample_rate=R, enable_turn_audio=True, bot_turn_gap_ms=300)
    got = _capture(p)
    p.start_recording(now=0.0)
    p.add_bot_audio(_const(100, 0.5), now=1.0)  # 1.0 .. 1.5
    p.advance(1.7)
    p.add_bot_audio(_const(200, 0.3), now=1.7)  # 0.2 s pause < grace: same turn, 1.7 .. 2.0
    p.advance(2.29)
    assert got["bot_turns"] == []
    p.advance(2.3)  # 0.3 s after the scheduled end: the turn is over
    ((audio, _, _),) = got["bot_turns"]
    x = np.frombuffer(audio, "<i2")
    assert x.size == round(1.0 * R)
    assert (x[: R // 2] == 100).all() and not x[R // 2 : round(0.7 * R)].any()
    assert (x[round(0.7 * R) :] == 200).all()
    p.stop_recording(now=3.0)
    assert len(got["bot_turns"]) == 1


def test_bad_pcm_is_rejected_and_arrays_accepted() -> None:
    from telcoflow.audio.errors import AudioFormatError

    p = AudioBufferProcessor(sample_rate=R)
    got = _capture(p)
    p.start_recording(now=0.0)
    with pytest.raises(AudioFormatError):
        p.add_user_audio(b"\x00\x01\x02", 0.1)
    p.add_user_audio(np.full(800, 9, np.int16), 0.1)
    p.stop_recording(now=0.1)
    assert np.frombuffer(got["tracks"][0][0], "<i2").tolist() == [9] * 800
